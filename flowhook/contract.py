"""The contract with LoyJoy: the call envelope that comes in and the answer that goes out.

Reading a call's body into its :class:`Envelope` is ``envelope_parser.py`` (with ``strict_json.py``,
``envelope_fast_path.py``, ``envelope_schema.py`` and ``envelope_limits.py``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

from flowhook.exceptions import HandlerError

DONE = "done"
PENDING = "pending"
FAILED = "failed"
INVALID = "invalid"

# What a pending answer tells the flow to do next (<h>_next): call again at once (an automatic
# jump back: the call still fits in the user's turn), or show a message and a "Check again" button.
POLL = "poll"
ASK = "ask"

# Flowhook's own reasons in <h>_error (a handler's come from its HandlerError), the same whichever
# side of the queue finds them: a flow may show them or branch on them.
UNAVAILABLE = "the service is temporarily unavailable; try again"
UNKNOWN_JOB = "unknown or expired job; start again"
INTERRUPTED = "the work was interrupted (its worker stopped); start again"
STOPPED = "the work was stopped by an operator; start again"

# The whole name, and nothing after it: `$` alone would let a name end in a newline ("abc\n").
# Callers use fullmatch; \A and \Z keep `match` exact for any caller that does not.
VARIABLE_NAME = re.compile(r"\A[A-Za-z0-9_]+\Z")
# Only the characters of names, for checking all of a call's names at once (each one non-empty).
NAME_CHARACTERS = re.compile(r"[A-Za-z0-9_]*")

# Suffixes of the variables a handler's answers set in its namespace. LoyJoy sends them back on
# every later call, so they are never treated as the handler's input.
STATUS_SUFFIXES = ("_status", "_job", "_error", "_progress", "_next")


# Envelope and Outcome are made for every call and never change after: slotted, not frozen, whose
# __init__ costs five times less (a frozen one sets each field through object.__setattr__).
@dataclass(slots=True)
class Envelope:
    """One WebService call as LoyJoy sent it, ids normalised to strings."""

    process_instance_id: str
    process_definition_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What became of a call's work, before it is written as status variables."""

    status: str
    variables: Mapping[str, str] = field(default_factory=dict)
    # The job that did (or does) the work; the answer names it only while `pending`.
    job_id: str = ""
    error: str = ""
    progress: str | None = None
    next: str = ASK  # in a pending answer: POLL or ASK


class MalformedCallError(ValueError):
    """The body is not a WebService call; answered with ``status`` (400, or 413 for sizes)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def describe_errors(error: ValidationError) -> str:
    """Turn marshmallow's error dict into one short line such as ``seconds: Not a valid number.``."""
    parts = [f"{path}: {message}" for path, message in _walk(error.messages, "")]
    return "; ".join(parts)


def _walk(messages: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        found: list[tuple[str, str]] = []
        for key, value in messages.items():
            found += _walk(value, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        return [(path or "body", " ".join(messages))]
    if isinstance(messages, list):
        return [pair for item in messages for pair in _walk(item, path)]
    return [(path or "body", str(messages))]


def flow_value(value: Any) -> str:
    """Write one value as LoyJoy stores variables: always a string."""
    if isinstance(value, str):  # the common case first: LoyJoy's own variables are strings
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def flow_variables(returned: Any) -> dict[str, str]:
    """Check what a handler returned and write it as flow variables.

    Raises:
        TypeError: when the handler returned something other than a mapping of variable names.
    """
    if returned is None:
        return {}
    if not isinstance(returned, Mapping):
        raise TypeError(f"a handler must return a dict of variables, not {type(returned).__name__}")
    # The common answer, string names and string values, checked without a call per variable.
    if (
        set(map(type, returned)) <= {str}
        and "" not in returned
        and NAME_CHARACTERS.fullmatch("".join(returned))
        and set(map(type, returned.values())) <= {str}
    ):
        return dict(returned)
    bad = [str(name) for name in returned if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name)]
    if bad:
        raise TypeError(f"a handler returned invalid variable names: {', '.join(sorted(bad))[:200]}")
    return {name: flow_value(value) for name, value in returned.items()}


@functools.cache
def status_variables(namespace: str) -> frozenset[str]:
    """The variables a handler's answers set about its own work (made once per namespace)."""
    return frozenset(namespace + suffix for suffix in STATUS_SUFFIXES)


def answer(namespace: str, outcome: Outcome) -> dict[str, Any]:
    """Build the JSON answer LoyJoy reads: status variables, plus the results when done."""
    variables: dict[str, str] = dict(outcome.variables) if outcome.status == DONE else {}
    variables[f"{namespace}_status"] = outcome.status
    variables[f"{namespace}_job"] = outcome.job_id if outcome.status == PENDING else ""
    variables[f"{namespace}_error"] = outcome.error
    if outcome.status == PENDING:
        variables[f"{namespace}_next"] = outcome.next
        if outcome.progress is not None:
            variables[f"{namespace}_progress"] = outcome.progress
    return {"data": {"variables": variables}}


def failure_reason(error: Exception) -> str:
    """The short reason a flow sees in ``<h>_error`` when a handler raised ``error``.

    Only a :class:`HandlerError`'s message is meant for the flow; any other message may hold
    personal data or internals, so the flow sees just the exception's type.
    """
    if isinstance(error, HandlerError):
        return str(error)[:500]
    if isinstance(error, ValidationError):  # the schema changed since the web app checked the call
        return f"the variables no longer pass the handler's schema: {describe_errors(error)}"[:500]
    return f"the handler failed ({type(error).__name__})"
