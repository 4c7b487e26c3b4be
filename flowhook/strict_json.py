"""The JSON reader of call bodies: ``json.loads`` that refuses what two readers could read apart.

A duplicate key, NaN or Infinity, a number too large for a float and an integer of more digits
than any id or count are refused (a proxy and Flowhook could each read another call from them, or
the parser could spend seconds on them). The decoder is made once: ``json.loads`` with hooks
builds a decoder (and its scanner) per call.
"""

from __future__ import annotations

import json
from typing import Any

# Longest integer accepted, in digits: more is no id or count a flow has, only a parser's burden.
MAX_DIGITS = 30


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:30]} is too large")
    return number


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number has more than {MAX_DIGITS} digits")
    return int(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one name would let a proxy and Flowhook read different calls: refuse.
    document = dict(pairs)
    if len(document) != len(pairs):
        names = [key for key, _ in pairs]
        duplicate = next(key for key in names if names.count(key) > 1)
        raise ValueError(f"the key {duplicate[:50]!r} appears twice")
    return document


# The hooks as ``json.loads`` takes them: ``loads(body)`` reads as ``json.loads(body, **HOOKS)`` does.
HOOKS: dict[str, Any] = {
    "parse_constant": _refuse_constant,
    "parse_float": _finite_float,
    "parse_int": _bounded_int,
    "object_pairs_hook": _no_duplicate_keys,
}

_DECODER = json.JSONDecoder(**HOOKS)


def loads(body: bytes | bytearray | str) -> Any:
    """``json.loads(body, **HOOKS)``, step for step, with the decoder made once.

    Raises:
        ValueError: when the body is not JSON, or holds what the hooks refuse (a
            ``json.JSONDecodeError``; a ``UnicodeDecodeError`` for bytes of no Unicode encoding).
        RecursionError: when the body is nested deeper than the interpreter's recursion limit.
    """
    if isinstance(body, str):
        if body.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", body, 0)
        text = body
    elif isinstance(body, bytes | bytearray):
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    else:
        raise TypeError(f"the JSON object must be str, bytes or bytearray, not {body.__class__.__name__}")
    return _DECODER.decode(text)
