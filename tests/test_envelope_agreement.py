"""The two readers of a call's envelope agree, and the strict JSON reader reads as ``json.loads`` does.

A valid call is read in plain Python (flowhook/envelope_fast_path.py); any other by the marshmallow
schema (flowhook/envelope_schema.py), which words the refusal. Were they to drift apart, the fast
path would let through a call the schema refuses, or send a valid call the slow way. Each
generated JSON object is given to both, under the default limits or small ones (whose edges small
examples reach): both must refuse it, or both accept it with the same envelope. Most objects are a
valid call with one or two defects, each breaking one rule or standing at its edge: a missing,
null, empty or too long id, a value of another JSON type, a bad variable name, a value as long or
as deep as the limits allow and one more, as many variables as allowed and one more, an extra key.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from flowhook import defaults, strict_json
from flowhook.contract import Envelope, MalformedCallError
from flowhook.envelope_fast_path import valid_envelope
from flowhook.envelope_limits import Limits
from flowhook.envelope_schema import load_envelope

# The readers are cheap (microseconds a call): many more examples than the profile's default, each
# test within about a second and a half (the `fast` profile of `make test-fast` tries a quarter).
MANY = settings(max_examples=settings().max_examples * 8)

IDS = ("process_instance_id", "process_definition_id")
PARTS = ("params", "variables")

# Text the JSON reader can return: any code point, lone surrogates too (it reads "\ud800").
any_character = st.characters(exclude_categories=())
texts = st.text(any_character, max_size=8) | st.sampled_from(
    ["", " ", "0", "42", "-7", "1.5", "true", "null", "{}", "\n", "a\n", "é", "\u0663", "\ud800", "\x00"]
)
# Numbers as the JSON reader returns them: integers of at most its 30 digits, finite floats.
integers = st.integers(-(10**strict_json.MAX_DIGITS) + 1, 10**strict_json.MAX_DIGITS - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | integers | floats | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6
)
NAME = r"[A-Za-z0-9_]+"
names = st.from_regex(NAME, fullmatch=True).map(lambda name: name[:8])
# A third letters and digits of other scripts (word characters to `\w`, which a looser pattern
# would let through), a third a space, hyphen, newline, nothing or a lone surrogate, a third any
# text that is no name.
not_names = (
    st.sampled_from(["é", "ß", "Ω", "\u0663", "\uff41", "a\u0663", "\u00b2"])
    | st.sampled_from(["a-b", "first name", "abc\n", "\nabc", "", " ", "x\u0301", "\ud800"])
    | texts.filter(lambda text: re.fullmatch(NAME, text) is None)
)
# The limits a deployment may set (settings.py allows each from 1): the defaults, or small ones.
limit_sets = st.just(Limits()) | st.builds(Limits, st.integers(1, 4), st.integers(1, 4), st.integers(1, 8))


def nest(containers: list[bool], leaf: Any) -> Any:
    """``leaf`` inside one list (True) or object (False) per item of ``containers``."""
    for in_list in containers:
        leaf = [leaf] if in_list else {"k": leaf}
    return leaf


def around(limit: int) -> st.SearchStrategy[int]:
    """One under ``limit``, the limit itself, or one over (none under 0)."""
    return st.sampled_from([max(limit + step, 0) for step in (-1, 0, 1)])


@functools.cache
def fitting_strings(limits: Limits) -> st.SearchStrategy[str]:
    """Strings a value may be under ``limits``, up to the longest."""
    return st.text(any_character, max_size=min(limits.max_value_length, 8)) | st.just("x" * limits.max_value_length)


@functools.cache
def fitting_values(limits: Limits) -> st.SearchStrategy[Any]:
    """Values of ``params`` or ``variables`` within the limits, up to their edges."""
    leaves = fitting_strings(limits) | st.none() | st.booleans() | integers | floats
    # A value of a part is at depth 2, so its leaf may be inside max_depth - 2 containers (with
    # max_depth 1, no value fits: valid_calls draws none).
    room = max(limits.max_depth - 2, 0)
    return (
        leaves
        | st.builds(nest, st.lists(st.booleans(), max_size=room), leaves)
        | st.builds(nest, st.lists(st.booleans(), min_size=room, max_size=room), leaves)
    )


@functools.cache
def valid_calls(limits: Limits) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects the schema accepts under ``limits``, some at the edge of each limit.

    A part is often all strings, as LoyJoy's variables are, which the fast path checks apart.
    """
    most = min(3, limits.max_variables) if limits.max_depth >= 2 else 0
    many = st.builds(dict.fromkeys, st.just([f"v{number}" for number in range(limits.max_variables)]), st.just("x"))
    return st.fixed_dictionaries(
        {
            "process_instance_id": st.text(any_character, min_size=1, max_size=8)
            | integers
            | st.just("x" * defaults.MAX_ID_LENGTH)
        },
        optional={
            "process_definition_id": st.none() | texts | integers | st.just("x" * defaults.MAX_ID_LENGTH),
            "params": st.none()
            | st.dictionaries(texts, fitting_strings(limits), max_size=most)
            | st.dictionaries(texts, fitting_values(limits), max_size=most),
            "variables": st.none()
            | st.dictionaries(names, fitting_strings(limits), max_size=most)
            | st.dictionaries(names, fitting_values(limits), max_size=most)
            | (many if limits.max_depth >= 2 else st.nothing()),
        },
    )


def a_part(document: dict[str, Any], part: str) -> dict[str, Any]:
    """``document[part]``, made an object (a copy of it, or a new one) to take a defect."""
    value = document.get(part)
    made: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
    document[part] = made
    return made


def defect(draw: st.DrawFn, document: dict[str, Any], limits: Limits) -> str:
    """Break one rule in ``document``, or bring it to a rule's edge; the name of what was done."""
    kind = draw(
        st.sampled_from(
            [
                "missing instance id",
                "id of another type",
                "id at its length edge",
                "id as a number or a numeric string",
                "part of another type",
                "not a name",
                "value at the length edge",
                "value at the depth edge",
                "count at the edge",
                "any value anywhere",
            ]
        )
    )
    if kind == "missing instance id":
        document.pop("process_instance_id", None)
    elif kind == "id of another type":
        document[draw(st.sampled_from(IDS))] = draw(st.sampled_from([None, True, False, 1.0, [], ["a"], {}, {"a": 1}]))
    elif kind == "id at its length edge":
        document[draw(st.sampled_from(IDS))] = "x" * draw(around(defaults.MAX_ID_LENGTH) | st.just(0))
    elif kind == "id as a number or a numeric string":
        number = draw(integers)
        document[draw(st.sampled_from(IDS))] = draw(st.sampled_from([number, str(number), float(number)]))
    elif kind == "part of another type":
        document[draw(st.sampled_from(PARTS))] = draw(
            st.sampled_from([True, 0, 1.5, "", "{}", [], ["a"], [{"a": "b"}]])
        )
    elif kind == "not a name":
        variables = a_part(document, "variables")
        # In place of a name, where there is one: the count stays within its limit.
        value = variables.pop(draw(st.sampled_from(sorted(variables))), "x") if variables else "x"
        variables[draw(not_names)] = value
    elif kind == "value at the length edge":
        value = "x" * draw(around(limits.max_value_length))
        part = draw(st.sampled_from(PARTS))
        where = draw(st.sampled_from(["alone", "beside the others", "in a list"]))
        if where == "alone":
            document[part] = {"a": value}
        else:
            a_part(document, part)[draw(names)] = value if where == "beside the others" else [value]
    elif kind == "value at the depth edge":
        containers = draw(
            around(limits.max_depth - 2).flatmap(lambda size: st.lists(st.booleans(), min_size=size, max_size=size))
        )
        a_part(document, draw(st.sampled_from(PARTS)))[draw(names)] = nest(containers, draw(scalars))
    elif kind == "count at the edge":
        document["variables"] = {f"v{number}": "x" for number in range(draw(around(limits.max_variables)))}
    else:
        document[draw(st.sampled_from([*IDS, *PARTS]) | texts)] = draw(json_values)
    return kind


@st.composite
def calls(draw: st.DrawFn) -> tuple[dict[str, Any], Limits]:
    """A JSON object as the strict reader returns it, and the limits to read it under.

    A valid call: a fifth of the time as it is, three fifths with one defect, a fifth with two; and
    at times a field LoyJoy may add.
    """
    limits = draw(limit_sets)
    document = {**draw(st.dictionaries(texts, scalars, max_size=1)), **draw(valid_calls(limits))}
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        event(defect(draw, document, limits))
    return document, limits


def by_schema(document: dict[str, Any], limits: Limits) -> Envelope | None:
    """The schema's envelope of ``document``, or None where the schema refuses it."""
    try:
        return load_envelope(document, limits)
    except MalformedCallError:
        return None


@MANY
@given(calls())
# FLOWHOOK_MAX_DEPTH=1 allows no value inside params and variables, and a call without any: the fast
# path refused every call under it (each then went through the schema).
@example(({"process_instance_id": "0"}, Limits(max_depth=1)))
@example(({"process_instance_id": "0", "variables": {"a": "1"}}, Limits(max_depth=1)))
def test_the_fast_path_accepts_exactly_what_the_schema_accepts(call: tuple[dict[str, Any], Limits]) -> None:
    document, limits = call
    fast = valid_envelope(document, limits)
    slow = by_schema(document, limits)
    event("accepted" if slow is not None else "refused")
    # repr, not ==: 1 == 1.0 == True, and one reader's 1 where the other reads "1" must show.
    assert repr(fast) == repr(slow)


@st.composite
def bodies(draw: st.DrawFn) -> bytes | str:
    """A call's body as bytes in an encoding JSON allows or not, or as text; often with a defect."""
    text = json.dumps(draw(calls())[0], ensure_ascii=draw(st.booleans()))
    text = draw(
        st.sampled_from(
            [
                text,
                text[: len(text) // 2],
                text.replace("{", '{"k": 1, "k": 2, ', 1),
                text.replace("{", '{"n": NaN, ', 1),
                text.replace("{", '{"n": -Infinity, ', 1),
                text.replace("{", '{"n": 1e400, ', 1),
                text.replace("{", '{"n": ' + "9" * strict_json.MAX_DIGITS + ", ", 1),
                text.replace("{", '{"n": -' + "9" * (strict_json.MAX_DIGITS + 1) + ", ", 1),
                text.replace("{", '{"n": "\\udc80", ', 1),
                "\ufeff" + text,
                "[" * 50 + "]" * 50,
            ]
        )
    )
    if draw(st.booleans()):
        return text
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-32-le"]))
    body = text.encode(encoding, "surrogatepass")
    at = draw(st.integers(0, len(body)))
    # Now and then a byte that no encoding reads there, or a surrogate written in UTF-8.
    return body[:at] + draw(st.sampled_from([b""] * 5 + [b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"])) + body[at:]


def outcome(read: Callable[[bytes | str], Any], body: bytes | str) -> tuple[str, str]:
    """What ``read`` made of ``body``: its value, exactly, or its error and message."""
    try:
        return "read", repr(read(body))
    except ValueError as error:
        return type(error).__name__, str(error)


@MANY
@given(bodies() | st.binary(max_size=40))
def test_the_strict_reader_reads_as_json_loads_with_its_hooks(body: bytes | str) -> None:
    strict = outcome(strict_json.loads, body)
    event(strict[0])
    assert strict == outcome(lambda body: json.loads(body, **strict_json.HOOKS), body)
