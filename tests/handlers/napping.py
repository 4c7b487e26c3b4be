"""Counts its run, then sleeps: a job that can finish while Redis is away (it needs Redis only first)."""

from __future__ import annotations

import time
from typing import Any

from marshmallow import Schema, fields

from flowhook import Call
from tests.handlers._redis import test_redis

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"budget": 1, "poll_wait": 1}


class Input(Schema):
    key = fields.String(required=True)
    seconds = fields.Float(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Count this run, then sleep ``seconds``."""
    runs = test_redis().incr(f"test:runs:{call.variables['key']}")
    test_redis().expire(f"test:runs:{call.variables['key']}", 300)
    time.sleep(call.variables["seconds"])
    return {"runs": runs}
