"""A worker handler that answers at once: done inline."""

from __future__ import annotations

from marshmallow import Schema, fields

from bench.soak_handlers._executions import note
from flowhook import Call


class Input(Schema):
    number = fields.String(required=True)
    count = fields.Integer(required=True)  # the soak's invalid calls send a word here


def handle(call: Call) -> dict[str, str]:
    """Note the execution and answer with the call's number."""
    note(call.variables["number"])
    return {"number": call.variables["number"]}
