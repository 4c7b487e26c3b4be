"""Validates typed input and returns values of every JSON type, to check how answers are written."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from flowhook import Call

SETTINGS = {"namespace": "tp"}


class Input(Schema):
    email = fields.Email(required=True)
    count = fields.Integer(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Return one value of each kind, computed from the typed input."""
    count = call.variables["count"]
    return {
        "next": count + 1,
        "ratio": count / 4,
        "even": count % 2 == 0,
        "nothing": None,
        "items": [call.variables["email"], count],
        "detail": {"count": count, "ok": True},
        "instance": call.process_instance_id,
        "referrer": call.params.get("referrer"),
    }
