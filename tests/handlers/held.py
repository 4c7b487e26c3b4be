"""`gated` with polls held as long as the service's poll wait (FLOWHOOK_POLL_WAIT, 15 s by default)."""

from __future__ import annotations

from tests.handlers.gated import Input, handle

__all__ = ["Input", "handle"]

SETTINGS = {"budget": 1}
