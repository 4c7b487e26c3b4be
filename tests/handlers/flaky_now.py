"""`flaky`, tried again at once rather than after a pause: its next attempt is queued straight away."""

from __future__ import annotations

from tests.handlers.flaky import Input, handle

SETTINGS = {"retries": 2, "retry_intervals": [0], "budget": 0.5}

__all__ = ["SETTINGS", "Input", "handle"]
