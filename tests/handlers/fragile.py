"""`backend` for a fragile back end: a worker sends it at most two requests at once."""

from __future__ import annotations

from tests.handlers.backend import Input, handle

SETTINGS = {"budget": 0.5, "concurrency": 2}

__all__ = ["Input", "handle"]
