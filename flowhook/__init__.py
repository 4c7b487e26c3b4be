"""Flowhook: answer LoyJoy WebService calls inline, or finish them in RQ workers while the flow polls."""

from __future__ import annotations

from flowhook.call import Call
from flowhook.exceptions import HandlerError, RetryableError

__all__ = ["Call", "HandlerError", "RetryableError"]
