"""An async handler run inline in the web process: waits on asyncio.sleep."""

from __future__ import annotations

import asyncio
from typing import Any

from marshmallow import Schema, fields

from flowhook import Call

SETTINGS = {"runs_in": "web", "budget": 3.5}


class Input(Schema):
    seconds = fields.Float(required=True)


async def handle(call: Call) -> dict[str, Any]:
    """Sleep ``seconds`` on the event loop."""
    await asyncio.sleep(call.variables["seconds"])
    return {"slept": call.variables["seconds"]}
