"""Keeps its results for 7 seconds only."""

from __future__ import annotations

from flowhook import Call

SETTINGS = {"result_ttl": 7}


def handle(call: Call) -> dict[str, str]:
    """Answer with the job's id (its idempotency key)."""
    return {"key": call.idempotency_key}
