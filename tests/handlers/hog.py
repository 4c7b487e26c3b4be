"""Computes for as long as it is told, without waiting on anything, and does not say it is CPU-bound."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from flowhook import Call
from tests.handlers._compute import compute

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"budget": 0.5, "poll_wait": 1}


class Input(Schema):
    seconds = fields.Float(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Hold the processor for ``seconds``."""
    return {"rounds": compute(call.variables["seconds"], call)}
