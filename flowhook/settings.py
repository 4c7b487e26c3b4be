"""The one settings object, read from the environment, shared by the web app and the workers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from flowhook import defaults
from flowhook.exceptions import ConfigurationError


@dataclass(frozen=True)
class Settings:
    """Every setting Flowhook reads; the README's configuration table lists the same."""

    redis_url: str = defaults.REDIS_URL
    budget: float = defaults.BUDGET
    port: int = defaults.PORT
    handlers_package: str = defaults.HANDLERS_PACKAGE
    queue_name: str = defaults.QUEUE_NAME
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    job_timeout: int = defaults.JOB_TIMEOUT
    queue_ttl: int = defaults.QUEUE_TTL
    result_ttl: int = defaults.RESULT_TTL
    log_level: str = "INFO"
    worker_class: str = defaults.WORKER_CLASS
    sentinels: str = ""
    sentinel_master: str = defaults.SENTINEL_MASTER
    web_processes: int = defaults.WEB_PROCESSES
    web_connections: int = defaults.WEB_CONNECTIONS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment).

        Raises:
            ConfigurationError: naming each variable that is out of range.
        """
        environ = os.environ if environ is None else environ
        try:
            settings: Settings = _SettingsSchema().load(dict(environ))
        except ValidationError as error:
            problems = "; ".join(f"{name}: {' '.join(_flat(msgs))}" for name, msgs in error.messages_dict.items())
            raise ConfigurationError(f"invalid settings: {problems}") from None
        return settings


def _flat(messages: object) -> list[str]:
    if isinstance(messages, list):
        return [str(message) for message in messages]
    return [str(messages)]


_seconds = validate.Range(min=1)


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
    port = fields.Integer(data_key="PORT", validate=validate.Range(min=1, max=65535))
    handlers_package = fields.String(data_key="FLOWHOOK_HANDLERS", validate=validate.Length(min=1))
    queue_name = fields.String(data_key="FLOWHOOK_QUEUE", validate=validate.Regexp(r"^[A-Za-z0-9_.:-]+$"))
    max_body_bytes = fields.Integer(data_key="FLOWHOOK_MAX_BODY_BYTES", validate=validate.Range(min=1024))
    job_timeout = fields.Integer(data_key="FLOWHOOK_JOB_TIMEOUT", validate=_seconds)
    queue_ttl = fields.Integer(data_key="FLOWHOOK_QUEUE_TTL", validate=_seconds)
    result_ttl = fields.Integer(data_key="FLOWHOOK_RESULT_TTL", validate=_seconds)
    log_level = fields.String(
        data_key="FLOWHOOK_LOG_LEVEL", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])
    )
    worker_class = fields.String(data_key="FLOWHOOK_WORKER_CLASS", validate=validate.OneOf(["simple", "fork"]))
    sentinels = fields.String(
        data_key="FLOWHOOK_SENTINELS",
        validate=validate.Regexp(r"^$|^[^,:\s]+:\d+(,[^,:\s]+:\d+)*$", error="must be host:port[,host:port...]"),
    )
    sentinel_master = fields.String(data_key="FLOWHOOK_SENTINEL_MASTER", validate=validate.Length(min=1))
    web_processes = fields.Integer(data_key="WEB_CONCURRENCY", validate=validate.Range(min=1))
    web_connections = fields.Integer(data_key="FLOWHOOK_CONNECTIONS", validate=validate.Range(min=1, max=10000))

    @post_load
    def _make(self, data: dict[str, object], **_: object) -> Settings:
        return Settings(**data)  # type: ignore[arg-type]
