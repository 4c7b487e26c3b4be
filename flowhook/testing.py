"""Moved to ``flowhook.dev.testing``: handler tests written before the move keep working."""

from __future__ import annotations

import warnings

from flowhook.dev.testing import run

warnings.warn(
    "flowhook.testing moved to flowhook.dev.testing: import run from there",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["run"]
