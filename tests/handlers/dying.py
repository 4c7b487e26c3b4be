"""Ends its own process mid-job, as a crashing C extension or an out-of-memory kill would."""

from __future__ import annotations

import os

from flowhook import Call

SETTINGS = {"budget": 1}


def handle(call: Call) -> dict[str, str]:
    """Exit the process at once: no exception, no cleanup, no outcome written."""
    os._exit(1)
