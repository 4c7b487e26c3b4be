"""Riding out a Redis that is away: try again within a deadline, and log the outage once.

A Sentinel failover takes about 4 s, a Redis restart a few seconds: shorter than a call's budget.
A call that meets a refused or silent Redis keeps trying until its deadline, so such an outage
costs the chat user only time; a worker holds a finished job's outcome until it can write it.
Each process logs the outage twice: once when Redis goes away (WARNING), once when it is back,
with how long it was away (INFO); not once per call or job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import RedisError

Result = TypeVar("Result")

# The first pause before trying Redis again, doubled each time up to the longest: a blip costs
# little, a longer outage costs Redis a connection attempt per caller and pause.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 0.5


class Outage:
    """Whether this process finds Redis away, since when, and a way to try again within a deadline.

    Args:
        log: Where the outage's start and end are told.
    """

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        # When the outage began, under one key. Greenlets and the worker's native heartbeat thread
        # note failures at once: ``setdefault`` and ``pop`` on a dict are atomic under the GIL, so
        # exactly one of them logs each change, without a lock on every command.
        self._began: dict[str, float] = {}

    @property
    def since(self) -> float | None:
        """When (monotonic) this process found Redis away; None while it answers."""
        return self._began.get("since")

    def lost(self, error: RedisError) -> None:
        """Note a failed Redis command; the first of an outage is logged."""
        now = time.monotonic()
        if self._began.setdefault("since", now) is now:
            self.log.warning("Redis unavailable: %s; trying again until it is back", error)

    def back(self) -> None:
        """Note a Redis command that worked; the first after an outage is logged."""
        if self._began:
            since = self._began.pop("since", None)
            if since is not None:
                self.log.info("Redis back after %.1f s away", time.monotonic() - since)

    def away_for(self) -> float:
        """Seconds since Redis went away; 0 while it answers."""
        since = self.since
        return 0.0 if since is None else time.monotonic() - since

    def retry(self, operation: Callable[[], Result], deadline: float) -> Result:
        """``operation()``, tried again while Redis is away, until ``deadline`` (monotonic).

        Raises:
            RedisError: the last failure, once the deadline has passed.
        """
        pause = FIRST_PAUSE
        while True:
            try:
                result = operation()
            except RedisError as error:
                self.lost(error)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                time.sleep(min(pause, remaining))  # and a last try at the deadline itself
                pause = min(2 * pause, LONGEST_PAUSE)
                continue
            self.back()
            return result
