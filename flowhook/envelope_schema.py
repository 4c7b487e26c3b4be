"""The envelope of a WebService call as a marshmallow schema: the reference, which words refusals.

Every call that fails a check is read here, so that the refusal names the field and the reason; a
valid call is read by :mod:`flowhook.envelope_fast_path`, which must accept exactly what this
module accepts (tests/test_envelope_agreement.py holds the two to it). The schema is also the
``Envelope`` of the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates

from flowhook import defaults
from flowhook.contract import VARIABLE_NAME, Envelope, MalformedCallError, describe_errors
from flowhook.envelope_limits import Limits, check_sizes


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


def load_envelope(document: dict[str, Any], limits: Limits) -> Envelope:
    """The envelope of a call's JSON object, checked by the limits and the schema, in this order.

    Raises:
        MalformedCallError: the first check the call fails, in words: too many variables (413), a
            value too long (413) or nested too deep, then the schema's refusal of each field.
    """
    variables = document.get("variables")
    if isinstance(variables, dict) and len(variables) > limits.max_variables:
        raise MalformedCallError(f"more than {limits.max_variables} variables", status=413)
    for part in ("params", "variables"):
        check_sizes(document.get(part), limits)
    try:
        loaded: Envelope = _ENVELOPE.load(document)
    except ValidationError as error:
        raise MalformedCallError(f"the body is not a WebService call: {describe_errors(error)}") from None
    return loaded
