"""Polls held longer than the budget, and `<h>_next`: when the flow polls at once, when it asks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis

from app import create_app
from flowhook.contract import UNKNOWN_JOB
from flowhook.exceptions import ConfigurationError, HandlerModuleError
from flowhook.registry import discover
from flowhook.settings import Settings
from tests.conftest import CallFunction, WorkerPool, caller
from tests.test_worker_path import open_gate

# The `held` handler's budget (its SETTINGS): a new call waits this long.
BUDGET = 1.0


def timed(call: CallFunction, variables: dict[str, str]) -> tuple[dict[str, str], float]:
    started = time.monotonic()
    answer = call("held", variables)
    return answer, time.monotonic() - started


@pytest.fixture
def short_turns(redis_url: str, test_workers: WorkerPool, tmp_path: Path) -> Flask:
    """The test handlers with polls held 2 s and turns of 5 s: room for one poll after the first call."""
    return create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "FLOWHOOK_STATE_FILE": str(tmp_path / "run.json"),
            "FLOWHOOK_HANDLERS": test_workers.handlers_package,
            "FLOWHOOK_QUEUE": test_workers.queue,
            "FLOWHOOK_POLL_WAIT": "2",
            "FLOWHOOK_TURN_LIMIT": "5",
        }
    )


def test_a_poll_is_held_past_the_budget_and_answered_when_the_job_ends(
    call: CallFunction, redis: Redis, instance: str
) -> None:
    gate = f"held-{instance}"
    first, took = timed(call, {"gate": gate})
    assert (first["held_status"], first["held_next"]) == ("pending", "poll")
    assert took >= BUDGET
    opening = time.monotonic()  # the job ends 2.5 s from here, not from the poll's start
    open_gate(redis, gate, after=2.5)  # past the budget, well within the poll's 15 s
    answer, _ = timed(call, {"gate": gate, **first})
    took = time.monotonic() - opening
    assert answer["held_status"] == "done"
    assert answer["opened"] == gate
    assert 2.5 <= took < 6  # held past the budget, answered at the job's end, not at the poll's bound
    assert "held_next" not in answer


def test_next_says_poll_while_the_turn_has_room_then_ask_then_poll_after_the_click(
    short_turns: Flask, redis: Redis
) -> None:
    call = caller(short_turns.test_client(), f"conv-{uuid.uuid4().hex}")
    gate = f"turns-{uuid.uuid4().hex}"
    # The turn begins: 1 s for the call, and a poll of 2 s still fits in 5 s.
    first, took = timed(call, {"gate": gate})
    assert (first["held_status"], first["held_next"]) == ("pending", "poll")
    # The flow jumps back at once. After it, 3 s of the turn are spent: no room for another poll.
    second, took = timed(call, {"gate": gate, **first})
    assert (second["held_status"], second["held_job"], second["held_next"]) == (
        "pending",
        first["held_job"],
        "ask",
    )
    assert took >= 2.0  # never before the poll's wait is over: the loop cannot spin
    # The user presses "Check again": a new turn, with room for one more poll after this one.
    third, took = timed(call, {"gate": gate, **second})
    assert (third["held_status"], third["held_next"]) == ("pending", "poll")
    assert took >= 2.0
    open_gate(redis, gate)
    assert timed(call, {"gate": gate, **third})[0]["held_status"] == "done"


def test_an_automatic_loop_never_spins_and_ends_when_its_job_is_gone(short_turns: Flask, redis: Redis) -> None:
    call = caller(short_turns.test_client(), f"conv-{uuid.uuid4().hex}")
    gate = f"spin-{uuid.uuid4().hex}"
    answer, took = timed(call, {"gate": gate})
    calls, started = 1, time.monotonic()
    # Follow the recipe's automatic jumps and press the button at once whenever the flow asks: the
    # quickest a flow can call. Every pending answer still waits out its poll's 2 s.
    while time.monotonic() - started < 5:
        assert answer["held_status"] == "pending"
        answer, took = timed(call, {"gate": gate, **answer})
        calls += 1
        assert took >= 2.0
    assert calls <= 1 + 5 / 2 + 1
    # The job is gone (expired, or deleted): the loop ends with `failed` and no job.
    redis.delete(f"rq:job:{answer['held_job']}")
    gone, took = timed(call, {"gate": gate, **answer})
    assert (gone["held_status"], gone["held_job"], gone["held_error"]) == ("failed", "", UNKNOWN_JOB)
    assert took < 1.0
    open_gate(redis, gate)  # let the worker's job end


def test_a_conversations_automatic_polls_stay_within_a_rate_limit_of_one_call_per_poll_wait(
    redis_url: str, test_workers: WorkerPool, tmp_path: Path, redis: Redis, instance: str
) -> None:
    """docs/operations.md: a conversation limit of 60 calls a minute per second of poll wait lets the loop through."""
    app = create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "FLOWHOOK_STATE_FILE": str(tmp_path / "run.json"),
            "FLOWHOOK_HANDLERS": test_workers.handlers_package,
            "FLOWHOOK_QUEUE": test_workers.queue,
            "FLOWHOOK_POLL_WAIT": "2",
            "FLOWHOOK_TURN_LIMIT": "5",
            # One call per poll wait, and the first call: 6 in any 10 s window.
            "FLOWHOOK_RATE_LIMIT_CONVERSATION": "6/10second",
        }
    )
    client = app.test_client()
    gate = f"limit-{uuid.uuid4().hex}"
    variables = {"gate": gate}
    started, calls = time.monotonic(), 0
    while time.monotonic() - started < 7:  # the recipe, the user clicking at once: as fast as a flow goes
        response = client.post("/webservice/held", json={"process_instance_id": instance, "variables": variables})
        calls += 1
        assert response.status_code == 200, f"call {calls} refused: {response.get_data(as_text=True)}"
        assert response.json is not None
        variables = {**variables, **response.json["data"]["variables"]}
    open_gate(redis, gate)


@pytest.mark.parametrize("seconds", ["20", "25", "0.5", "0"])
def test_a_poll_wait_at_or_above_loyjoys_timeout_is_refused_at_start_up(seconds: str) -> None:
    with pytest.raises(ConfigurationError, match=r"FLOWHOOK_POLL_WAIT.*less than 20"):
        Settings.from_env({"FLOWHOOK_POLL_WAIT": seconds})
    assert Settings.from_env({"FLOWHOOK_POLL_WAIT": "19.5"}).poll_wait == 19.5


def test_a_handler_whose_polls_would_reach_loyjoys_timeout_is_refused(redis_url: str) -> None:
    with pytest.raises(HandlerModuleError, match=r"bad_poll_wait/held\.py.*poll_wait.*less than 20"):
        discover(Settings(handlers_package="tests.broken.bad_poll_wait"))
    with pytest.raises(HandlerModuleError, match=r"bad_poll_wait/held\.py"):
        create_app({"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.broken.bad_poll_wait"})


@pytest.mark.parametrize("seconds", ["30", "0.5"])
def test_a_turn_limit_beyond_loyjoys_patience_is_refused(seconds: str) -> None:
    with pytest.raises(ConfigurationError, match="FLOWHOOK_TURN_LIMIT"):
        Settings.from_env({"FLOWHOOK_TURN_LIMIT": seconds})
