"""The call object a handler receives."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowhook.contract import Envelope, flow_value


def _ignore_progress(_: str) -> None:
    """Progress reporter for calls nobody can poll (tests, the CLI)."""


@dataclass(frozen=True)
class Call:
    """Everything a handler needs to know about one WebService call.

    Attributes:
        handler: The handler's name.
        process_instance_id: The conversation's id.
        process_definition_id: The chat flow's id, if LoyJoy sent one.
        params: Browser parameters (referrer, user-agent, ...).
        variables: The handler's input, as its schema loaded it.
        idempotency_key: Stays the same for a resent call and for every attempt of the same work;
            pass it on to external APIs that accept one.
        deadline: ``time.monotonic()`` value by which the work must be over: the end of the
            budget for an inline (``web``) attempt, the job timeout in a worker.
    """

    handler: str
    process_instance_id: str
    process_definition_id: str | None
    params: Mapping[str, Any]
    variables: Mapping[str, Any]
    idempotency_key: str
    deadline: float
    report_progress: Callable[[str], None] = field(default=_ignore_progress, repr=False)
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def stopped(self) -> bool:
        """True once nobody waits for this attempt (an inline attempt handed to a worker): stop early."""
        return self.stop_event.is_set()

    def stop(self) -> None:
        """Tell the attempt its result will be discarded."""
        self.stop_event.set()

    def remaining(self) -> float:
        """Seconds left before the deadline (0 once stopped); bound your own I/O timeouts by it."""
        if self.stopped:
            return 0.0
        return max(0.0, self.deadline - time.monotonic())

    def progress(self, value: Any) -> None:
        """Report progress; the latest value appears as ``<h>_progress`` in ``pending`` answers."""
        self.report_progress(flow_value(value))


def payload_of(envelope: Envelope, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What a job carries of a call (JSON-safe): its ids, params and the handler's input variables."""
    return {
        "process_instance_id": envelope.process_instance_id,
        "process_definition_id": envelope.process_definition_id,
        "params": dict(envelope.params),
        "variables": dict(inputs),
    }


class CallTarget(Protocol):
    """What making a call needs of its handler (a ``flowhook.registry.Handler``): its name and its schema."""

    @property
    def name(self) -> str:
        """The handler's name."""
        ...

    def load(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """The input, as the handler's schema loads it."""
        ...


def make_call(
    handler: CallTarget,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    deadline: float,
    variables: Mapping[str, Any] | None = None,
    report_progress: Callable[[str], None] = _ignore_progress,
) -> Call:
    """The one place a ``Call`` is made: inline in the web, in a worker, in a handler's test.

    Args:
        handler: The handler the call is for.
        payload: The call as :func:`payload_of` gives it (a job's second argument).
        idempotency_key: The work's key: the job id, or the id a handed-over attempt's job gets.
        deadline: ``time.monotonic()`` value by which the attempt must be over.
        variables: The input as the handler's schema already loaded it; loaded from the payload if None.
        report_progress: Where ``call.progress()`` goes.

    Raises:
        marshmallow.ValidationError: when ``variables`` is None and the payload's fail the schema.
    """
    return Call(
        handler=handler.name,
        process_instance_id=payload["process_instance_id"],
        process_definition_id=payload.get("process_definition_id"),
        params=payload.get("params") or {},
        variables=handler.load(payload.get("variables") or {}) if variables is None else variables,
        idempotency_key=idempotency_key,
        deadline=deadline,
        report_progress=report_progress,
    )
