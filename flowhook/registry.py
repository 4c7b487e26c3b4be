"""Handler discovery: every module of the handlers package is one handler."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from flowhook import defaults
from flowhook.call import Call
from flowhook.contract import VARIABLE_NAME, describe_errors, flow_variables, status_variables
from flowhook.coroutines import AsyncFunction, run_coroutine
from flowhook.exceptions import HandlerModuleError
from flowhook.offload import run_in_thread
from flowhook.settings import Settings, poll_wait_range

HandlerFunction = Callable[[Call], Mapping[str, Any] | None] | AsyncFunction

WORKER = "worker"
WEB = "web"


@dataclass(frozen=True)
class HandlerSettings:
    """A handler's effective settings, its own ``SETTINGS`` over the global defaults."""

    budget: float
    poll_wait: float
    runs_in: str
    job_timeout: int
    retries: int
    retry_intervals: tuple[int, ...]
    result_ttl: int
    namespace: str
    concurrency: int
    cpu_bound: bool


class _HandlerSettingsSchema(Schema):
    """What a handler module may put in its ``SETTINGS`` dict; anything else is a mistake."""

    class Meta:
        unknown = RAISE

    budget = fields.Float(
        validate=validate.Range(
            min=0,
            max=defaults.MAX_BUDGET,
            min_inclusive=False,
            error=f"must be more than 0 and at most {defaults.MAX_BUDGET:g} seconds",
        )
    )
    poll_wait = fields.Float(validate=poll_wait_range)
    runs_in = fields.String(validate=validate.OneOf([WORKER, WEB]))
    job_timeout = fields.Integer(validate=validate.Range(min=1))
    retries = fields.Integer(validate=validate.Range(min=0, max=20))
    retry_intervals = fields.List(
        fields.Integer(validate=validate.Range(min=0, max=3600)), validate=validate.Length(min=1, max=20)
    )
    result_ttl = fields.Integer(validate=validate.Range(min=1))
    namespace = fields.String(validate=validate.Regexp(VARIABLE_NAME, error="must use only A-Z, a-z, 0-9 and _"))
    concurrency = fields.Integer(validate=validate.Range(min=1, max=10000))
    cpu_bound = fields.Boolean()


@dataclass(frozen=True)
class Handler:
    """One use case: a function, an optional input schema and its settings."""

    name: str
    function: HandlerFunction
    input_schema: Schema | None
    settings: HandlerSettings

    @property
    def namespace(self) -> str:
        """Prefix of the status variables: ``<namespace>_status`` and so on."""
        return self.settings.namespace

    def inputs(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Pick the handler's input from all the conversation's variables.

        A handler with a schema sees only the fields its schema declares; one without sees
        everything but its own status variables.
        """
        if self.input_names is not None:
            wanted = self.input_names
            return {name: value for name, value in variables.items() if name in wanted}
        own = self.status_names
        return {name: value for name, value in variables.items() if name not in own}

    # Worked out once per handler, not once per call.
    @functools.cached_property
    def input_names(self) -> frozenset[str] | None:
        """The variable names the input schema reads; None without a schema."""
        if self.input_schema is None:
            return None
        return frozenset(f.data_key or name for name, f in self.input_schema.load_fields.items())

    @functools.cached_property
    def status_names(self) -> frozenset[str]:
        """The handler's own status variables, ``<namespace>_status`` and the rest."""
        return status_variables(self.namespace)

    @functools.cached_property
    def job_variable(self) -> str:
        """The status variable that carries the job id: a call that sends it is a poll."""
        return f"{self.namespace}_job"

    @functools.cached_property
    def asynchronous(self) -> bool:
        """Whether ``handle`` is an ``async def``: its coroutine runs on the process's event loop."""
        return inspect.iscoroutinefunction(self.function)

    @functools.cached_property
    def next_variable(self) -> str:
        """The status variable that tells the flow to poll at once or to ask the user (``<h>_next``)."""
        return f"{self.namespace}_next"

    def run(self, call: Call) -> dict[str, str]:
        """Run the handler and write what it returned as flow variables.

        An ``async def handle`` runs on the process's event loop (flowhook/coroutines.py), a CPU-bound
        one in a thread of its own (flowhook/offload.py), any other where it is called.
        """
        if self.asynchronous:
            return flow_variables(run_coroutine(cast(AsyncFunction, self.function), call))
        function = cast(Callable[[Call], Mapping[str, Any] | None], self.function)
        if self.settings.cpu_bound:
            return flow_variables(run_in_thread(function, call))
        return flow_variables(function(call))

    def load(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the input with the handler's schema.

        Raises:
            ValidationError: naming each field that failed.
        """
        if self.input_schema is None:
            return dict(inputs)
        loaded: dict[str, Any] = self.input_schema.load(inputs)
        return loaded


class Registry(Mapping[str, Handler]):
    """The handlers found at start-up, by name.

    Args:
        handlers: The handlers, by name.
        broken: The modules that could not be used, by name, each with what is wrong with it: only
            where discovery was told to go on past them (the developer commands).
    """

    def __init__(self, handlers: Mapping[str, Handler], broken: Mapping[str, str] | None = None) -> None:
        self._handlers = dict(handlers)
        self.broken = dict(broken or {})

    def __getitem__(self, name: str) -> Handler:
        return self._handlers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._handlers))

    def __len__(self) -> int:
        return len(self._handlers)


def discover(settings: Settings, keep_going: bool = False) -> Registry:
    """Import every module of the handlers package named in the settings.

    Args:
        settings: Names the package; its defaults are each handler's.
        keep_going: Record a module that cannot be used in ``Registry.broken`` and go on with the
            others (a package that cannot be used is recorded under its own name), for the
            developer commands; the service and the workers refuse to start.

    Raises:
        HandlerModuleError: naming the module and its file when one cannot be used.
    """
    try:
        package = _package(settings.handlers_package)
    except HandlerModuleError as error:
        if not keep_going:
            raise
        return Registry({}, {settings.handlers_package: str(error)})
    handlers = {}
    broken = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        try:
            module = _import(f"{settings.handlers_package}.{info.name}")
            handlers[info.name] = _handler_from(info.name, module, settings)
        except HandlerModuleError as error:
            if not keep_going:
                raise
            broken[info.name] = str(error)
    return Registry(handlers, broken)


def _package(name: str) -> ModuleType:
    package = _import(name)
    if not hasattr(package, "__path__"):
        raise HandlerModuleError(f"{name} is a module, not a package of handler modules")
    return package


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as error:
        raise HandlerModuleError(f"cannot import handler module {name}: {type(error).__name__}: {error}") from error


def _handler_from(name: str, module: ModuleType, settings: Settings) -> Handler:
    where = f"handler module {module.__name__} ({module.__file__})"
    if not VARIABLE_NAME.fullmatch(name):
        raise HandlerModuleError(f"{where}: the name must use only A-Z, a-z, 0-9 and _")
    function = getattr(module, "handle", None)
    if not callable(function):
        raise HandlerModuleError(f"{where}: it must define a function handle(call)")
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        raise HandlerModuleError(f"{where}: handle(call) must return its variables, not yield them")
    schema_class = getattr(module, "Input", None)
    if schema_class is not None and not (inspect.isclass(schema_class) and issubclass(schema_class, Schema)):
        raise HandlerModuleError(f"{where}: Input must be a marshmallow Schema class")
    try:
        own: dict[str, Any] = _HandlerSettingsSchema().load(getattr(module, "SETTINGS", {}))
    except ValidationError as error:
        raise HandlerModuleError(f"{where}: invalid SETTINGS: {describe_errors(error)}") from None
    if own.get("cpu_bound") and inspect.iscoroutinefunction(function):
        # Its computing would run on the event loop every async handler of the process shares.
        raise HandlerModuleError(
            f"{where}: an async def handle cannot be cpu_bound: make it a plain def, or drop cpu_bound"
        )
    return Handler(
        name=name,
        function=function,
        input_schema=schema_class(unknown=EXCLUDE) if schema_class is not None else None,
        settings=HandlerSettings(
            budget=own.get("budget", settings.budget),
            poll_wait=own.get("poll_wait", settings.poll_wait),
            runs_in=own.get("runs_in", WORKER),
            job_timeout=own.get("job_timeout", settings.job_timeout),
            retries=own.get("retries", 0),
            retry_intervals=tuple(own.get("retry_intervals", [0])),
            result_ttl=own.get("result_ttl", settings.result_ttl),
            namespace=own.get("namespace", name),
            # A CPU-bound handler gains nothing from running beside itself in one process (the GIL).
            concurrency=own.get("concurrency", 1 if own.get("cpu_bound") else settings.worker_concurrency),
            cpu_bound=own.get("cpu_bound", False),
        ),
    )
