"""Waits on the slow loopback API for as many seconds as the call's ``seconds`` variable says, in an RQ worker."""

from __future__ import annotations

import os

from marshmallow import Schema, fields

from bench.handlers._io import session
from flowhook import Call


class Input(Schema):
    seconds = fields.Float(required=True)


def handle(call: Call) -> dict[str, str]:
    """GET the sleepy server, which answers after ``seconds``: a back end that slow."""
    seconds = call.variables["seconds"]
    response = session.get(os.environ["BENCH_IO_URL"], params={"delay": seconds}, timeout=seconds + 30)
    return {"work": response.text}
