"""The `web` mode: run inline under the budget, hand the work to a worker when it overruns."""

from __future__ import annotations

import time
from pathlib import Path

from redis import Redis

from app import create_app
from flowhook.dev.redis_server import EmbeddedRedis
from tests.conftest import CallFunction, caller
from tests.handlers import inline_overrun
from tests.waiting import wait_until


def commands_served(server: Redis) -> int:
    """Every command the server has run, from any client or pipeline, less the INFO calls asking."""
    stats = server.info("commandstats")
    return sum(int(figures["calls"]) for name, figures in stats.items() if name != "cmdstat_info")


def test_a_fast_web_handler_answers_inline_without_redis(tmp_path: Path) -> None:
    # A Redis of its own, which no worker uses: whatever it serves, this app asked for.
    with EmbeddedRedis(tmp_path, appendonly=False) as server:
        app = create_app(
            {"TESTING": True, "REDIS_URL": server.url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_BUDGET": "0.5"}
        )
        call = caller(app.test_client(), "inline-1")
        with Redis.from_url(server.url) as counter:
            before = commands_served(counter)
            answer = call("quick")
            assert answer == {
                "ran_in": "web",
                "key": answer["key"],
                "quick_status": "done",
                "quick_job": "",
                "quick_error": "",
            }
            assert commands_served(counter) == before  # no Redis at all on the inline path
            # The count does see this app: work for a worker goes through Redis.
            assert call("kept")["kept_status"] == "pending"  # no worker listens here
            assert commands_served(counter) > before
        app.extensions["flowhook"].store.connection.close()  # before its server goes


def inline_attempt(case: str, timeout: float = 5.0) -> dict[str, object]:
    """What the inline attempt of ``case`` saw, once it has ended."""
    attempts = inline_overrun.INLINE_ATTEMPTS
    seen: dict[str, object] = wait_until(
        lambda: next((attempt for attempt in attempts if attempt["case"] == case), None),
        timeout,
        f"no inline attempt for {case}",
        interval=0.01,
    )
    return seen


def test_an_overrunning_web_handler_is_pending_and_the_worker_finishes(call: CallFunction) -> None:
    started = time.monotonic()
    pending = call("inline_overrun", {"case": "o1"})
    assert time.monotonic() - started < 1.5
    assert pending["inline_overrun_status"] == "pending"
    assert pending["inline_overrun_progress"] == "started inline"
    attempt = inline_attempt("o1")
    assert attempt["stopped"] is True  # the late inline attempt was told to stop
    assert attempt["left"] == 0.0

    done = call("inline_overrun", {"case": "o1", **pending})
    assert done["inline_overrun_status"] == "done"
    assert done["ran_in"] == "worker"  # the inline attempt's late result was discarded
    assert done["key"] == pending["inline_overrun_job"]  # one idempotency key across the hand-off


def test_a_resend_that_overruns_too_attaches_to_the_handed_off_job(call: CallFunction, redis: Redis) -> None:
    pending = call("inline_overrun", {"case": "o2", "gate": "true"})
    resent = call("inline_overrun", {"case": "o2", "gate": "true"})  # runs inline again: web may run twice
    assert resent["inline_overrun_job"] == pending["inline_overrun_job"]  # but the worker's work runs once
    redis.rpush("test:gate:o2", "open")
    assert call("inline_overrun", {"case": "o2", "gate": "true", **resent})["ran_in"] == "worker"


def test_a_retryable_error_inline_hands_the_work_to_a_worker(call: CallFunction) -> None:
    answer = call("web_flaky")
    assert answer == {"ran_in": "worker", "web_flaky_status": "done", "web_flaky_job": "", "web_flaky_error": ""}
