"""Pure-Python work that holds the processor: never waits, never yields to an event loop."""

from __future__ import annotations

import time

from flowhook import Call


def compute(seconds: float, call: Call) -> int:
    """Hash numbers for ``seconds`` of wall-clock time (or until the call is stopped); returns the rounds."""
    rounds = 0
    finish = time.perf_counter() + seconds
    while time.perf_counter() < finish and not call.stopped:
        for number in range(1000):
            hash(str(number * rounds))
        rounds += 1
    return rounds
