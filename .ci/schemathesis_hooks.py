"""Schemathesis hooks for .ci/schemathesis.

`POST /v1/webhooks/{source}` is authenticated by an HMAC signature of the raw body, which
schemathesis cannot make: this hook serializes a generated delivery to bytes itself and signs
exactly those bytes (docs/webhooks.md), so the route is tested past its signature check. Requests to
other paths are left as generated.
"""

import hashlib
import hmac
import json
import os
import time

import schemathesis

SECRET = os.environ.get("ST_WEBHOOK_SECRET", "").encode()
SIGNATURE_HEADER = "Dealscore-Signature"


@schemathesis.hook
def before_call(context, case, kwargs):
    if not SECRET or case.method.upper() != "POST":
        return
    if case.path != "/v1/webhooks/{source}":
        return
    body = case.body
    if not isinstance(body, bytes):
        try:
            body = json.dumps(body, allow_nan=False).encode()
        except (TypeError, ValueError):
            # Not JSON (a negative case): sent unsigned, answered 401 as documented.
            return
    case.body = body
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if case.headers is None:
        case.headers = {}
    case.headers[SIGNATURE_HEADER] = f"t={stamp},v1={digest}"
