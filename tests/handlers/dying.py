"""Ends its own process mid-job, as a crashing C extension or an out-of-memory kill would."""

from __future__ import annotations

import os

from flowhook import Call

# Polls held 1 s, not the service's 15: the tests poll a pending job without waiting long.
SETTINGS = {"budget": 1, "poll_wait": 1}


def handle(call: Call) -> dict[str, str]:
    """Exit the process at once: no exception, no cleanup, no outcome written."""
    os._exit(1)
