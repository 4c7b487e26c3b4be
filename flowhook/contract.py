"""The contract with LoyJoy: the call envelope that comes in and the answer that goes out."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates

from flowhook import defaults
from flowhook.exceptions import HandlerError

DONE = "done"
PENDING = "pending"
FAILED = "failed"
INVALID = "invalid"

VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_]+$")

# Suffixes of the variables a handler's answers set in its namespace. LoyJoy sends them back on
# every later call, so they are never treated as the handler's input.
STATUS_SUFFIXES = ("_status", "_job", "_error", "_progress")


@dataclass(frozen=True)
class Envelope:
    """One WebService call as LoyJoy sent it, ids normalised to strings."""

    process_instance_id: str
    process_definition_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What became of a call's work, before it is written as status variables."""

    status: str
    variables: Mapping[str, str] = field(default_factory=dict)
    job_id: str = ""
    error: str = ""
    progress: str | None = None


class FlowId(fields.Field[str]):
    """An id LoyJoy may send as a string or as an integer; loaded as a string."""

    default_error_messages = {"invalid": "Must be a string or an integer."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("invalid")
        return str(value)


class EnvelopeSchema(Schema):
    """The body of a WebService call. Unknown top-level fields are ignored: LoyJoy may add some."""

    class Meta:
        unknown = EXCLUDE

    process_instance_id = FlowId(required=True, validate=validate.Length(min=1, max=defaults.MAX_ID_LENGTH))
    process_definition_id = FlowId(allow_none=True, validate=validate.Length(max=defaults.MAX_ID_LENGTH))
    # JSON object keys are strings already; the names are checked in one pass below, which costs
    # far less per call than a key field per variable.
    params = fields.Dict(allow_none=True)
    variables = fields.Dict(allow_none=True)

    @validates("variables")
    def _check_names(self, variables: dict[str, Any] | None, **_: Any) -> None:
        bad = [name for name in variables or () if not VARIABLE_NAME.match(name)]
        if bad:
            raise ValidationError(f"Variable names may use only A-Z, a-z, 0-9 and _: {', '.join(bad)[:200]}")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Envelope:
        return Envelope(
            process_instance_id=data["process_instance_id"],
            process_definition_id=data.get("process_definition_id"),
            params=data.get("params") or {},
            variables=data.get("variables") or {},
        )


# One instance for every call: building a schema copies its fields, which costs more than loading.
_ENVELOPE = EnvelopeSchema()


class MalformedCallError(ValueError):
    """The body is not a WebService call; answered 400 with this message."""


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_envelope(body: bytes) -> Envelope:
    """Parse and validate a call body.

    Raises:
        MalformedCallError: when the body is not JSON, not an object or not a valid envelope.
    """
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        # RecursionError: absurdly deep nesting must be a 400 like any other bad JSON.
        raise MalformedCallError(f"the body is not valid JSON: {_first_line(error)}") from None
    if not isinstance(document, dict):
        raise MalformedCallError("the body must be a JSON object")
    try:
        envelope: Envelope = _ENVELOPE.load(document)
    except ValidationError as error:
        raise MalformedCallError(f"the body is not a WebService call: {describe_errors(error)}") from None
    return envelope


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


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
    bad = [str(name) for name in returned if not isinstance(name, str) or not VARIABLE_NAME.match(name)]
    if bad:
        raise TypeError(f"a handler returned invalid variable names: {', '.join(sorted(bad))[:200]}")
    return {name: flow_value(value) for name, value in returned.items()}


def status_variables(namespace: str) -> frozenset[str]:
    """The variables a handler's answers set about its own work."""
    return frozenset(namespace + suffix for suffix in STATUS_SUFFIXES)


def answer(namespace: str, outcome: Outcome) -> dict[str, Any]:
    """Build the JSON answer LoyJoy reads: status variables, plus the results when done."""
    variables: dict[str, str] = dict(outcome.variables) if outcome.status == DONE else {}
    variables[f"{namespace}_status"] = outcome.status
    variables[f"{namespace}_job"] = outcome.job_id if outcome.status == PENDING else ""
    variables[f"{namespace}_error"] = outcome.error
    if outcome.status == PENDING and outcome.progress is not None:
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
