"""make rq-suite's parts that need no download: the private Redis, the substitution, the verdict.

The suite itself (RQ's source release, minutes) runs only by ``make rq-suite``, never here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import Redis

from dev.rq_suite.__main__ import (
    EXPECTED_FAILURES,
    KINDS,
    Expected,
    expected_failures,
    read_outcomes,
    report,
)
from tests.conftest import ROOT

SITE = ROOT / "dev" / "rq_suite" / "site"


def run_in_suite_process(code: str, redis_url: str, workers: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new Python process prepared as every process of a suite's run is."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(SITE), str(ROOT)]),
        FLOWHOOK_RQ_SUITE_REDIS_PORT=str(urlsplit(redis_url).port),
        FLOWHOOK_RQ_SUITE_WORKERS=workers,
    )
    command = [sys.executable, "-c", code]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_rqs_tests_reach_the_private_redis_and_never_port_6379(redis_url: str, redis: Redis) -> None:
    key = f"rq-suite-probe:{uuid.uuid4().hex}"
    # The port is checked before any command is sent: a broken redirect never reaches port 6379.
    code = f"""
from redis import Redis
client = Redis.from_url("redis://127.0.0.1:6379/0")
assert client.connection_pool.make_connection().port == {urlsplit(redis_url).port}, "not redirected"
assert Redis().connection_pool.make_connection().port == {urlsplit(redis_url).port}, "not redirected"
assert client.connection_pool.connection_kwargs["port"] == 6379  # as given: RQ's tests read it back
client.set("{key}", "reached", ex=60)
"""
    ran = run_in_suite_process(code, redis_url, "rq")
    assert ran.returncode == 0, ran.stderr
    assert redis.get(key) == b"reached"


def test_the_pool_class_stands_in_for_rqs_workers_under_gevent(redis_url: str) -> None:
    # As RQ's own code makes one (find_by_key: the name by position) and as its tests do.
    code = """
import json, rq, rq.worker
from gevent import monkey
from redis import Redis
from workers.pool import PoolWorker
by_position = rq.Worker([], "by-position", connection=Redis())
from_queue = rq.SimpleWorker(rq.Queue("default", connection=Redis()))
print(json.dumps({
    "patched": monkey.is_module_patched("socket"),
    "classes": [isinstance(worker, PoolWorker) for worker in (by_position, from_queue)],
    "names": [rq.worker.Worker is rq.Worker, rq.worker.SimpleWorker is rq.SimpleWorker],
    "name": by_position.name,
    "slots": from_queue.slots["default"]._initial_value,
}))
"""
    ran = run_in_suite_process(code, redis_url, "pool")
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    assert found["patched"] is True
    assert found["classes"] == [True, True]
    assert found["names"] == [True, True]
    assert found["name"] == "by-position"
    assert found["slots"] > 1


def expected(*tests: str) -> dict[str, Expected]:
    return {test: Expected(test, "one at a time", "a reason") for test in tests}


def test_a_failure_not_listed_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    baseline = {"t::a": "passed", "t::b": "passed", "t::c": "passed"}
    pool = {"t::a": "passed", "t::b": "failed", "t::c": "failed"}
    assert report(baseline, pool, expected("t::b")) == 1
    out = capsys.readouterr().out
    assert "3 pass with RQ's workers, 1 with the pool class" in out
    assert "unexpected failures (1):\n  t::c\n" in out


def test_listed_failures_and_failures_of_rqs_workers_too_pass_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    baseline = {"t::a": "passed", "t::b": "passed", "t::c": "failed"}
    pool = {"t::a": "passed", "t::b": "failed", "t::c": "failed"}
    assert report(baseline, pool, expected("t::b")) == 0
    out = capsys.readouterr().out
    assert "fail with RQ's workers too (1): t::c" in out
    assert "unexpected failures: none" in out


def test_a_test_that_ended_the_process_counts_as_failed(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    lines = [("t::a", "started"), ("t::a", "passed"), ("t::b", "started")]
    results.write_text("".join(json.dumps({"test": test, "outcome": outcome}) + "\n" for test, outcome in lines))
    assert read_outcomes(results) == {"t::a": "passed", "t::b": "failed"}


def test_every_expected_failure_has_a_reason_and_is_in_the_docs() -> None:
    listed = expected_failures(EXPECTED_FAILURES)
    assert listed
    docs = (ROOT / "docs" / "rq-suite.md").read_text()
    for test in listed.values():
        assert re.fullmatch(r"tests/test_\w+\.py::\w+(::\w+)?(\[.+\])?", test.test), test.test
        assert test.reason.strip()
        assert test.kind in KINDS
        assert test.test.split("::", 1)[1] in docs, test.test
