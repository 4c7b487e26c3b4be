"""Names of the Redis keys Flowhook itself writes (RQ names its own)."""

from __future__ import annotations

PREFIX = "flowhook"


def dedupe(fingerprint: str) -> str:
    """Key that maps a call's fingerprint to the job running it, while it runs."""
    return f"{PREFIX}:dedupe:{fingerprint}"
