"""A handler module that fails to import."""

from __future__ import annotations

raise RuntimeError("the CRM client is not configured")
