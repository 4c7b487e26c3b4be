"""The contract with LoyJoy: the call envelope that comes in and the answer that goes out."""

from __future__ import annotations

import functools
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
_NAME_CHARACTERS = re.compile(r"[A-Za-z0-9_]*")

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
        bad = [name for name in variables or () if not VARIABLE_NAME.fullmatch(name)]
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
    """The body is not a WebService call; answered with ``status`` (400, or 413 for sizes)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """How much a call may carry, beyond the body size that the web server checks."""

    max_depth: int = defaults.MAX_DEPTH
    max_variables: int = defaults.MAX_VARIABLES
    max_value_length: int = defaults.MAX_VALUE_LENGTH


# Longest integer accepted, in digits: more is no id or count a flow has, only a parser's burden.
_MAX_DIGITS = 30


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:30]} is too large")
    return number


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise ValueError(f"a number has more than {_MAX_DIGITS} digits")
    return int(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one name would let a proxy and Flowhook read different calls: refuse.
    document = dict(pairs)
    if len(document) != len(pairs):
        names = [key for key, _ in pairs]
        duplicate = next(key for key in names if names.count(key) > 1)
        raise ValueError(f"the key {duplicate[:50]!r} appears twice")
    return document


def _check_sizes(value: Any, limits: Limits, depth: int = 1) -> None:
    """Refuse values nested deeper than ``max_depth`` or strings longer than ``max_value_length``."""
    if depth > limits.max_depth:
        raise MalformedCallError(f"values are nested more than {limits.max_depth} deep")
    if isinstance(value, str):
        if len(value) > limits.max_value_length:
            raise MalformedCallError(f"a value is longer than {limits.max_value_length} characters", status=413)
    elif isinstance(value, dict):
        for item in value.values():
            _check_sizes(item, limits, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_sizes(item, limits, depth + 1)


# The decoder of every call, made once: `json.loads` with hooks builds a decoder (and its scanner)
# per call.
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
    parse_int=_bounded_int,
    object_pairs_hook=_no_duplicate_keys,
)


def _load_json(body: bytes | bytearray | str) -> Any:
    """``json.loads(body, **hooks)``, step for step, with the decoder made once."""
    if isinstance(body, str):
        if body.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", body, 0)
        text = body
    elif isinstance(body, bytes | bytearray):
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    else:
        raise TypeError(f"the JSON object must be str, bytes or bytearray, not {body.__class__.__name__}")
    return _DECODER.decode(text)


def parse_envelope(body: bytes, limits: Limits = Limits()) -> Envelope:
    """Parse and validate a call body.

    Raises:
        MalformedCallError: when the body is not JSON (or not UTF-8, or has duplicate keys, NaN or
            oversized numbers), not an object, not a valid envelope, or over a limit.
    """
    try:
        document = _load_json(body)
    except (ValueError, RecursionError) as error:
        # RecursionError: absurdly deep nesting must be a 400 like any other bad JSON.
        raise MalformedCallError(f"the body is not valid JSON: {_first_line(error)}") from None
    if not isinstance(document, dict):
        raise MalformedCallError("the body must be a JSON object")
    envelope = _valid_envelope(document, limits)
    if envelope is not None:
        return envelope
    # Something is refused (or unusual): today's checks in today's order, so every refusal keeps
    # its status and message.
    variables = document.get("variables")
    if isinstance(variables, dict) and len(variables) > limits.max_variables:
        raise MalformedCallError(f"more than {limits.max_variables} variables", status=413)
    for part in ("params", "variables"):
        _check_sizes(document.get(part), limits)
    try:
        loaded: Envelope = _ENVELOPE.load(document)
    except ValidationError as error:
        raise MalformedCallError(f"the body is not a WebService call: {describe_errors(error)}") from None
    return loaded


# What `_flow_id` answers for a value the schema would refuse.
_REFUSED = object()


def _flow_id(value: Any, required: bool) -> Any:
    """An id as :class:`FlowId` and its length check load it; ``_REFUSED`` where they would refuse."""
    if type(value) is str:
        text = value
    elif type(value) is int:  # not bool, which is refused
        text = str(value)
    elif value is None and not required:
        return None
    else:
        return _REFUSED
    if len(text) > defaults.MAX_ID_LENGTH or (required and not text):
        return _REFUSED
    return text


def _fits(values: Any, limits: Limits) -> bool:
    """Whether the values of a part (``params`` or ``variables``) are within the size limits."""
    kinds = set(map(type, values))
    if kinds <= {str}:  # the common part: flat strings, checked without a call per value
        return max(map(len, values), default=0) <= limits.max_value_length
    try:
        for value in values:
            _check_sizes(value, limits, 2)
    except MalformedCallError:
        return False
    return True


def _valid_envelope(document: dict[str, Any], limits: Limits) -> Envelope | None:
    """The envelope of a call that passes every check, in plain Python; None when any check fails.

    Accepts exactly what the schema and the limits accept, and builds the same envelope; on None
    the caller runs those, which word the refusal.
    """
    if limits.max_depth < 2:
        return None
    instance = _flow_id(document.get("process_instance_id"), required=True)
    definition = _flow_id(document.get("process_definition_id"), required=False)
    if instance is _REFUSED or definition is _REFUSED:
        return None
    params = document.get("params")
    if params is None:
        params = {}
    elif type(params) is not dict or not _fits(params.values(), limits):
        return None
    variables = document.get("variables")
    if variables is None:
        variables = {}
    elif (
        type(variables) is not dict
        or len(variables) > limits.max_variables
        or "" in variables
        or not _NAME_CHARACTERS.fullmatch("".join(variables))
        or not _fits(variables.values(), limits)
    ):
        return None
    return Envelope(
        process_instance_id=instance,
        process_definition_id=definition,
        params=params,
        variables=variables,
    )


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
    # The common answer, string names and string values, checked without a call per variable.
    if (
        set(map(type, returned)) <= {str}
        and "" not in returned
        and _NAME_CHARACTERS.fullmatch("".join(returned))
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
