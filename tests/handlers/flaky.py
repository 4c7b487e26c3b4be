"""Fails with a RetryableError a set number of times, then succeeds; counts its attempts.

Given a ``gate``, the attempt that succeeds first waits for the test to open it, so a test sees
`pending` however slow the machine is.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from rq import get_current_job

from flowhook import Call, HandlerError, RetryableError
from tests.handlers._redis import test_redis

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"retries": 2, "retry_intervals": [1], "budget": 0.5, "poll_wait": 1}


class Input(Schema):
    key = fields.String(required=True)
    failures = fields.Integer(required=True)
    crash = fields.Boolean(load_default=False)
    gate = fields.String(load_default=None)


def handle(call: Call) -> dict[str, Any]:
    """Count this attempt; fail retryably while attempts <= failures; crash if asked; wait for a gate."""
    job = get_current_job()
    assert job is not None
    attempts = job.connection.incr(f"test:attempts:{call.variables['key']}")
    job.connection.expire(f"test:attempts:{call.variables['key']}", 300)
    if call.variables["crash"]:
        raise ValueError("not retryable")
    if attempts <= call.variables["failures"]:
        raise RetryableError("the ERP is busy")
    gate = call.variables["gate"]
    if gate and test_redis().blpop([f"test:gate:{gate}"], timeout=30) is None:
        raise HandlerError("the gate never opened")
    return {"attempts": attempts, "key": call.idempotency_key}
