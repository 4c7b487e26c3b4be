"""An async handler: reports progress, then waits on asyncio.sleep (a worker runs it)."""

from __future__ import annotations

import asyncio
from typing import Any

from marshmallow import Schema, fields

from flowhook import Call

SETTINGS = {"budget": 3.5, "job_timeout": 10}


class Input(Schema):
    seconds = fields.Float(required=True)


async def handle(call: Call) -> dict[str, Any]:
    """Say so, then sleep ``seconds`` on the event loop."""
    call.progress("napping")
    await asyncio.sleep(call.variables["seconds"])
    return {"slept": call.variables["seconds"], "key": call.idempotency_key}
