"""`gated`, for a handler that allows a retry: a job whose worker died runs once more."""

from __future__ import annotations

from tests.handlers.gated import Input, handle

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"budget": 1, "retries": 1, "retry_intervals": [0], "poll_wait": 1}

__all__ = ["SETTINGS", "Input", "handle"]
