"""The envelope of a valid call, checked in plain Python: the fast path of every call.

A call LoyJoy sends is almost always valid, and loading it through the marshmallow schema costs
several times more than these checks (docs/benchmarks.md). The path accepts exactly what
:func:`flowhook.envelope_schema.load_envelope` accepts and builds the same envelope
(tests/test_envelope_agreement.py holds the two to it); whatever it does not accept goes through
the schema, which words the refusal.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from flowhook import defaults
from flowhook.contract import NAME_CHARACTERS, Envelope, MalformedCallError
from flowhook.envelope_limits import Limits, check_sizes

# What `_flow_id` answers for a value the schema would refuse.
_REFUSED = object()


def _flow_id(value: Any, required: bool) -> Any:
    """An id as the schema's ``FlowId`` and its length check load it; ``_REFUSED`` where they refuse."""
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


def _fits(values: Collection[Any], limits: Limits) -> bool:
    """Whether the values of a part (``params`` or ``variables``) are within the size limits."""
    # The common part: flat strings, each at depth 2, checked without a call per value.
    if limits.max_depth >= 2 and set(map(type, values)) <= {str}:
        return max(map(len, values), default=0) <= limits.max_value_length
    try:
        for value in values:
            check_sizes(value, limits, 2)
    except MalformedCallError:
        return False
    return True


def valid_envelope(document: dict[str, Any], limits: Limits) -> Envelope | None:
    """The envelope of a call that passes every check; None when any check fails."""
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
        or not NAME_CHARACTERS.fullmatch("".join(variables))
        or not _fits(variables.values(), limits)
    ):
        return None
    return Envelope(
        process_instance_id=instance,
        process_definition_id=definition,
        params=params,
        variables=variables,
    )
