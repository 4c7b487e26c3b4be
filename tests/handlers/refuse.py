"""Fails on purpose with a message meant for the flow."""

from __future__ import annotations

from flowhook import Call, HandlerError


def handle(call: Call) -> None:
    """Refuse, as a handler does when the ERP knows no such order."""
    raise HandlerError("no such order")
