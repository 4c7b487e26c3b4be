"""Raises an unexpected error whose message holds personal data that must not reach the flow."""

from __future__ import annotations

from flowhook import Call


def handle(call: Call) -> None:
    """Fail like a bug would."""
    raise ValueError(f"cannot parse {call.variables.get('email')}")
