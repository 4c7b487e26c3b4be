"""Asks a slow back end (a loopback HTTP server of the test's) and names the job it ran in."""

from __future__ import annotations

from typing import Any

import requests
from marshmallow import Schema, fields
from rq import get_current_job

from flowhook import Call

SETTINGS = {"budget": 4}


class Input(Schema):
    url = fields.String(required=True)
    seconds = fields.Float(required=True)


def handle(call: Call) -> dict[str, Any]:
    """Wait for the back end's answer; plain synchronous code, as a team would write it."""
    response = requests.get(call.variables["url"], params={"seconds": call.variables["seconds"]}, timeout=30)
    response.raise_for_status()
    job = get_current_job()
    return {"job": job.id if job else "", "key": call.idempotency_key}
