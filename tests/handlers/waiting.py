"""`gated` with the service's own budget: a call waits for it as long as the budget allows."""

from __future__ import annotations

from tests.handlers.gated import Input, handle

__all__ = ["Input", "handle"]
