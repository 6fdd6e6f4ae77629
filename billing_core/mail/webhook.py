"""Posting an alert to a webhook URL, with the failure classified as for e-mail.

The body is the alert as JSON. Headers: `X-Billflow-Delivery` (the same on every attempt
of one delivery: a receiver drops repeats by it), `X-Billflow-Event: billing.alert`, and
`X-Billflow-Signature: sha256=<hex HMAC of the body>` when BILLING_WEBHOOK_SECRET is set.
2xx: delivered. 408, 425, 429 and 5xx, refused connections and timeouts: tried again
later (a timeout may have reached the receiver: the delivery id lets it recognise the
repeat). Any other 4xx, or a URL that cannot be used: failed for good.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from typing import Any

from billing_core.mail.transport import PermanentFailure, TransientFailure

TIMEOUT = 10.0
RETRIED = {408, 425, 429}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, payload: dict[str, Any], delivery_id: str,
         secret: str | None = None, timeout: float = TIMEOUT) -> str:
    """POST the payload; returns a note (the receiver's status) or raises a failure."""
    if not url.startswith(("http://", "https://")):
        raise PermanentFailure(f"not an http(s) URL: {url!r}")
    body = body_of(payload)
    headers = {"Content-Type": "application/json", "User-Agent": "billflow-webhook/1",
               "X-Billflow-Delivery": delivery_id, "X-Billflow-Event": "billing.alert"}
    secret = secret if secret is not None else os.environ.get("BILLING_WEBHOOK_SECRET")
    if secret:
        headers["X-Billflow-Signature"] = signature(body, secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return f"webhook answered {answer.status}"
    except urllib.error.HTTPError as exc:
        what = f"webhook answered {exc.code} {exc.reason}"
        if exc.code in RETRIED or exc.code >= 500:
            raise TransientFailure(what) from None
        raise PermanentFailure(what) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientFailure(f"webhook not reached: {reason}") from None
    except ValueError as exc:
        raise PermanentFailure(f"webhook URL cannot be used: {exc}") from None
