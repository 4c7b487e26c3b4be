"""Counts its runs and waits until the test opens its gate: makes `pending` happen on cue."""

from __future__ import annotations

import os
import socket
from typing import Any

from marshmallow import Schema, fields
from rq import get_current_job

from flowhook import Call, HandlerError

SETTINGS = {"budget": 1}


class Input(Schema):
    gate = fields.String(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Count this run and note its process, report progress, then wait for ``gate_open`` to be pushed."""
    job = get_current_job()
    assert job is not None
    gate = call.variables["gate"]
    runs = job.connection.incr(f"test:runs:{gate}")
    job.connection.expire(f"test:runs:{gate}", 300)
    job.connection.set(f"test:pid:{gate}", os.getpid(), ex=300)  # which process to kill
    call.progress("waiting for the gate")
    if job.connection.blpop([f"test:gate:{gate}"], timeout=30) is None:
        raise HandlerError("the gate never opened")
    return {
        "opened": gate,
        "runs": runs,
        "key": call.idempotency_key,
        "worker": f"{socket.gethostname()}.{os.getpid()}",
    }
