"""An outage is logged once when it begins and once when it ends, however many callers meet it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from flowhook import outage as outage_module
from flowhook.outage import Outage

pytestmark = pytest.mark.unit


def test_two_threads_that_meet_the_same_outage_at_the_same_moment_log_it_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's greenlets and its native heartbeat thread note Redis's state at any moment."""
    outage = Outage(logging.getLogger("test.outage"))
    together = threading.Barrier(2)

    def monotonic() -> float:
        # Both threads read the clock before either has noted anything: where a race would show.
        try:
            together.wait(timeout=0.5)
        except threading.BrokenBarrierError:
            together.reset()  # only one thread came this far: nothing to race
        return time.monotonic()

    monkeypatch.setattr(outage_module, "time", SimpleNamespace(monotonic=monotonic))

    def in_two_threads(note: Callable[[], None]) -> None:
        threads = [threading.Thread(target=note) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    with caplog.at_level(logging.INFO, logger="test.outage"):
        in_two_threads(lambda: outage.lost(RedisConnectionError("refused")))
        assert outage.since is not None
        in_two_threads(outage.back)
    messages = [record.getMessage() for record in caplog.records]
    assert sum(message.startswith("Redis unavailable") for message in messages) == 1
    assert sum(message.startswith("Redis back after") for message in messages) == 1
    assert outage.since is None
    assert outage.away_for() == 0.0
