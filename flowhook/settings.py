"""The one settings object, read from the environment, shared by the web app and the workers."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from limits import parse_many
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from flowhook import defaults
from flowhook.exceptions import ConfigurationError


@dataclass(frozen=True)
class Settings:
    """Every setting Flowhook reads; docs/operations.md's configuration table lists the same."""

    redis_url: str = defaults.REDIS_URL
    budget: float = defaults.BUDGET
    poll_wait: float = defaults.POLL_WAIT
    turn_limit: float = defaults.TURN_LIMIT
    port: int = defaults.PORT
    handlers_package: str = defaults.HANDLERS_PACKAGE
    queue_name: str = defaults.QUEUE_NAME
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    job_timeout: int = defaults.JOB_TIMEOUT
    queue_ttl: int = defaults.QUEUE_TTL
    result_ttl: int = defaults.RESULT_TTL
    log_level: str = "INFO"
    worker_class: str = defaults.WORKER_CLASS
    worker_concurrency: int = defaults.WORKER_CONCURRENCY
    heartbeat_ttl: int = defaults.HEARTBEAT_TTL
    outage_limit: int = defaults.OUTAGE_LIMIT
    keepalive: int = defaults.KEEPALIVE
    sentinels: str = ""
    sentinel_master: str = defaults.SENTINEL_MASTER
    web_processes: int = defaults.WEB_PROCESSES
    web_connections: int = defaults.WEB_CONNECTIONS
    tokens: tuple[str, ...] = ()
    handler_tokens: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rate_limit_conversation: str = defaults.RATE_LIMIT_CONVERSATION
    rate_limit_address: str = defaults.RATE_LIMIT_ADDRESS
    trusted_proxies: int = 0
    log_values: bool = False
    max_depth: int = defaults.MAX_DEPTH
    max_variables: int = defaults.MAX_VARIABLES
    max_value_length: int = defaults.MAX_VALUE_LENGTH
    host: str = defaults.HOST
    state_file: str = defaults.STATE_FILE
    metrics: bool = True
    metrics_tokens: tuple[str, ...] = ()
    log_format: str = defaults.LOG_FORMAT
    api_docs: bool = False
    # The variables of the settings above that the environment set: the developer commands act on
    # the default Redis address or port only when told to (REDIS_URL, PORT).
    given: frozenset[str] = frozenset()

    def tokens_for(self, handler: str) -> tuple[str, ...]:
        """The tokens that open a handler: its own (FLOWHOOK_TOKENS_<NAME>) or the global ones."""
        return self.handler_tokens.get(handler, self.tokens)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment).

        Raises:
            ConfigurationError: naming each variable that is out of range.
        """
        environ = os.environ if environ is None else environ
        # FLOWHOOK_TOKENS_ORDER_LOOKUP=... holds the tokens of handler order_lookup alone.
        handler_tokens = {
            name.removeprefix(_HANDLER_TOKENS).lower(): value
            for name, value in environ.items()
            if name.startswith(_HANDLER_TOKENS)
        }
        try:
            settings: Settings = _SettingsSchema(context_tokens=handler_tokens).load(dict(environ))
        except ValidationError as error:
            problems = "; ".join(f"{name}: {' '.join(_flat(msgs))}" for name, msgs in error.messages_dict.items())
            raise ConfigurationError(f"invalid settings: {problems}") from None
        return settings


def _flat(messages: object) -> list[str]:
    if isinstance(messages, list):
        return [str(message) for message in messages]
    return [str(messages)]


_seconds = validate.Range(min=1)
# A poll waits at least a second (an automatic poll loop never spins) and answers before LoyJoy's
# 20 s are over; the handler SETTINGS key poll_wait has the same range.
poll_wait_range = validate.Range(
    min=1,
    max=defaults.LIMIT_POLL_WAIT,
    max_inclusive=False,
    error=f"must be at least 1 and less than {defaults.LIMIT_POLL_WAIT:g} seconds (LoyJoy gives up after about 20 s)",
)
_HANDLER_TOKENS = "FLOWHOOK_TOKENS_"


def _token_list(value: str) -> tuple[str, ...]:
    tokens = tuple(token.strip() for token in value.split(",") if token.strip())
    if any(len(token) < defaults.MIN_TOKEN_LENGTH for token in tokens):
        raise ValidationError(f"every token must have at least {defaults.MIN_TOKEN_LENGTH} characters")
    return tokens


def _rate_limit(value: str) -> None:
    if value:
        try:
            parse_many(value)
        except ValueError:
            raise ValidationError("must be a rate limit such as 120/minute or 10/second;1000/hour") from None


class _SettingsSchema(Schema):
    """Maps environment variables to :class:`Settings` fields, with their limits."""

    class Meta:
        unknown = EXCLUDE

    redis_url = fields.String(data_key="REDIS_URL", validate=validate.Length(min=1))
    budget = fields.Float(
        data_key="FLOWHOOK_BUDGET",
        validate=validate.Range(
            min=0,
            max=defaults.MAX_BUDGET,
            min_inclusive=False,
            error=f"must be more than 0 and at most {defaults.MAX_BUDGET:g} seconds (LoyJoy gives up after about 20 s)",
        ),
    )
    poll_wait = fields.Float(data_key="FLOWHOOK_POLL_WAIT", validate=poll_wait_range)
    turn_limit = fields.Float(
        data_key="FLOWHOOK_TURN_LIMIT",
        validate=validate.Range(
            min=1,
            max=defaults.LIMIT_TURN,
            max_inclusive=False,
            error=f"must be at least 1 and less than {defaults.LIMIT_TURN:g} seconds (LoyJoy's chat gives up on a turn "
            "after about 30 s)",
        ),
    )
    port = fields.Integer(data_key="PORT", validate=validate.Range(min=1, max=65535))
    handlers_package = fields.String(data_key="FLOWHOOK_HANDLERS", validate=validate.Length(min=1))
    queue_name = fields.String(data_key="FLOWHOOK_QUEUE", validate=validate.Regexp(r"^[A-Za-z0-9_.:-]+\Z"))
    max_body_bytes = fields.Integer(data_key="FLOWHOOK_MAX_BODY_BYTES", validate=validate.Range(min=1024))
    job_timeout = fields.Integer(data_key="FLOWHOOK_JOB_TIMEOUT", validate=_seconds)
    queue_ttl = fields.Integer(data_key="FLOWHOOK_QUEUE_TTL", validate=_seconds)
    result_ttl = fields.Integer(data_key="FLOWHOOK_RESULT_TTL", validate=_seconds)
    log_level = fields.String(
        data_key="FLOWHOOK_LOG_LEVEL", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])
    )
    worker_class = fields.String(data_key="FLOWHOOK_WORKER_CLASS", validate=validate.OneOf(["pool", "simple", "fork"]))
    worker_concurrency = fields.Integer(
        data_key="FLOWHOOK_WORKER_CONCURRENCY", validate=validate.Range(min=1, max=10000)
    )
    heartbeat_ttl = fields.Integer(data_key="FLOWHOOK_HEARTBEAT_TTL", validate=validate.Range(min=4, max=600))
    outage_limit = fields.Integer(data_key="FLOWHOOK_OUTAGE_LIMIT", validate=validate.Range(min=5, max=3600))
    keepalive = fields.Integer(data_key="FLOWHOOK_KEEPALIVE", validate=validate.Range(min=1, max=3600))
    sentinels = fields.String(
        data_key="FLOWHOOK_SENTINELS",
        validate=validate.Regexp(r"^\Z|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*\Z", error="must be host:port[,host:port...]"),
    )
    sentinel_master = fields.String(data_key="FLOWHOOK_SENTINEL_MASTER", validate=validate.Length(min=1))
    tokens = fields.Function(deserialize=_token_list, data_key="FLOWHOOK_TOKENS")
    rate_limit_conversation = fields.String(data_key="FLOWHOOK_RATE_LIMIT_CONVERSATION", validate=_rate_limit)
    rate_limit_address = fields.String(data_key="FLOWHOOK_RATE_LIMIT_ADDRESS", validate=_rate_limit)
    trusted_proxies = fields.Integer(data_key="FLOWHOOK_TRUSTED_PROXIES", validate=validate.Range(min=0, max=10))
    log_values = fields.Boolean(data_key="FLOWHOOK_LOG_VALUES")
    max_depth = fields.Integer(data_key="FLOWHOOK_MAX_DEPTH", validate=validate.Range(min=1, max=100))
    max_variables = fields.Integer(data_key="FLOWHOOK_MAX_VARIABLES", validate=validate.Range(min=1))
    max_value_length = fields.Integer(data_key="FLOWHOOK_MAX_VALUE_LENGTH", validate=validate.Range(min=1))
    web_processes = fields.Integer(data_key="WEB_CONCURRENCY", validate=validate.Range(min=1))
    web_connections = fields.Integer(data_key="FLOWHOOK_CONNECTIONS", validate=validate.Range(min=1, max=10000))
    host = fields.String(data_key="FLOWHOOK_HOST", validate=validate.Length(min=1))
    state_file = fields.String(data_key="FLOWHOOK_STATE_FILE", validate=validate.Length(min=1))
    metrics = fields.Boolean(data_key="FLOWHOOK_METRICS")
    metrics_tokens = fields.Function(deserialize=_token_list, data_key="FLOWHOOK_METRICS_TOKENS")
    log_format = fields.String(data_key="FLOWHOOK_LOG_FORMAT", validate=validate.OneOf(["text", "json"]))
    # Empty (as .env.example has it) is the default of where it runs: on under `make run`, else off.
    api_docs = fields.Boolean(data_key="FLOWHOOK_API_DOCS", falsy={*fields.Boolean.falsy, ""})

    def __init__(self, context_tokens: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context_tokens = context_tokens or {}

    @validates_schema
    def _check_handler_tokens(self, _: dict[str, object], **__: object) -> None:
        for name, value in self.context_tokens.items():
            try:
                _token_list(value)
            except ValidationError as error:
                raise ValidationError(error.messages, field_name=f"{_HANDLER_TOKENS}{name.upper()}") from None

    @post_load
    def _make(self, data: dict[str, object], **_: object) -> Settings:
        handler_tokens = {name: _token_list(value) for name, value in self.context_tokens.items()}
        given = frozenset(self.fields[name].data_key or name for name in data)
        return Settings(**data, handler_tokens=handler_tokens, given=given)  # type: ignore[arg-type]


# FLOWHOOK_ names read by something other than the settings object: compose's published address,
# and the token `flask --app app call` presents.
_OTHER_NAMES = ("FLOWHOOK_PUBLISH", "FLOWHOOK_CALL_TOKEN")


def unknown_setting_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning for each ``FLOWHOOK_*`` name Flowhook does not read, with the closest known name.

    A misspelled setting (``FLOWHOOK_BUDEGT=3``) would otherwise be ignored without a word.
    """
    environ = os.environ if environ is None else environ
    read_by_settings = {field.data_key for field in _SettingsSchema().fields.values() if field.data_key}
    known = sorted(read_by_settings | set(_OTHER_NAMES))
    warnings = []
    for name in sorted(environ):
        if not name.startswith("FLOWHOOK_") or name in known or name.startswith(_HANDLER_TOKENS):
            continue
        # Compared without the common prefix, which would make every name look alike.
        by_suffix = {known_name.removeprefix("FLOWHOOK_"): known_name for known_name in known}
        closest = difflib.get_close_matches(name.removeprefix("FLOWHOOK_"), by_suffix, n=1)
        hint = f"; did you mean {by_suffix[closest[0]]}?" if closest else ""
        warnings.append(f"{name} is not a Flowhook setting and is ignored{hint}")
    return warnings
