"""Personal data: variable values stay out of the logs unless switched on, and one conversation can be
forgotten on request."""

from __future__ import annotations

import logging
import uuid

import pytest
from redis import Redis

from app import create_app
from flowhook import keys
from flowhook.jobstore import owner_of
from flowhook.ratelimit import conversation_digest
from tests.conftest import CallFunction, WorkerPool, caller


def test_values_stay_out_of_the_web_and_worker_logs(
    call: CallFunction, test_workers: WorkerPool, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"john.smith.{uuid.uuid4().hex}@example.org"
    with caplog.at_level(logging.DEBUG):
        assert call("boom", {"email": secret})["boom_status"] == "failed"  # its exception names the value
        assert call("typed", {"email": secret, "count": "x"})["tp_status"] == "invalid"
    assert secret not in caplog.text
    assert test_workers.log is not None
    worker_log = test_workers.log.read_text()
    assert "ValueError (message hidden; FLOWHOOK_LOG_VALUES=true shows it)" in worker_log
    assert 'raise ValueError(f"cannot parse' in worker_log  # the traceback's frames are still there
    assert secret not in worker_log


def test_logging_values_can_be_switched_on(
    redis_url: str, test_workers: WorkerPool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": test_workers.queue}
    app = create_app({**settings, "FLOWHOOK_LOG_VALUES": "true"})
    secret = f"ada.{uuid.uuid4().hex}@example.org"
    with caplog.at_level(logging.INFO):
        caller(app.test_client(), "privacy-on")("quick", {"email": secret})
    assert secret in caplog.text


def test_forget_deletes_everything_of_one_conversation(
    redis_url: str, test_workers: WorkerPool, redis: Redis, instance: str
) -> None:
    settings = {"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": test_workers.queue}
    app = create_app({**settings, "FLOWHOOK_RATE_LIMIT_CONVERSATION": "100/minute"})
    runner = app.test_cli_runner()
    client = app.test_client()
    mine, theirs = caller(client, instance), caller(client, instance + "-other")
    gate = uuid.uuid4().hex
    running = mine("gated", {"gate": gate})["gated_job"]
    turn = keys.turn(owner_of("gated", instance))
    assert redis.exists(turn)  # the pending answer said `poll`: when the turn began is kept
    finished = mine("kept")["key"]
    other = theirs("kept")["key"]

    first = runner.invoke(args=["forget", instance])

    assert first.exit_code == 1  # one job was still running: not everything is gone yet
    assert first.output.startswith(
        f"deleted 1 job and 1 rate-limit counter of {instance}\n1 job is running: run forget again once it ends"
    )
    assert not redis.exists(f"rq:job:{finished}", f"rq:results:{finished}")
    assert not redis.keys(f"LIMITS:*conversation:{conversation_digest(instance)}*")
    assert not redis.exists(turn)
    redis.rpush(f"test:gate:{gate}", "open")
    assert mine("gated", {"gate": gate, "gated_job": running})["gated_status"] == "done"

    second = runner.invoke(args=["forget", instance])

    assert second.exit_code == 0, second.output
    assert not redis.exists(f"rq:job:{running}", f"rq:results:{running}")
    assert redis.exists(f"rq:job:{other}", f"rq:results:{other}") == 2  # another conversation's stays
    assert mine("gated", {"gate": gate, "gated_job": running})["gated_error"] == "unknown or expired job; start again"
