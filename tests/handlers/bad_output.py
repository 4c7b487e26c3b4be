"""Returns something that is not a dict of variables."""

from __future__ import annotations

from flowhook import Call


def handle(call: Call) -> list[str]:
    """Return a list, which no flow can store."""
    return ["not", "variables"]
