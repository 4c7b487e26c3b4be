"""Log lines as text or as one JSON object per line, each carrying its call's trace id.

``FLOWHOOK_LOG_FORMAT=json`` makes the web service (gunicorn's own lines and its access line
included), the workers and ``make run`` write JSON a log pipeline reads without parsing text. A
line written while a call is answered carries that call's ``trace`` (LoyJoy's ``X-B3-TraceId`` or
Flowhook's request id); the job started for the call keeps the id in its meta, so a line written
while a worker runs that job carries the same ``trace``, its ``job`` and its ``handler``.
Variable values never reach a line: only names, ids, outcomes and durations.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import g, has_request_context
from gunicorn.glogging import Logger as GunicornLogger
from pythonjsonlogger.json import JsonFormatter

from flowhook.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The fields of every JSON line, renamed to what log pipelines expect; extras are added after them.
JSON_FIELDS = ("asctime", "levelname", "name", "message")
JSON_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}
# Every field a JSON line may carry. Any other field a library adds to its records is dropped:
# RQ adds a failed job's arguments (the call's variables: personal data) to its exception line.
JSON_KEPT = frozenset(
    {
        *JSON_RENAMED.values(),
        "message",
        "exc_info",
        "stack_info",
        "handler",
        "job",
        "trace",
        "outcome",
        "duration_ms",
        "remote",
        "method",
        "path",
        "status",
        "bytes",
        "queue",
        "job_id",
    }
)
# Where a call's path names an unknown handler, the name is cut here (it is the caller's text).
MAX_LOGGED_NAME = 100

# The job a worker runs in this greenlet or thread: its handler, id and trace id.
_job: ContextVar[dict[str, str] | None] = ContextVar("flowhook_job", default=None)


def current_trace() -> str | None:
    """The trace id of the call being answered or of the job being run here, if any."""
    if has_request_context():
        trace: str | None = g.get("trace_id")
        return trace
    job = _job.get()
    return job.get("trace") if job else None


@contextmanager
def job_context(handler: str, job_id: str, trace: str | None) -> Iterator[None]:
    """Lines logged inside carry the job's handler, id and trace id."""
    fields = {"handler": handler, "job": job_id}
    if trace:
        fields["trace"] = trace
    token = _job.set(fields)
    try:
        yield
    finally:
        _job.reset(token)


class CallContext(logging.Filter):
    """Adds the trace id (and, in a worker, the job's handler and id) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _job.get()
        if job:
            for name, value in job.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        elif has_request_context() and not hasattr(record, "trace"):
            trace = g.get("trace_id")
            if trace:
                record.trace = trace
        return True


class _KeptFieldsFormatter(JsonFormatter):
    """python-json-logger's formatter, writing only the fields of :data:`JSON_KEPT`."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in log_data.items() if name in JSON_KEPT}


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, then the record's known extra fields."""
    return _KeptFieldsFormatter(
        list(JSON_FIELDS), rename_fields=JSON_RENAMED, json_ensure_ascii=False, timestamp=False, style="%"
    )


def log_handler(settings: Settings, stream: Any = None) -> logging.Handler:
    """A handler writing lines to ``stream`` (stderr) as the settings ask, with the call's context."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(CallContext())
    return handler


def configure(settings: Settings) -> None:
    """Set up the root logger of this process (web app or worker) as the settings ask."""
    handler = log_handler(settings)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)


class GunicornJsonLogger(GunicornLogger):  # type: ignore[misc]  # gunicorn is unannotated
    """gunicorn's logger writing JSON: its own lines, and one access line per call with its fields."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(json_formatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """The access line: what was asked, the outcome, the job and the trace id, and how long it took."""
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        path = str(atoms["U"])
        fields: dict[str, Any] = {
            "remote": atoms["h"],
            "method": atoms["m"],
            "path": path,
            "status": int(atoms["s"]),
            "bytes": atoms["B"],
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
        }
        if path.startswith("/webservice/"):
            fields["handler"] = path.removeprefix("/webservice/")[:MAX_LOGGED_NAME]
        for name, atom in (("outcome", "{flowhook.status}e"), ("job", "{flowhook.job}e"), ("trace", "{x-request-id}o")):
            value = atoms.get(atom, "-")
            if value and value != "-":
                fields[name] = value
        self.access_log.info("%s %s %s", atoms["m"], path, atoms["s"], extra=fields)


def json_line(process: str, line: str) -> str:
    """A line of ``make run``'s output as JSON: a JSON line gains its process's name, others become its message."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {"message": line}
    return json.dumps({"process": process, **record}, ensure_ascii=False)
