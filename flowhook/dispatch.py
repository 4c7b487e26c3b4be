"""One call from arrival to outcome: poll, attach or start the work, within the handler's budget."""

from __future__ import annotations

import logging

from marshmallow import ValidationError
from redis.exceptions import RedisError

from flowhook.contract import FAILED, INVALID, Envelope, Outcome, describe_errors, flow_value
from flowhook.jobs import UNKNOWN_JOB, JobStore
from flowhook.registry import Handler, Registry

log = logging.getLogger(__name__)

UNAVAILABLE = "the service is temporarily unavailable; try again"


class Dispatcher:
    """Turns validated calls into outcomes, holding what every call needs."""

    def __init__(self, registry: Registry, store: JobStore) -> None:
        self.registry = registry
        self.store = store

    def dispatch(self, handler: Handler, envelope: Envelope, started: float) -> Outcome:
        """Answer a call within the handler's budget, counted from ``started`` (monotonic)."""
        deadline = started + handler.settings.budget
        try:
            return self._dispatch(handler, envelope, deadline)
        except RedisError as error:
            log.error("redis unavailable for handler=%s: %s", handler.name, error)
            return Outcome(FAILED, error=UNAVAILABLE)

    def _dispatch(self, handler: Handler, envelope: Envelope, deadline: float) -> Outcome:
        job_id = flow_value(envelope.variables.get(f"{handler.namespace}_job"))
        if job_id:
            return self._poll(handler, envelope, job_id, deadline)
        inputs = handler.inputs(envelope.variables)
        try:
            handler.load(inputs)
        except ValidationError as error:
            return Outcome(INVALID, error=describe_errors(error))
        job_id = self.store.start(handler, envelope, inputs)
        return self.store.wait(job_id, deadline)

    def _poll(self, handler: Handler, envelope: Envelope, job_id: str, deadline: float) -> Outcome:
        """A call that carries ``<h>_job`` starts nothing: it waits for that job."""
        if not self.store.owns(handler, envelope.process_instance_id, job_id):
            return Outcome(FAILED, error=UNKNOWN_JOB)
        return self.store.wait(job_id, deadline)
