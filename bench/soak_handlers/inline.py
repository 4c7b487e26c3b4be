"""A `web` handler: answered inline by the web process, no queue."""

from __future__ import annotations

from marshmallow import Schema, fields

from bench.soak_handlers._executions import note
from flowhook import Call

SETTINGS = {"runs_in": "web"}


class Input(Schema):
    number = fields.String(required=True)


def handle(call: Call) -> dict[str, str]:
    """Note the execution and answer with the call's number."""
    note(call.variables["number"])
    return {"number": call.variables["number"]}
