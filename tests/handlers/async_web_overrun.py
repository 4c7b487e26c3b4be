"""An async handler run inline that outlasts its 0.5 s budget, and notes in Redis that it was cancelled."""

from __future__ import annotations

import asyncio

from marshmallow import Schema, fields

from flowhook import Call
from tests.handlers._redis import loop_redis

SETTINGS = {"runs_in": "web", "budget": 0.5}


class Input(Schema):
    key = fields.String(required=True)


async def handle(call: Call) -> None:
    """Sleep far past the budget; once cancelled, say so."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        loop_redis().set(f"test:cancelled:{call.variables['key']}", 1, ex=300)
        raise
