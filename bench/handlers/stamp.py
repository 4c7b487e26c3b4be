"""Waits for the benchmark to open a gate, then answers the moment it finished (for poll wake-up)."""

from __future__ import annotations

import time

from marshmallow import Schema, fields
from rq import get_current_job

from flowhook import Call

SETTINGS = {"budget": 0.5}


class Input(Schema):
    gate = fields.String(required=True)


def handle(call: Call) -> dict[str, float]:
    """Block until ``gate`` is pushed, then return the wall-clock time of finishing."""
    job = get_current_job()
    assert job is not None
    job.connection.blpop([f"bench:gate:{call.variables['gate']}"], timeout=30)
    job.connection.delete(f"bench:gate:{call.variables['gate']}")
    return {"finished_at": time.time()}
