"""A retry loop that catches what it should not: the job's timeout must end it all the same."""

from __future__ import annotations

import time
from typing import Any

from marshmallow import Schema, fields, validate

from flowhook import Call

SETTINGS = {"budget": 0.5, "job_timeout": 1, "concurrency": 1}


class Input(Schema):
    catches = fields.String(required=True, validate=validate.OneOf(["exception", "everything"]))
    seconds = fields.Float(load_default=0.0)


def handle(call: Call) -> dict[str, Any]:
    """Wait ``seconds`` in short naps, carrying on past whatever ``catches`` names."""
    caught: type[BaseException] = Exception if call.variables["catches"] == "exception" else BaseException
    until = time.monotonic() + call.variables["seconds"]
    while time.monotonic() < until:
        try:
            time.sleep(0.05)
        except caught:
            continue
    return {"finished": "yes"}
