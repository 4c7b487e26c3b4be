"""An async handler that outlasts its 1 s job timeout, and notes in Redis that it was cancelled."""

from __future__ import annotations

import asyncio

from marshmallow import Schema, fields

from flowhook import Call
from tests.handlers._redis import loop_redis

SETTINGS = {"budget": 0.5, "job_timeout": 1}


class Input(Schema):
    key = fields.String(required=True)


async def handle(call: Call) -> None:
    """Sleep far past the job timeout; once cancelled, say so."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        loop_redis().set(f"test:cancelled:{call.variables['key']}", 1, ex=300)
        raise
