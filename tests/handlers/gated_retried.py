"""`gated`, for a handler that allows a retry: a job whose worker died runs once more."""

from __future__ import annotations

from tests.handlers.gated import Input, handle

SETTINGS = {"budget": 1, "retries": 1, "retry_intervals": [0]}

__all__ = ["SETTINGS", "Input", "handle"]
