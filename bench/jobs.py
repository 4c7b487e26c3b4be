"""The raw RQ baseline's job."""

from __future__ import annotations


def noop(value: str) -> str:
    """As little work as a job can be."""
    return value
