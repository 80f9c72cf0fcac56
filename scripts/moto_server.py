"""moto's server with DynamoDB's isolation: one request at a time.

moto serves requests on threads and checks a transaction's conditions and applies its writes
without a lock, so two concurrent TransactWriteItems can both pass `attribute_not_exists` on
the same item. DynamoDB serializes conflicting transactions (the loser gets
TransactionCanceledException). Serializing requests here gives the tests that guarantee;
connections are still accepted concurrently.

Usage: python moto_server.py PORT
"""
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), serialized, threaded=True, request_handler=MotoRequestHandler)
