"""A fast `web` handler: answered inline, no queue."""

from __future__ import annotations

from rq import get_current_job

from flowhook import Call

SETTINGS = {"runs_in": "web"}


def handle(call: Call) -> dict[str, str]:
    """Say where it ran and with which idempotency key."""
    return {"ran_in": "worker" if get_current_job() else "web", "key": call.idempotency_key}
