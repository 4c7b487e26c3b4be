"""Look an order up in the shop's order API: a handler that does real HTTP I/O.

The API's base URL comes from ``ORDER_API_URL``; ``GET {ORDER_API_URL}/orders/<order_id>?email=...``
answers ``{"status": ..., "eta": ..., "items": [...]}``, or 404 for an unknown order.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from marshmallow import Schema, fields, validate

from flowhook import Call, HandlerError, RetryableError

# A read-only lookup may safely run twice, so it runs inline ("web") and skips the queue when the
# API is quick; a slow or busy API hands the work to a worker, which retries it twice.
SETTINGS = {"runs_in": "web", "retries": 2, "retry_intervals": [2, 10], "job_timeout": 30}

# Never wait longer than this for the API, even with more time left.
LONGEST_REQUEST = 10.0


class Input(Schema):
    # \Z, not $: Python's $ also matches before a last newline, and "A-1001\n" would reach the URL.
    order_id = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9-]{1,40}\Z"))
    email = fields.Email(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Ask the order API for the order and answer its state, ETA and items."""
    base_url = os.environ.get("ORDER_API_URL")
    if not base_url:
        raise HandlerError("the order lookup is not configured (ORDER_API_URL)")
    try:
        response = requests.get(
            f"{base_url.rstrip('/')}/orders/{call.variables['order_id']}",
            params={"email": call.variables["email"]},
            headers={"Idempotency-Key": call.idempotency_key},
            # Bounded by the time left: inline that is the budget, in a worker the job timeout.
            timeout=max(0.05, min(call.remaining(), LONGEST_REQUEST)),
        )
    except requests.RequestException as error:
        raise RetryableError("the order system did not answer") from error
    if response.status_code == 404:
        raise HandlerError("no such order")
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError("the order system is busy")
    if not response.ok:
        raise HandlerError(f"the order system refused the lookup ({response.status_code})")
    order = response.json()
    return {"order_state": order["status"], "order_eta": order.get("eta"), "order_items": order.get("items", [])}
