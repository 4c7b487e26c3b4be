"""A handler module with no handle function."""

from __future__ import annotations


def run() -> None:
    """Misnamed: Flowhook calls handle(call)."""
