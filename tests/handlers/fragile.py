"""`backend` for a fragile back end: a worker sends it at most two requests at once."""

from __future__ import annotations

from tests.handlers.backend import Input, handle

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"budget": 0.5, "concurrency": 2, "poll_wait": 1}

__all__ = ["Input", "handle"]
