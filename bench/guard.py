"""Refuse a measurement taken while other work kept the machine busy, and repeat it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import psutil

T = TypeVar("T")

# More CPU than this (in cores) used by processes outside the benchmark makes a run noisy.
BUSY_CORES = 0.15


@dataclass(frozen=True)
class Guarded(Generic[T]):
    """A measurement, with how busy the rest of the machine was while it ran."""

    value: T
    other_cores: float
    tries: int

    @property
    def noisy(self) -> bool:
        return self.other_cores > BUSY_CORES


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def guarded(run: Callable[[], T], our_pids: Callable[[], list[int]], tries: int = 3) -> Guarded[T]:
    """Run ``run`` until the rest of the machine stayed quiet during it, at most ``tries`` times.

    Our CPU is the benchmark's own process with its waited-for children (the load generator), and
    the stack's processes with theirs (forked work horses); whatever else the machine did in the
    meantime counts against the run.
    """
    result: Guarded[T] | None = None
    for attempt in range(1, tries + 1):
        pids = [psutil.Process().pid, *our_pids()]
        ours_before, machine_before = _cpu_seconds(pids), _machine_busy_seconds()
        started = time.monotonic()
        value = run()
        elapsed = time.monotonic() - started
        ours = _cpu_seconds(pids) - ours_before
        other = max(0.0, (_machine_busy_seconds() - machine_before - ours) / elapsed)
        result = Guarded(value, other, attempt)
        if not result.noisy:
            break
    assert result is not None
    return result
