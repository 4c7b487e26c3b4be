"""One call from arrival to outcome: poll, attach, run inline or start the work, within the budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError
from redis.exceptions import RedisError

from flowhook.call import Call
from flowhook.contract import (
    DONE,
    FAILED,
    INVALID,
    PENDING,
    Envelope,
    Limits,
    Outcome,
    describe_errors,
    failure_reason,
    flow_value,
)
from flowhook.exceptions import HandlerError, RetryableError
from flowhook.inline import InlineRunner, OverrunError
from flowhook.jobs import UNKNOWN_JOB, JobStore, new_job_id
from flowhook.registry import WEB, Handler, Registry

log = logging.getLogger(__name__)

UNAVAILABLE = "the service is temporarily unavailable; try again"


class Dispatcher:
    """Turns validated calls into outcomes, holding what every call needs.

    Args:
        registry: The handlers served.
        store: Where worker jobs are started and found.
        inline: Runs ``web`` handlers' inline attempts with a deadline.
        limits: What a call may carry.
    """

    def __init__(self, registry: Registry, store: JobStore, inline: InlineRunner, limits: Limits) -> None:
        self.registry = registry
        self.store = store
        self.inline = inline
        self.limits = limits

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
            variables = handler.load(inputs)
        except ValidationError as error:
            return Outcome(INVALID, error=describe_errors(error))
        if handler.settings.runs_in == WEB:
            return self._run_inline(handler, envelope, inputs, variables, deadline)
        job_id = self.store.start(handler, envelope, inputs)
        return self.store.wait(job_id, deadline)

    def _poll(self, handler: Handler, envelope: Envelope, job_id: str, deadline: float) -> Outcome:
        """A call that carries ``<h>_job`` starts nothing: it waits for that job."""
        job = self.store.find(handler, envelope.process_instance_id, job_id)
        if job is None:
            return Outcome(FAILED, error=UNKNOWN_JOB)
        self.store.reap_if_abandoned(job)
        return self.store.wait(job_id, deadline)

    def _run_inline(
        self,
        handler: Handler,
        envelope: Envelope,
        inputs: Mapping[str, Any],
        variables: Mapping[str, Any],
        deadline: float,
    ) -> Outcome:
        """Run a ``web`` handler here; past the budget, hand the work to a worker and answer pending.

        No Redis on the way: a resent call runs inline again (a ``web`` handler may run twice), and
        only a hand-off checks, in the same transaction that enqueues, for an identical call's job.
        """
        progress: list[str] = []
        call = Call(
            handler=handler.name,
            process_instance_id=envelope.process_instance_id,
            process_definition_id=envelope.process_definition_id,
            params=envelope.params,
            variables=variables,
            # The job that takes over after an overrun gets this id, so the key stays the same.
            idempotency_key=new_job_id(),
            deadline=deadline,
            report_progress=progress.append,
        )
        try:
            return Outcome(DONE, variables=self.inline.run(handler.run, call, max(0.0, deadline - time.monotonic())))
        except OverrunError:
            call.stop()  # its late result is discarded; the worker runs the work again
            job_id = self.store.start(handler, envelope, inputs, job_id=call.idempotency_key)
            log.info("handler=%s overran its budget inline; handed to a worker as job %s", handler.name, job_id)
            return Outcome(PENDING, job_id=job_id, progress=progress[-1] if progress else None)
        except RetryableError as error:
            if not handler.settings.retries:
                return Outcome(FAILED, error=failure_reason(error))
            job_id = self.store.start(handler, envelope, inputs, job_id=call.idempotency_key)
            log.info("handler=%s asked for a retry; handed to a worker as job %s", handler.name, job_id)
            return self.store.wait(job_id, deadline)
        except HandlerError as error:
            # The handler's own answer for the flow (logged as the call's failure), not a fault.
            return Outcome(FAILED, error=failure_reason(error))
        except Exception as error:
            log.exception("handler=%s failed inline", handler.name)
            return Outcome(FAILED, error=failure_reason(error))
