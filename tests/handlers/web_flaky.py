"""A `web` handler whose inline attempt asks for a retry; the worker's attempt succeeds."""

from __future__ import annotations

from rq import get_current_job

from flowhook import Call, RetryableError

SETTINGS = {"runs_in": "web", "retries": 1, "retry_intervals": [0], "budget": 3}


def handle(call: Call) -> dict[str, str]:
    """Fail retryably inline; succeed in a worker."""
    if get_current_job() is None:
        raise RetryableError("try again in a worker")
    return {"ran_in": "worker"}
