"""Echo, inline in the web process."""

from __future__ import annotations

from typing import Any

from flowhook import Call

SETTINGS = {"runs_in": "web"}


def handle(call: Call) -> dict[str, Any]:
    """Return the variables."""
    return dict(call.variables)
