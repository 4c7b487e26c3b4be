"""Sleeps as long as it is told, under a short job timeout."""

from __future__ import annotations

import time
from typing import Any

from marshmallow import Schema, fields

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"budget": 0.5, "job_timeout": 2, "poll_wait": 1}


class Input(Schema):
    seconds = fields.Float(required=True)


def handle(call: Any) -> dict[str, Any]:
    """Sleep, then say so."""
    time.sleep(call.variables["seconds"])
    return {"slept": call.variables["seconds"]}
