"""Sleep for a while, reporting progress: shows a call turning `pending` and being polled to `done`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from marshmallow import Schema, fields, validate

from flowhook import Call

# A sleep of up to 300 s must not hit the default job timeout.
SETTINGS = {"job_timeout": 330}


class Input(Schema):
    # Decimal keeps the number as the flow wrote it ("2" answers "2", not "2.0") and refuses NaN.
    seconds = fields.Decimal(required=True, validate=validate.Range(min=0, max=300))


def handle(call: Call) -> dict[str, Any]:
    """Sleep ``seconds``, reporting the share done about every half second."""
    seconds = float(call.variables["seconds"])
    started = time.monotonic()
    for moment in report_moments(seconds):
        time.sleep(max(0.0, started + moment - time.monotonic()))
        call.progress(f"{100 * moment / seconds:.0f}%")
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    return {"slept": call.variables["seconds"]}


def report_moments(seconds: float) -> Iterator[float]:
    """0, then every half second from a quarter second on, while the sleep lasts.

    Off the whole and half seconds, so that a budget of whole seconds always ends a quarter second
    from a report: the pending answer's progress is the same on every run (the README's "59%").
    """
    return itertools.takewhile(lambda moment: moment < seconds, itertools.chain([0.0], itertools.count(0.25, 0.5)))
