"""Schemathesis hooks for scripts/fuzz-api: webhook deliveries are signed like Calendly signs
them (HMAC-SHA256 of "<t>.<body>" with the app's key), so the fuzzer reaches what happens
after the signature check instead of stopping at 401s. A generated empty header stays as is
or a missing one (the unsigned paths) stays as generated."""

import hashlib
import hmac
import json
import os
import time

import schemathesis

KEY = os.environ["FUZZ_WEBHOOK_SIGNING_KEY"].encode()
HEADER = "Calendly-Webhook-Signature"


@schemathesis.hook
def before_call(context, case, **kwargs):
    if not case.operation.path.startswith("/calendly/webhook"):
        return
    headers = case.headers if case.headers is not None else {}
    if not headers.get(HEADER) or not isinstance(case.body, (dict, list, str, int, float, bool)):
        return
    # The same bytes the requests transport sends for a JSON body.
    body = json.dumps(case.body).encode("utf-8")
    timestamp = str(int(time.time()))
    signature = hmac.new(KEY, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers[HEADER] = f"t={timestamp},v1={signature}"
    case.headers = headers
