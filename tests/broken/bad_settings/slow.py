"""A handler module whose budget would let LoyJoy time out."""

from __future__ import annotations

from flowhook import Call

SETTINGS = {"budget": 30}


def handle(call: Call) -> None:
    """Never reached: start-up refuses the settings."""
