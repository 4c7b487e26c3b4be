"""Send RQ's tests, which connect to Redis on 127.0.0.1:6379, to a private redis-server instead.

RQ's tests name no server of their own: ``Redis()``, ``Redis(db=5)``, ``redis://127.0.0.1:6379/4``,
in the suite's process and in the ``rqworker`` processes it starts. Every TCP connection redis-py
makes passes through :class:`redis.connection.Connection`, so the port is changed there, only for a
loopback host on Redis's default port: the clients keep the address they were given (a test reads
it back), and no test ever reaches a Redis of the machine's own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from redis.connection import Connection

DEFAULT_PORT = 6379
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def redirect_default_redis(port: int) -> None:
    """Make every connection to loopback port 6379 made from now on go to ``port`` instead."""
    original: Callable[..., None] = Connection.__init__

    @functools.wraps(original)
    def connect_to_private_server(self: Connection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.host in LOOPBACK and int(self.port) == DEFAULT_PORT:
            self.port = port

    Connection.__init__ = connect_to_private_server  # type: ignore[method-assign]
