"""A worker handler slower than its budget: pending, then polled to done."""

from __future__ import annotations

import time

from marshmallow import Schema, fields, validate

from bench.soak_handlers._executions import note
from flowhook import Call

SETTINGS = {"budget": 0.25}


class Input(Schema):
    number = fields.String(required=True)
    seconds = fields.Float(required=True, validate=validate.Range(min=0, max=10))


def handle(call: Call) -> dict[str, str]:
    """Note the execution, then take ``seconds``."""
    note(call.variables["number"])
    time.sleep(call.variables["seconds"])
    return {"number": call.variables["number"]}
