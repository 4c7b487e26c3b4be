"""A `web` handler whose inline attempt overruns the budget; in a worker it is quick, or gated."""

from __future__ import annotations

from marshmallow import Schema, fields
from rq import get_current_job

from flowhook import Call
from tests.handlers._redis import test_redis

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"runs_in": "web", "budget": 0.5, "poll_wait": 1}

# What each inline attempt saw, for the tests (inline attempts run in the test's own process).
INLINE_ATTEMPTS: list[dict[str, object]] = []


class Input(Schema):
    case = fields.String(required=True)
    gate = fields.Boolean(load_default=False)


def handle(call: Call) -> dict[str, str]:
    """Inline: wait until told to stop. In a worker: answer, after the test opens the gate if asked."""
    job = get_current_job()
    if job is None:
        call.progress("started inline")
        told_to_stop = call.stop_event.wait(timeout=10)
        INLINE_ATTEMPTS.append({"case": call.variables["case"], "stopped": told_to_stop, "left": call.remaining()})
        return {"ran_in": "web", "key": call.idempotency_key}
    if call.variables["gate"]:
        test_redis().blpop([f"test:gate:{call.variables['case']}"], timeout=30)
    return {"ran_in": "worker", "key": call.idempotency_key}
