"""Waits for the benchmark to open a gate, then answers the moment it finished (for poll wake-up)."""

from __future__ import annotations

import functools
import os
import time

from marshmallow import Schema, fields
from redis import Redis

from flowhook import Call

SETTINGS = {"budget": 0.5}


@functools.cache
def gate_redis() -> Redis:
    """The benchmark's Redis."""
    return Redis.from_url(os.environ["REDIS_URL"], socket_timeout=60)  # blocks up to 30 s on a gate


class Input(Schema):
    gate = fields.String(required=True)


def handle(call: Call) -> dict[str, float]:
    """Block until ``gate`` is pushed, then return the wall-clock time of finishing."""
    # A client of its own: the worker's connection times its commands out long before 30 s.
    redis = gate_redis()
    redis.blpop([f"bench:gate:{call.variables['gate']}"], timeout=30)
    redis.delete(f"bench:gate:{call.variables['gate']}")
    return {"finished_at": time.time()}
