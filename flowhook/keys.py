"""Names of the Redis keys Flowhook itself writes (RQ names its own)."""

from __future__ import annotations

PREFIX = "flowhook"


def dedupe(fingerprint: str) -> str:
    """Key that maps a call's fingerprint to the job running it, while it runs."""
    return f"{PREFIX}:dedupe:{fingerprint}"


def job_figures(queue_name: str) -> str:
    """Hash of the workers' job counts and run-time buckets, per handler, for the web's /metrics."""
    return f"{PREFIX}:figures:{queue_name}"


def turn(owner: str) -> str:
    """Key that holds when a conversation's current turn began, while its flow polls at once.

    Args:
        owner: The conversation and handler's tag (``flowhook.jobstore.owner_of``): a digest,
            since conversation ids are not key material.
    """
    return f"{PREFIX}:turn:{owner}"
