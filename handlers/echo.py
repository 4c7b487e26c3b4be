"""Answer at once with the variables received: the first thing to try from a LoyJoy flow."""

from __future__ import annotations

from typing import Any

from flowhook import Call


def handle(call: Call) -> dict[str, Any]:
    """Return every variable the call carried (but echo's own status variables)."""
    return dict(call.variables)
