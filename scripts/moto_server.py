"""moto's server with DynamoDB's isolation and a transaction that costs what it touches.

Usage: python moto_server.py PORT [--max-rss-mb MB] [--parent PID]

Three things differ from `moto_server`:

1. One request at a time. moto serves requests on threads and checks a transaction's
   conditions and applies its writes without a lock, so two concurrent TransactWriteItems could
   both pass `attribute_not_exists` on the same item. DynamoDB serializes conflicting
   transactions (the loser gets TransactionCanceledException); serializing requests here gives
   the tests that guarantee. Connections are still accepted concurrently.

2. TransactWriteItems backs up only the items it touches. moto 5.2.5 deep-copies the whole
   table once per item of a transaction, to roll back if it is cancelled: every commit costs the
   size of its table, runs slow down quadratically and memory balloons (100 two-item
   transactions on a 3,000-item table: 12 s, and many GB on big tables). Since requests are
   serialized (1.), nothing else can change an item between its backup and the transaction's
   end, so restoring exactly the touched items (their copy, or their absence) gives the same
   outcomes: a cancelled transaction leaves every item it touched as it was, a successful one
   applies all. The patch replaces that one method of moto's backend, pinned to MOTO_VERSION;
   at start-up the method it replaces must still be the one it was written against (its source's
   SHA-256), or the server refuses to start rather than silently change behaviour.

3. A memory cap. A watchdog reads the resident set every half second; past --max-rss-mb the
   server stops with a clear message (a runaway emulator fails its own run, never the
   machine). The address space is also capped (RLIMIT_AS, a backstop for a burst between two
   readings). The peak resident set is printed when the server stops, and `GET /_harness/peak`
   answers it (in MB) while it runs.

With --parent, the server stops when that process is gone (tests that start their own moto).
"""

import argparse
import copy
import hashlib
import inspect
import io
import os
import resource
import signal
import sys
import threading
import time

import moto
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

MOTO_VERSION = "5.2.5"
# SHA-256 of `inspect.getsource(DynamoDBBackend.transact_write_items)` in MOTO_VERSION.
REPLACED_METHOD_SHA256 = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"


def check_patch_applies():
    """Refuses to start when moto is not the version the patch was written against."""
    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    digest = hashlib.sha256(source.encode()).hexdigest()
    if moto.__version__ != MOTO_VERSION or digest != REPLACED_METHOD_SHA256:
        sys.exit(
            f"moto_server.py: the transaction patch was written for moto {MOTO_VERSION}; found moto "
            f"{moto.__version__} whose DynamoDBBackend.transact_write_items has source SHA-256 {digest} "
            f"(expected {REPLACED_METHOD_SHA256}). Re-check the patch against the new method, then "
            "update MOTO_VERSION and REPLACED_METHOD_SHA256 (and scripts/install-test-deps)."
        )


class TouchedItem:
    """One item a transaction touches, as it was before: its copy, or its absence."""

    def __init__(self, table, hash_value, range_value):
        self.table = table
        self.hash_value = hash_value
        self.range_value = range_value
        # `items` is a defaultdict: look up without creating a bucket.
        self.had_bucket = hash_value in table.items
        current = table.get_item(hash_value, range_value)
        self.saved = copy.deepcopy(current) if current is not None else None
        shard = table.stream_shard
        self.stream_length = len(shard.items) if shard is not None else None

    def restore(self):
        items = self.table.items
        if self.range_value is None:
            if self.saved is None:
                items.pop(self.hash_value, None)
            else:
                items[self.hash_value] = self.saved
        else:
            if self.saved is None:
                if self.hash_value in items:
                    items[self.hash_value].pop(self.range_value, None)
                    if not self.had_bucket and not items[self.hash_value]:
                        del items[self.hash_value]
            else:
                items[self.hash_value][self.range_value] = self.saved
        if self.stream_length is not None and self.table.stream_shard is not None:
            del self.table.stream_shard.items[self.stream_length :]


def touched_item(backend, table_name, key):
    """The item at `key`, backed up before an operation of the transaction changes it (the
    operation's table and key were already read, so both are valid here)."""
    table = backend.get_table(table_name)
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
    return TouchedItem(table, hash_value, range_value)


def transact_write_items(self, transact_items):
    """moto 5.2.5's TransactWriteItems, with a rollback of the touched items only.

    Same checks, same order, same errors as the method it replaces: at most 100 items, one
    operation per item, one operation per key (ValidationException), each condition checked on
    the item as the earlier operations of this transaction left it, every failure collected into
    the cancellation reasons. Only the backup differs (see the module's docstring).
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    backups = []
    target_items = set()

    def rollback():
        for touched in reversed(backups):
            touched.restore()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []  # [(Code, Message, Item)]
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            rollback()
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition = get_filter_expression(condition_expression, names, values)
                if not condition.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type != "ConditionCheck":
                backups.append(touched_item(self, table_name, key))
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 (moto collects any other failure as a reason)
            errors.append((type(e).__name__, str(e), original_item))

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


def resident_mb(field):
    """VmRSS or VmHWM (the peak) of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    return 0


def watch(max_rss_mb, parent):
    while True:
        time.sleep(0.5)
        rss = resident_mb("VmRSS")
        if rss > max_rss_mb:
            print(
                f"moto_server.py: resident memory {rss} MB passed the cap of {max_rss_mb} MB; stopping "
                "(raise --max-rss-mb / MOTO_MAX_RSS_MB if the run really needs more)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(70)
        if parent is not None and not os.path.exists(f"/proc/{parent}"):
            os._exit(0)


class QuietRequestHandler(MotoRequestHandler):
    """No line per request (a test run makes hundreds of thousands); errors are still printed."""

    def log_request(self, code="-", size="-"):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--max-rss-mb", type=int, default=int(os.environ.get("MOTO_MAX_RSS_MB", "2048")))
    parser.add_argument("--parent", type=int, default=None)
    args = parser.parse_args()

    check_patch_applies()
    DynamoDBBackend.transact_write_items = transact_write_items
    # The backstop: the address space (threads' stacks and malloc arenas included) at 4× the cap.
    limit = args.max_rss_mb * 4 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def stop(*_):
        print(f"moto_server.py: peak resident memory {resident_mb('VmHWM')} MB", file=sys.stderr, flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=watch, args=(args.max_rss_mb, args.parent), daemon=True).start()

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    # MOTO_TRACE=<file>: one line per DynamoDB request (its operation and body), to see what a
    # code path asks of the table (e.g. `grep -c GetItem`).
    trace = open(os.environ["MOTO_TRACE"], "a", buffering=1) if os.environ.get("MOTO_TRACE") else None

    def serialized(environ, start_response):
        if environ.get("PATH_INFO") == "/_harness/peak":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"{resident_mb('VmHWM')}\n".encode()]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if trace is not None and target.startswith("DynamoDB_"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            trace.write(f"{target.split('.')[-1]} {body.decode(errors='replace')[:400]}\n")
        with lock:
            return list(app(environ, start_response))

    run_simple("127.0.0.1", args.port, serialized, threaded=True, request_handler=QuietRequestHandler)



if __name__ == "__main__":
    main()
