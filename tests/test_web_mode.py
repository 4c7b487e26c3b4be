"""The `web` mode: run inline under the budget, hand the work to a worker when it overruns."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from redis import Redis

from tests.conftest import CallFunction
from tests.handlers import inline_overrun


def test_a_fast_web_handler_answers_inline_without_the_queue(
    app: Flask, call: CallFunction, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = app.extensions["flowhook"].store.connection
    commands: list[str] = []
    send = connection.execute_command

    def recording(*args: object, **options: object) -> object:
        commands.append(str(args[0]))
        return send(*args, **options)

    monkeypatch.setattr(connection, "execute_command", recording)
    answer = call("quick")
    assert answer == {"ran_in": "web", "key": answer["key"], "quick_status": "done", "quick_job": "", "quick_error": ""}
    assert commands == []  # no Redis at all on the inline path
    assert not redis.exists(f"rq:job:{answer['key']}")


def inline_attempt(case: str, timeout: float = 5.0) -> dict[str, object]:
    """What the inline attempt of ``case`` saw, once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for attempt in inline_overrun.INLINE_ATTEMPTS:
            if attempt["case"] == case:
                return attempt
        time.sleep(0.01)
    raise AssertionError(f"no inline attempt for {case}")


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
