"""Counts its runs and waits until the test opens its gate: makes `pending` happen on cue."""

from __future__ import annotations

import os
import socket
from typing import Any

from marshmallow import Schema, fields

from flowhook import Call, HandlerError
from tests.handlers._redis import test_redis

# Polls held 1 s, as long as a new call: tests of what a poll answers need not wait the default poll
# wait (`held` is this handler with the service's own).
SETTINGS = {"budget": 1, "poll_wait": 1}


class Input(Schema):
    gate = fields.String(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Count this run and note its process, report progress, then wait for ``gate_open`` to be pushed."""
    redis = test_redis()
    gate = call.variables["gate"]
    runs = redis.incr(f"test:runs:{gate}")
    redis.expire(f"test:runs:{gate}", 300)
    redis.set(f"test:pid:{gate}", os.getpid(), ex=300)  # which process to kill
    call.progress("waiting for the gate")
    if redis.blpop([f"test:gate:{gate}"], timeout=30) is None:
        raise HandlerError("the gate never opened")
    return {
        "opened": gate,
        "runs": runs,
        "key": call.idempotency_key,
        "worker": f"{socket.gethostname()}.{os.getpid()}",
    }
