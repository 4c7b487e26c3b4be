"""A worker handler whose backend refuses: failed, with the reason for the flow."""

from __future__ import annotations

from marshmallow import Schema, fields

from bench.soak_handlers._executions import note
from flowhook import Call, HandlerError


class Input(Schema):
    number = fields.String(required=True)


def handle(call: Call) -> dict[str, str]:
    """Note the execution, then fail."""
    note(call.variables["number"])
    raise HandlerError("the backend refused")
