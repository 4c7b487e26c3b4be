"""How much a call may carry, beyond the body size that the web server checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowhook import defaults
from flowhook.contract import MalformedCallError


@dataclass(frozen=True)
class Limits:
    """The nesting inside ``params`` and ``variables``, the number of variables, one value's length."""

    max_depth: int = defaults.MAX_DEPTH
    max_variables: int = defaults.MAX_VARIABLES
    max_value_length: int = defaults.MAX_VALUE_LENGTH


def check_sizes(value: Any, limits: Limits, depth: int = 1) -> None:
    """Refuse values nested deeper than ``max_depth`` or strings longer than ``max_value_length``.

    ``depth`` is the value's own: 1 for ``params`` or ``variables`` itself, 2 for one of their values.

    Raises:
        MalformedCallError: naming the limit (413 for a long string, 400 for deep nesting).
    """
    if depth > limits.max_depth:
        raise MalformedCallError(f"values are nested more than {limits.max_depth} deep")
    if isinstance(value, str):
        if len(value) > limits.max_value_length:
            raise MalformedCallError(f"a value is longer than {limits.max_value_length} characters", status=413)
    elif isinstance(value, dict):
        for item in value.values():
            check_sizes(item, limits, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_sizes(item, limits, depth + 1)
