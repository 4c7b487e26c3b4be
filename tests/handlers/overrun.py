"""Runs past its job timeout."""

from __future__ import annotations

import time

from flowhook import Call

SETTINGS = {"job_timeout": 1, "budget": 4}


def handle(call: Call) -> dict[str, str]:
    """Sleep longer than the job may run."""
    time.sleep(10)
    return {"never": "here"}
