"""Echo, through an RQ worker (the default path)."""

from __future__ import annotations

from typing import Any

from flowhook import Call


def handle(call: Call) -> dict[str, Any]:
    """Return the variables."""
    return dict(call.variables)
