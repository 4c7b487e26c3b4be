"""Every execution appends the call's number to one file, so the soak can count duplicates."""

from __future__ import annotations

import os


def note(number: str) -> None:
    """Append ``number`` to $SOAK_EXECUTIONS (one short write with O_APPEND: lines never mix)."""
    descriptor = os.open(os.environ["SOAK_EXECUTIONS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, f"{number}\n".encode())
    finally:
        os.close(descriptor)
