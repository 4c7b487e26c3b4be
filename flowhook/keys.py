"""Names of the Redis keys Flowhook itself writes (RQ names its own)."""

from __future__ import annotations

PREFIX = "flowhook"


def dedupe(fingerprint: str) -> str:
    """Key that maps a call's fingerprint to the job running it, while it runs."""
    return f"{PREFIX}:dedupe:{fingerprint}"


def job_figures(queue_name: str) -> str:
    """Hash of the workers' job counts and run-time buckets, per handler, for the web's /metrics."""
    return f"{PREFIX}:figures:{queue_name}"
