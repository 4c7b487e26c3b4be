"""Sleep for a while, reporting progress: shows a call turning `pending` and being polled to `done`."""

from __future__ import annotations

import time
from typing import Any

from marshmallow import Schema, fields, validate

from flowhook import Call

# A sleep of up to 300 s must not hit the default job timeout.
SETTINGS = {"job_timeout": 330}


class Input(Schema):
    # Decimal keeps the number as the flow wrote it ("2" answers "2", not "2.0") and refuses NaN.
    seconds = fields.Decimal(required=True, validate=validate.Range(min=0, max=300))


def handle(call: Call) -> dict[str, Any]:
    """Sleep ``seconds``, reporting the share done every half second."""
    seconds = float(call.variables["seconds"])
    finish = time.monotonic() + seconds
    while (left := finish - time.monotonic()) > 0:
        call.progress(f"{100 * (1 - left / seconds):.0f}%")
        time.sleep(min(0.5, left))
    return {"slept": call.variables["seconds"]}
