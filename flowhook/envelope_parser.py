"""Reading a WebService call's body into its envelope: strict JSON, then the checks of the envelope."""

from __future__ import annotations

from flowhook import strict_json
from flowhook.contract import Envelope, MalformedCallError
from flowhook.envelope_fast_path import valid_envelope
from flowhook.envelope_limits import Limits
from flowhook.envelope_schema import load_envelope

_DEFAULT_LIMITS = Limits()


def parse_envelope(body: bytes, limits: Limits = _DEFAULT_LIMITS) -> Envelope:
    """Parse and validate a call body.

    Raises:
        MalformedCallError: when the body is not JSON (or in no encoding JSON allows, or has
            duplicate keys, NaN or oversized numbers), not an object, not a valid envelope, or over
            a limit.
    """
    try:
        document = strict_json.loads(body)
    except (ValueError, RecursionError) as error:
        # RecursionError: absurdly deep nesting must be a 400 like any other bad JSON.
        raise MalformedCallError(f"the body is not valid JSON: {_first_line(error)}") from None
    if not isinstance(document, dict):
        raise MalformedCallError("the body must be a JSON object")
    envelope = valid_envelope(document, limits)
    # Any other call than a valid one goes through the schema, which words the refusal.
    return envelope if envelope is not None else load_envelope(document, limits)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
