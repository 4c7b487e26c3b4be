"""A pytest plugin for RQ's suite under ``make rq-suite``: each test's outcome, and a bound on its time.

Loaded with ``-p dev.rq_suite.plugin`` into the suite's pytest. It appends each test's
outcome (``passed``, ``failed`` or ``skipped``) to the file ``FLOWHOOK_RQ_SUITE_RESULTS`` names, one
JSON line per test as it ends, and a ``started`` line as it begins: a test that ends the whole
process is named by its ``started`` line. After every test it ends the worker processes the test
left running, and in the pool's run stops the pool workers it left working; in the pool's run it
also ends a test that outlasts ``FLOWHOOK_RQ_SUITE_TIMEOUT`` seconds. (pytest-timeout bounds the
run with RQ's workers; under gevent its ``SIGALRM`` would raise in gevent's hub, not in the test.)
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Generator

import pytest

POOL = os.environ.get("FLOWHOOK_RQ_SUITE_WORKERS") == "pool"
outcomes: dict[str, str] = {}


class SuiteTimeoutError(Exception):
    """The test ran past ``FLOWHOOK_RQ_SUITE_TIMEOUT``."""


def record(test: str, outcome: str) -> None:
    path = os.environ.get("FLOWHOOK_RQ_SUITE_RESULTS")
    if path:
        with open(path, "a") as results:
            results.write(json.dumps({"test": test, "outcome": outcome}) + "\n")


def pytest_runtest_logstart(nodeid: str) -> None:
    record(nodeid, "started")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note a test's outcome: failed if any phase failed, else skipped or passed."""
    if outcomes.get(report.nodeid) == "failed":
        return
    if report.failed:
        outcomes[report.nodeid] = "failed"
    elif report.skipped:
        outcomes[report.nodeid] = "skipped"
    elif report.when == "call":
        outcomes[report.nodeid] = "passed"


def pytest_runtest_logfinish(nodeid: str) -> None:
    record(nodeid, outcomes.get(nodeid, "failed"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown() -> None:
    """Stop what the test left working before the next test starts (and before its tearDown).

    The processes it started and left running (a worker waiting for a command that never came)
    would take the jobs of the tests after it, and Python waits for them at exit; in the pool's
    run, so would the pool workers it left working in this process.
    """
    for child in multiprocessing.active_children():
        child.kill()
        child.join()
    if POOL:
        from dev.rq_suite.substitute import stop_pool_workers  # noqa: PLC0415 - imports RQ: pool run only

        stop_pool_workers()


if POOL:
    import gevent

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call() -> Generator[None, None, None]:
        """Raise :class:`SuiteTimeoutError` in a test that runs too long (at its next wait, as gevent does)."""
        seconds = float(os.environ.get("FLOWHOOK_RQ_SUITE_TIMEOUT", "60"))
        with gevent.Timeout(seconds, SuiteTimeoutError(f"the test ran past {seconds:g} s")):
            return (yield)
