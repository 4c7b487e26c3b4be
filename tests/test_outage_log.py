"""An outage is logged once when it begins and once when it ends, however many callers meet it."""

from __future__ import annotations

import logging
import sys
import threading

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from flowhook.outage import Outage

pytestmark = pytest.mark.unit


def test_threads_that_meet_the_same_outage_at_once_log_it_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(logging.getLogger("test.outage"))
    start = threading.Barrier(8)

    def meet_outage_then_recovery() -> None:
        start.wait()
        for _ in range(200):
            outage.lost(RedisConnectionError("refused"))
        start.wait()
        for _ in range(200):
            outage.back()

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads change hands between any two bytecodes: races show
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(20):
            threads = [threading.Thread(target=meet_outage_then_recovery) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    sys.setswitchinterval(switch_interval)
    messages = [record.getMessage() for record in caplog.records]
    assert sum(message.startswith("Redis unavailable") for message in messages) == 20
    assert sum(message.startswith("Redis back after") for message in messages) == 20
    assert outage.since is None
    assert outage.away_for() == 0.0
