"""Waiting in tests: for a condition, with a deadline; for a job, by polling as a flow's loop does.

Every test that waits goes through these two, so that a wait always has a deadline and says what it
waited for when it runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

# A WebService call of one conversation: handler and variables in, the answer's variables out.
Call = Callable[[str, dict[str, str]], dict[str, str]]


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    message: str | Callable[[], str],
    *,
    interval: float = 0.05,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something true and return that; fail after ``timeout`` s.

    ``message`` says what did not happen (a function, to read a log only when it is needed);
    exceptions of the ``ignoring`` types count as "not yet" (a server still starting).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignoring:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout:g} s: {message() if callable(message) else message}")
        time.sleep(interval)


def poll_until_over(
    call: Call,
    handler: str,
    variables: dict[str, str],
    answer: dict[str, str] | None = None,
    *,
    timeout: float = 30.0,
    each: Callable[[dict[str, str]], object] | None = None,
) -> dict[str, str]:
    """Poll as the flow's loop does until the answer is no longer pending; return the last answer.

    The first call is made here unless its ``answer`` is given. Each poll sends ``variables`` with the
    previous answer (its ``<handler>_job``), as LoyJoy sends back every variable; ``each`` sees every
    answer this function gets. Fails if the job is still pending after ``timeout`` seconds.
    """
    if answer is None:
        answer = call(handler, dict(variables))
        if each is not None:
            each(answer)
    deadline = time.monotonic() + timeout
    while answer[f"{handler}_status"] == "pending":
        if time.monotonic() > deadline:
            pytest.fail(f"{handler} still pending after {timeout:g} s: {answer}")
        answer = call(handler, {**variables, **answer})
        if each is not None:
            each(answer)
    return answer
