"""Log lines as text or as one JSON object per line, each carrying its call's trace id.

``FLOWHOOK_LOG_FORMAT=json`` makes the web service (gunicorn's own lines and its access line
included), the workers and ``make run`` write JSON a log pipeline reads without parsing text, down
to the one line that says why a process does not start (:func:`startup_error`). A line written
while a call is answered carries that call's ``trace`` (LoyJoy's ``X-B3-TraceId`` or Flowhook's
request id); the job started for the call keeps the id in its meta, so a line written while a
worker runs that job carries the same ``trace``, its ``job`` and its ``handler``. A text line ends
with ``trace=<id>`` as the web's access line does, so one search finds both sides of a call.
Variable values never reach a line: only names, ids, outcomes and durations.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from flask import has_request_context, request
from gunicorn.glogging import Logger as GunicornBaseLogger
from pythonjsonlogger.json import JsonFormatter

from flowhook import defaults
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

# The environ key of a request's trace id (flowhook/webservice.py's RequestIds sets it).
TRACE_KEY = "flowhook.trace"
# The job a worker runs in this greenlet or thread: its handler, id and trace id.
_job: ContextVar[dict[str, str] | None] = ContextVar("flowhook_job", default=None)


def current_trace() -> str | None:
    """The trace id of the call being answered or of the job being run here, if any."""
    if has_request_context():
        trace: str | None = request.environ.get(TRACE_KEY)
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
            trace = request.environ.get(TRACE_KEY)
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


class TextFormatter(logging.Formatter):
    """The text line, ending with ``trace=<id>`` where it has one, as the web's access line does."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        trace = getattr(record, "trace", None)
        return f"{line} trace={trace}" if trace else line


def log_handler(settings: Settings, stream: Any = None) -> logging.Handler:
    """A handler writing lines to ``stream`` (stderr) as the settings ask, with the call's context."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if settings.log_format == "json" else TextFormatter())
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


def startup_error(settings: Settings | None, message: str, source: str = "flowhook") -> None:
    """Write the line that says why this process does not start to stderr, as text or as JSON.

    Args:
        settings: The settings; None where reading them is what failed, and then
            ``FLOWHOOK_LOG_FORMAT`` is read from the environment alone.
        message: What is wrong (a broken handler module, a bad setting).
        source: Who says it: the text line's prefix, the JSON line's ``logger``.
    """
    if settings is not None:
        log_format = settings.log_format
    else:
        log_format = os.environ.get("FLOWHOOK_LOG_FORMAT", defaults.LOG_FORMAT)
    if log_format == "json":
        record = logging.makeLogRecord({"name": source, "levelname": "ERROR", "levelno": logging.ERROR, "msg": message})
        line = json_formatter().format(record)
    else:
        line = f"{source}: {message}"
    print(line, file=sys.stderr, flush=True)


# The atoms of an access line format: `%(h)s`, `%({x-request-id}o)s`, `%({flowhook.status}e)s`.
_ATOM = re.compile(r"%\(([^)]*)\)")
# The environ keys the view sets for the access line (flowhook/webservice.py): its outcome and job.
OUTCOME_KEY = "flowhook.status"
JOB_KEY = "flowhook.job"


def _status(resp: Any) -> Any:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


# An atom the line names that gunicorn would not have: written `-`.
ABSENT = object()


def _last(pairs: Any, name: str) -> Any:
    """The value of the last (name, value) pair named ``name`` in any case; ``ABSENT`` without one."""
    found = ABSENT
    for key, value in pairs:
        if key.lower() == name:
            found = value
    return found


class GunicornLogger(GunicornBaseLogger):  # type: ignore[misc]  # gunicorn is unannotated
    """gunicorn's logger, writing the same access line for a fraction of the CPU.

    gunicorn builds a dictionary of every atom, request and response header and environ key for
    each line; this one works out the atoms the line's format uses once and computes only those,
    with gunicorn's values and quoting (a `"` in a text becomes `\\"`; an atom not there is `-`).
    """

    _format: str | None = None
    _getters: tuple[tuple[str, Callable[[_Line], Any]], ...] = ()

    def _atoms_used(self) -> tuple[tuple[str, Callable[[_Line], Any]], ...]:
        """Each atom of the format with the function that computes it, worked out once per format."""
        log_format = self.cfg.access_log_format
        if log_format != self._format:  # the first line, or a reload changed the format
            names = dict.fromkeys(_ATOM.findall(log_format))
            self._getters = tuple((name, _getter(name)) for name in names)
            self._format = log_format
        return self._getters

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """The access line of gunicorn's format, with only the atoms it uses."""
        if not self.access_log_enabled:
            return
        try:
            getters = self._atoms_used()
            line = _Line(self, resp, req, environ, request_time)
            atoms = _Atoms()
            for name, get in getters:
                value = get(line)
                if value is ABSENT:
                    value = "-"
                elif isinstance(value, str):
                    value = value.replace('"', '\\"')
                atoms[name] = value
            self.access_log.info(self._format, atoms)
        except Exception:
            self.error(traceback.format_exc())


class _Atoms(dict[str, Any]):
    """The line's atoms; one the format names but the pattern above did not find is written `-`."""

    def __missing__(self, key: str) -> str:
        return "-"


class _Line(NamedTuple):
    """What an access line is made from."""

    log: Any
    resp: Any
    req: Any
    environ: dict[str, Any]
    took: Any


def _pairs(headers: Any) -> Any:
    return headers.items() if hasattr(headers, "items") else headers


def _getter(name: str) -> Callable[[_Line], Any]:
    """The function computing atom ``name`` as gunicorn's ``atoms`` has it (braced names in any case)."""
    lowered = name.lower()
    if not lowered.startswith("{"):
        return _SIMPLE_ATOMS.get(name, _absent)
    key, kind = lowered[1:-2], lowered[-2:]
    if kind == "}e":
        return lambda line: line.environ[key] if key in line.environ else _last(line.environ.items(), key)
    if kind == "}o":
        return lambda line: _last(_pairs(line.resp.headers), key)
    if kind == "}i":
        return lambda line: _last(_pairs(getattr(line.req, "headers", line.req)), key)
    return _absent


def _absent(_line: _Line) -> Any:
    return ABSENT


def _sent(resp: Any) -> Any:
    return getattr(resp, "sent", None)


# gunicorn's atoms (glogging.Logger.atoms), each computed on its own.
_SIMPLE_ATOMS: dict[str, Callable[[_Line], Any]] = {
    "h": lambda c: c.environ.get("REMOTE_ADDR", "-"),
    "l": lambda _c: "-",
    "u": lambda c: c.log._get_user(c.environ) or "-",
    "t": lambda c: c.log.now(),
    "r": lambda c: f"{c.environ['REQUEST_METHOD']} {c.environ['RAW_URI']} {c.environ['SERVER_PROTOCOL']}",
    "s": lambda c: _status(c.resp),
    "m": lambda c: c.environ.get("REQUEST_METHOD"),
    "U": lambda c: c.environ.get("PATH_INFO"),
    "q": lambda c: c.environ.get("QUERY_STRING"),
    "H": lambda c: c.environ.get("SERVER_PROTOCOL"),
    "b": lambda c: (_sent(c.resp) is not None and str(c.resp.sent)) or "-",
    "B": lambda c: _sent(c.resp),
    "f": lambda c: c.environ.get("HTTP_REFERER", "-"),
    "a": lambda c: c.environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda c: c.took.seconds,
    "D": lambda c: c.took.seconds * 1000000 + c.took.microseconds,
    "M": lambda c: c.took.seconds * 1000 + int(c.took.microseconds / 1000),
    "L": lambda c: f"{c.took.seconds}.{c.took.microseconds:06d}",
    "p": lambda _c: f"<{os.getpid()}>",
}


class GunicornJsonLogger(GunicornLogger):
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
        path = str(environ.get("PATH_INFO"))
        status = _status(resp)
        fields: dict[str, Any] = {
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "status": int(status),
            "bytes": _sent(resp),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
        }
        if path.startswith("/webservice/"):
            fields["handler"] = path.removeprefix("/webservice/")[:MAX_LOGGED_NAME]
        headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
        for name, value in (
            ("outcome", environ.get(OUTCOME_KEY)),
            ("job", environ.get(JOB_KEY)),
            ("trace", _last(headers, "x-request-id")),
        ):
            if value and value is not ABSENT and value != "-":
                fields[name] = value
        self.access_log.info("%s %s %s", fields["method"], path, status, extra=fields)


def json_line(process: str, line: str) -> str:
    """A line of ``make run``'s output as JSON: a JSON line gains its process's name, others become its message."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {"message": line}
    return json.dumps({"process": process, **record}, ensure_ascii=False)
