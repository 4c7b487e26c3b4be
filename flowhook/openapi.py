"""The OpenAPI 3 document of the service, generated from its marshmallow schemas, at ``/openapi.json``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask
from marshmallow import Schema, fields

from flowhook.contract import DONE, FAILED, INVALID, PENDING
from flowhook.envelope_schema import EnvelopeSchema, FlowId
from flowhook.extension import current_flowhook
from flowhook.registry import Registry
from flowhook.settings import Settings

bp = Blueprint("openapi", __name__)


class ErrorDetailSchema(Schema):
    code = fields.Integer(required=True)
    name = fields.String(required=True)
    message = fields.String(required=True)


class ErrorSchema(Schema):
    """A call that is not from a working flow: not JSON, too large, unknown handler, ..."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(Schema):
    ready = fields.Boolean(required=True)
    redis = fields.String(required=True)
    workers = fields.Integer(required=True)
    unserved = fields.List(fields.String(), required=True)
    missing = fields.List(fields.String(), required=True)


def _flow_id(_: Any, field: fields.Field[Any], **__: Any) -> dict[str, Any]:
    """Ids LoyJoy sends as strings or integers."""
    if isinstance(field, FlowId):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    return {}


def _json_numbers(_: Any, __: fields.Field[Any], ret: dict[str, Any], **___: Any) -> dict[str, Any]:
    """Limits of a Decimal field as JSON numbers: apispec keeps them Decimal, which JSON writes as text."""
    return {
        key: int(value) if value == value.to_integral_value() else float(value)
        for key, value in ret.items()
        if isinstance(value, Decimal)
    }


ERRORS = {
    "400": "not JSON, not an object, no process_instance_id, a bad variable name, nested too deep",
    "413": "the body, a value or the number of variables is over its limit",
    "415": "not Content-Type: application/json",
    "429": "over a rate limit",
}


def _answer(namespace: str) -> dict[str, Any]:
    """A handler's answer to a well-formed call: its status variables by name, then its results."""
    status = {
        f"{namespace}_status": {"type": "string", "enum": [DONE, PENDING, FAILED, INVALID]},
        f"{namespace}_job": {"type": "string", "description": "the job's id while pending, else empty"},
        f"{namespace}_error": {"type": "string", "description": "why, when failed or invalid, else empty"},
        f"{namespace}_progress": {"type": "string", "description": "in pending answers, when the handler reports it"},
    }
    variables = {
        "type": "object",
        "properties": status,
        "required": list(status)[:3],
        # When done, the handler's own variables, unprefixed: every value a string.
        "additionalProperties": {"type": "string"},
    }
    data = {"type": "object", "properties": {"variables": variables}, "required": ["variables"]}
    example = {f"{namespace}_status": DONE, f"{namespace}_job": "", f"{namespace}_error": ""}
    answer = {"data": {"variables": example}}
    return {"type": "object", "properties": {"data": data}, "required": ["data"], "example": answer}


def build(registry: Registry, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document for these handlers and settings."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Flowhook",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": "The backend LoyJoy's WebService module calls: one endpoint per handler."},
    )
    plugin.converter.add_attribute_function(_flow_id)  # type: ignore[union-attr]
    plugin.converter.add_attribute_function(_json_numbers)  # type: ignore[union-attr]
    for name, component in (("Envelope", EnvelopeSchema), ("Error", ErrorSchema)):
        spec.components.schema(name, schema=component)
    spec.components.schema("Health", schema=HealthSchema)
    spec.components.schema("Readiness", schema=ReadinessSchema)
    error = {"content": {"application/json": {"schema": "Error"}}}
    errors = {code: {"description": text, **error} for code, text in ERRORS.items()}
    if settings.tokens or settings.handler_tokens:
        errors["401"] = {"description": "missing or invalid credentials", **error}
        # The three ways LoyJoy's module can send a token (flowhook/auth.py); the first is the usual.
        bearer = "a token of FLOWHOOK_TOKENS, as `Authorization: Bearer <token>`"
        spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "description": bearer})
        spec.components.security_scheme("basic", {"type": "http", "scheme": "basic"})
        spec.components.security_scheme("token", {"type": "apiKey", "in": "query", "name": "token"})
    # Handlers that share an Input class share its component: apispec describes a class once.
    input_components: dict[type[Schema], str] = {}
    for handler in registry.values():
        reads = ", ".join(handler.input_schema.load_fields) if handler.input_schema is not None else "every variable"
        body: dict[str, Any] = {"$ref": "#/components/schemas/Envelope"}
        if handler.input_schema is not None:
            # The handler's own fields, with their types and formats, as what `variables` must hold;
            # LoyJoy's other variables may come along (the schema ignores them).
            input_class = type(handler.input_schema)
            if input_class not in input_components:
                input_components[input_class] = f"{handler.name}.Input"
                spec.components.schema(input_components[input_class], schema=handler.input_schema)
            input_name = input_components[input_class]
            variables = {"$ref": f"#/components/schemas/{input_name}"}
            body = {"allOf": [body, {"type": "object", "properties": {"variables": variables}}]}
        spec.path(
            path=f"/webservice/{handler.name}",
            operations={
                "post": {
                    "tags": ["handlers"],
                    "summary": f"Call the {handler.name} handler",
                    "description": f"Reads {reads}; answers {handler.namespace}_status, _job, _error, and "
                    "when pending _next (poll: call again at once; ask: ask the user first) and _progress.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                    "responses": {
                        "200": {
                            "description": "the status variables, and the results when done",
                            "content": {"application/json": {"schema": _answer(handler.namespace)}},
                        },
                        **errors,
                    },
                    **(
                        {"security": [{"bearer": []}, {"basic": []}, {"token": []}]}
                        if settings.tokens_for(handler.name)
                        else {}
                    ),
                }
            },
        )
    spec.path(
        path="/healthz",
        operations={
            "get": {
                "tags": ["health"],
                "responses": {"200": {"description": "alive", "content": {"application/json": {"schema": "Health"}}}},
            }
        },
    )
    readiness = {"content": {"application/json": {"schema": "Readiness"}}}
    spec.path(
        path="/readyz",
        operations={
            "get": {
                "tags": ["health"],
                "responses": {
                    "200": {"description": "Redis answers and every handler has a live worker", **readiness},
                    "503": {"description": "a part is missing", **readiness},
                },
            }
        },
    )
    return spec.to_dict()


@bp.get("/openapi.json")
def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return current_flowhook().openapi_document


def init_app(app: Flask) -> None:
    """Serve the document the app factory built."""
    app.register_blueprint(bp)
