"""The test Redis, for handlers that count their runs and wait on gates the tests open."""

from __future__ import annotations

import functools
import os

from redis import Redis


@functools.cache
def test_redis() -> Redis:
    """A client of its own: a handler must not block on the worker's connection, whose commands time out."""
    return Redis.from_url(os.environ["REDIS_URL"], socket_timeout=60)  # blocks up to 30 s on a gate


@functools.cache
def loop_redis() -> Redis:
    """A client for async handlers, used only on the event loop's thread (a gevent socket has one thread)."""
    return Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)
