"""A handler module whose polls would be held until LoyJoy times out."""

from __future__ import annotations

from flowhook import Call

SETTINGS = {"poll_wait": 20}


def handle(call: Call) -> None:
    """Never reached: start-up refuses the settings."""
