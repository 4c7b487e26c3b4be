"""One call from arrival to outcome: poll, attach, run inline or start the work, within the budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError
from redis.exceptions import RedisError

from flowhook import defaults, metrics
from flowhook.call import Call, make_call, payload_of
from flowhook.contract import (
    DONE,
    FAILED,
    INVALID,
    PENDING,
    UNAVAILABLE,
    UNKNOWN_JOB,
    Envelope,
    Outcome,
    describe_errors,
    failure_reason,
    flow_value,
)
from flowhook.exceptions import HandlerError, RetryableError
from flowhook.inline import InlineRunner, OverrunError
from flowhook.jobstore import JobStore, new_job_id
from flowhook.outage import Outage
from flowhook.registry import WEB, Handler
from flowhook.turns import Turns

log = logging.getLogger(__name__)

# Seconds past the budget an overrun inline attempt's hand-over to a worker may take while Redis
# is away: the call still answers well inside LoyJoy's patience.
HAND_OVER_GRACE = 0.5


class Dispatcher:
    """Turns validated calls into outcomes.

    Args:
        store: Where worker jobs are started and found.
        inline: Runs ``web`` handlers' inline attempts with a deadline.
        outage_limit: Seconds Redis may be away before calls answer `failed`.
        turn_limit: Seconds a chat user's turn may last, the calls of an automatic poll loop adding up.
    """

    def __init__(
        self,
        store: JobStore,
        inline: InlineRunner,
        *,
        outage_limit: float = defaults.OUTAGE_LIMIT,
        turn_limit: float = defaults.TURN_LIMIT,
    ) -> None:
        self.store = store
        self.inline = inline
        self.outage_limit = outage_limit
        self.outage = Outage(log)
        self.turns = Turns(store.connection, turn_limit)

    def dispatch(self, handler: Handler, envelope: Envelope, started: float) -> Outcome:
        """Answer a call within the handler's budget (a poll: its poll wait), counted from ``started`` (monotonic).

        A pending answer also says what the flow does next: poll at once, or ask the user.
        """
        outcome = self._outcome(handler, envelope, started)
        if outcome.status == PENDING:
            outcome.next = self.turns.next_step(handler, envelope, started, redis_away=self.outage.since is not None)
        return outcome

    def _outcome(self, handler: Handler, envelope: Envelope, started: float) -> Outcome:
        job_id = flow_value(envelope.variables.get(handler.job_variable))
        if job_id:
            # A poll starts nothing, so it may wait longer than a new call: up to its own bound.
            return self._poll(handler, envelope, job_id, started + handler.settings.poll_wait)
        deadline = started + handler.settings.budget
        inputs = handler.inputs(envelope.variables)
        try:
            variables = handler.load(inputs)
        except ValidationError as error:
            return Outcome(INVALID, error=describe_errors(error))
        if handler.settings.runs_in == WEB:
            return self._run_inline(handler, envelope, inputs, variables, deadline)
        started_job = self._hand_over(handler, envelope, inputs, deadline)
        if started_job is None:
            return self._not_handed_over(handler)
        return self._wait(handler, started_job, deadline)

    def _hand_over(
        self,
        handler: Handler,
        envelope: Envelope,
        inputs: Mapping[str, Any],
        deadline: float,
        job_id: str | None = None,
    ) -> str | None:
        """Start the call's job (or find an identical call's), trying while Redis is away; None if never."""
        try:
            return self.outage.retry(lambda: self.store.start(handler, envelope, inputs, job_id=job_id), deadline)
        except RedisError:
            return None  # the work was never handed over

    def _not_handed_over(self, handler: Handler) -> Outcome:
        """A call whose work never reached Redis within its budget: pending with no job, the flow calls again.

        That next call starts the work (or, if this one did reach Redis after all, the dedupe
        attaches it to that job). Once Redis has been away longer than the outage limit, `failed`.
        """
        if self.outage.away_for() > self.outage_limit:
            return Outcome(FAILED, error=UNAVAILABLE)
        metrics.note_pending_while_away(handler)
        return Outcome(PENDING)

    def _wait(self, handler: Handler, job_id: str, deadline: float) -> Outcome:
        """Wait for a job that is in Redis; while Redis is away, answer pending: the flow polls later."""
        try:
            return self.outage.retry(lambda: self.store.wait(job_id, deadline), deadline)
        except RedisError:
            metrics.note_pending_while_away(handler)
            return Outcome(PENDING, job_id=job_id)

    def _poll(self, handler: Handler, envelope: Envelope, job_id: str, deadline: float) -> Outcome:
        """A call that carries ``<h>_job`` starts nothing: it waits for that job."""

        def look() -> Outcome:
            job = self.store.find(handler, envelope.process_instance_id, job_id)
            if job is None:
                return Outcome(FAILED, error=UNKNOWN_JOB)
            self.store.reap_if_abandoned(job)
            return self.store.wait(job_id, deadline)

        try:
            return self.outage.retry(look, deadline)
        except RedisError:
            if self.outage.away_for() > self.outage_limit:
                return Outcome(FAILED, error=UNAVAILABLE)  # a flow never polls forever
            metrics.note_pending_while_away(handler)
            return Outcome(PENDING, job_id=job_id)  # the same job: the flow keeps polling

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
        call = make_call(
            handler,
            payload_of(envelope, inputs),
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
            # Past the budget already: the hand-over may take a moment more, if Redis needs it.
            return self._continue_in_worker(
                handler, envelope, inputs, call, deadline=deadline + HAND_OVER_GRACE, progress=progress
            )
        except RetryableError as error:
            if not handler.settings.retries:
                return Outcome(FAILED, error=failure_reason(error))
            return self._continue_in_worker(handler, envelope, inputs, call, deadline=deadline, progress=progress)
        except HandlerError as error:
            # The handler's own answer for the flow (logged as the call's failure), not a fault.
            return Outcome(FAILED, error=failure_reason(error))
        except Exception as error:
            log.exception("handler=%s failed inline", handler.name)
            return Outcome(FAILED, error=failure_reason(error))

    def _continue_in_worker(
        self,
        handler: Handler,
        envelope: Envelope,
        inputs: Mapping[str, Any],
        call: Call,
        *,
        deadline: float,
        progress: list[str],
    ) -> Outcome:
        """Hand an inline attempt's work to a worker under the same idempotency key.

        An attempt that overran is answered pending at once; one that asked for a retry waits for
        the retry within what is left of the budget.
        """
        job_id = self._hand_over(handler, envelope, inputs, deadline, call.idempotency_key)
        if job_id is None:
            return self._not_handed_over(handler)  # the next call runs it inline again: it may run twice
        reason = "overran its budget inline" if call.stopped else "asked for a retry"
        log.info("handler=%s %s; handed to a worker as job %s", handler.name, reason, job_id)
        if call.stopped:
            return Outcome(PENDING, job_id=job_id, progress=progress[-1] if progress else None)
        return self._wait(handler, job_id, deadline)
