"""A handler module whose Input is not a marshmallow schema."""

from __future__ import annotations

from flowhook import Call

Input = {"order_id": "string"}


def handle(call: Call) -> None:
    """Never reached: start-up refuses the Input."""
