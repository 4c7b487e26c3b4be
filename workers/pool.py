"""The ``pool`` worker class: many jobs at once in one process, a greenlet each.

Handlers mostly wait on I/O (an ERP, a CRM, a search), so one process runs many of them at once,
as gunicorn's gevent worker runs many calls: plain synchronous handler code (``requests``,
database drivers, ``time.sleep``) waits cooperatively once gevent has patched the process, which
``python -m workers`` does before it imports this module.

RQ stays the engine: its queues, job records, registries, results, retries and maintenance, and
since RQ 3 its record of each running job: every job here is one of RQ's executions (``executions``,
``rq:worker:<name>:executions``), made and ended by RQ's own ``prepare_execution`` and
``perform_job``, so RQ's worker API, its commands (stop-job) and its dashboards see every job. What
RQ's simple worker keeps once per process becomes per job: the heartbeat (one native thread beats
for every execution, workers/heartbeat.py), the timeout (a ``gevent.Timeout`` in the job's greenlet,
workers/timeouts.py). Every handler has a queue of its own and slots of its own in each worker: a
handler takes a job only when one of its slots is free, so one handler's slow back end never holds
up another's jobs, and nothing waits in a worker's memory that could wait in Redis.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from typing import Any

import gevent
import gevent.events
from gevent.event import Event
from gevent.lock import BoundedSemaphore
from gevent.pool import Group
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker as RQSimpleWorker
from rq.command import parse_payload
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import DequeueTimeout
from rq.job import Job
from rq.queue import Queue
from rq.suspension import is_suspended
from rq.worker.base import DequeueStrategy, WorkerStatus

from flowhook import defaults
from workers.base import FlowhookWorker, log
from workers.heartbeat import Heartbeat
from workers.job import hold_job_ends
from workers.timeouts import GeventDeathPenalty, interrupt_running_jobs, stop_job

# Seconds between the worker's own chores: its heartbeat in Redis (which signs it in again after
# Redis lost it), its jobs' ends (workers/job.py), the suspension check, the registry maintenance
# when it is due. A round trip each.
HOUSEKEEPING_INTERVAL = 1.0
# A second signal this soon after the first is the same stop, sent twice (Ctrl-C reaches a
# process both from the terminal and from the process manager), as RQ's own workers judge it.
SAME_SIGNAL_WITHIN = 1.0
# Seconds between a burst worker's looks at its empty queues, until nothing runs and all are empty.
BURST_RECHECK = 0.1


class PoolWorker(FlowhookWorker, RQSimpleWorker):
    """Runs up to ``slots[queue]`` jobs of each queue at once, each in a greenlet of its own.

    Args:
        queues: One queue per handler it serves.
        slots: How many jobs of each queue (by name) it runs at once.
        dequeue_connection: A client whose read timeout outlasts the blocking wait for a job; the
            worker's own connection keeps short timeouts for every other command.
        beat_connection: A client for the heartbeat thread alone.
    """

    death_penalty_class = GeventDeathPenalty

    def __init__(
        self,
        queues: list[Queue],
        *,
        slots: Mapping[str, int],
        dequeue_connection: Redis,
        beat_connection: Redis,
        **kwargs: Any,
    ) -> None:
        super().__init__(queues, **kwargs)
        self.slots = {queue.name: BoundedSemaphore(slots[queue.name]) for queue in self.queues}
        self.dequeue_connection = dequeue_connection
        self.beat_connection = beat_connection
        self.jobs = Group()
        self.running: dict[gevent.Greenlet, Job] = {}
        self.taking = 0  # feeders between taking a job from Redis and starting it
        self.emptied: set[str] = set()  # in burst mode: the queues found empty since a job last ended
        self.stopping = Event()
        self.suspended = False
        self.performed = 0
        self.taken = 0
        self.last_busy = 0.0  # when a job last started or ended (time.monotonic)
        self._first_signal_at = 0.0
        self._blocking_named: set[str] = set()

    def work(  # noqa: PLR0917 - RQ's signature
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
        max_jobs: int | None = None,
        max_idle_time: int | None = None,
        with_scheduler: bool = False,
        dequeue_strategy: DequeueStrategy = DequeueStrategy.DEFAULT,
    ) -> bool:
        """Take jobs from every queue, each while it has a free slot, until told to stop.

        RQ's own ``work`` takes one job, runs it, and takes the next; this one keeps RQ's start
        (``bootstrap``: registration, the command channel) and end (``teardown``), and replaces the
        loop between them. As in RQ, it stops taking jobs after ``max_jobs`` and stops once idle
        for ``max_idle_time`` seconds (checked each second), letting running jobs finish.
        ``dequeue_strategy`` does not apply: each queue has its own slots. ``with_scheduler`` does
        not either: ``python -m workers`` runs RQ's scheduler in a process of its own
        (workers/scheduler.py).

        Returns:
            Whether it ran any job in this call.
        """
        self.performed = 0
        self.taken = 0
        self.last_busy = time.monotonic()
        # A worker may work again once a call has ended (a burst, then another), as RQ's do.
        self.stopping.clear()
        self.emptied.clear()
        self.bootstrap(logging_level, date_format, log_format)
        stop_signals = self._handle_stop_signals()
        self._watch_for_blocking_handlers()
        self.beats = Heartbeat(self, self.beat_connection, self.heartbeat_ttl)
        self.job_ends = hold_job_ends()
        self._check_suspension(burst)  # before the first job: `rq suspend` holds from the start
        feeders = [gevent.spawn(self._feed, queue, burst, max_jobs) for queue in self.queues]
        try:
            self._keep_house(burst, max_idle_time)
            for feeder in feeders:
                feeder.join()
            if self.running:
                log.info("Worker %s: waiting for %d running jobs", self.name, len(self.running))
            self.jobs.join()
            self.job_ends.write(self.connection)
        finally:
            for handler in stop_signals:
                handler.cancel()  # a later work() (or another worker in the process) installs its own
            gevent.killall(feeders)  # gone already, unless work() is ending on an exception
            gevent.events.subscribers.remove(self._name_blocking_handler)
            self.beats.stop()
            self.teardown()  # type: ignore[no-untyped-call]  # RQ's is unannotated
        return self.performed > 0

    def _handle_stop_signals(self) -> list[Any]:
        """SIGTERM or SIGINT: stop taking jobs and let the running ones finish; again: interrupt them.

        gevent's handlers, not ``signal.signal`` as RQ's: they run in a greenlet of their own, never
        inside whichever job's greenlet the signal happened to arrive in.

        Returns:
            The handlers, for ``work`` to cancel as it ends.
        """
        return [
            gevent.signal_handler(signum, self._on_stop_signal, signum) for signum in (signal.SIGTERM, signal.SIGINT)
        ]

    def _on_stop_signal(self, signum: int) -> None:
        if not self.stopping.is_set():
            self._first_signal_at = time.monotonic()
            log.info(
                "Worker %s: warm shut down requested (%s): finishing %d running jobs; send it again to interrupt them",
                self.name,
                signal.Signals(signum).name,
                len(self.running),
            )
            self.stopping.set()
        elif time.monotonic() - self._first_signal_at > SAME_SIGNAL_WITHIN:
            interrupted = interrupt_running_jobs()
            log.warning("Worker %s: cold shut down: %d running jobs interrupted", self.name, interrupted)

    def _keep_house(self, burst: bool, max_idle_time: int | None) -> None:
        """The worker's chores until it is told to stop (or the burst is over, or it idled too long)."""
        while not self.stopping.is_set():
            if burst and self._burst_is_over():
                self.stopping.set()
                return
            if max_idle_time is not None and not self.running and time.monotonic() - self.last_busy >= max_idle_time:
                log.info("Worker %s: idle for %d s: stopping", self.name, max_idle_time)
                self.stopping.set()
                return
            self.heartbeat()
            self.job_ends.write(self.connection)
            self._check_suspension(burst)
            self._show_state()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            self.stopping.wait(BURST_RECHECK if burst else HOUSEKEEPING_INTERVAL)

    def _burst_is_over(self) -> bool:
        """Whether nothing is left for a burst worker: every queue empty, no job running or being taken.

        A running job may still queue work (its retry, its dependents): each queue is looked at
        again after the last job has ended.
        """
        return not self.running and not self.taking and len(self.emptied) == len(self.queues)

    def _check_suspension(self, burst: bool) -> None:
        """Follow ``rq suspend`` and ``rq resume``: a suspended worker takes no new job.

        In burst mode a suspended worker stops, as RQ's own workers do.
        """
        try:
            suspended = bool(is_suspended(self.connection, self))
        except RedisError as error:
            self.outage.lost(error)
            return
        if suspended and burst:
            log.info("Worker %s: suspended in burst mode: stopping", self.name)
            self.stopping.set()
        if suspended != self.suspended:
            log.info("Worker %s: %s", self.name, "suspended" if suspended else "resumed")
            self.suspended = suspended

    def _show_state(self) -> None:
        """Tell RQ's tools (``rq info``) whether the worker is busy, when that changed."""
        state = WorkerStatus.SUSPENDED if self.suspended else WorkerStatus.BUSY if self.running else WorkerStatus.IDLE
        if state != self.get_state():
            try:
                self.set_state(state)
            except RedisError as error:
                self.outage.lost(error)

    def _feed(self, queue: Queue, burst: bool, max_jobs: int | None) -> None:
        """Take ``queue``'s jobs one free slot at a time, each into a greenlet of its own."""
        slots = self.slots[queue.name]
        while not self.stopping.is_set():
            if not slots.acquire(timeout=defaults.DEQUEUE_BLOCK):
                continue
            self.taking += 1
            try:
                job = self._take(queue, burst)
            finally:
                self.taking -= 1
            if job is not None and self.stopping.is_set():
                self._put_back(job, queue)
                job = None
            if job is None:
                slots.release()
                if burst:
                    self.emptied.add(queue.name)
                    self.stopping.wait(BURST_RECHECK)
                continue
            self.emptied.discard(queue.name)
            greenlet = self.jobs.spawn(self._run, job, queue)
            self.running[greenlet] = job
            greenlet.link(lambda done: self._finished(done, slots))
            self.taken += 1
            self.last_busy = time.monotonic()
            if max_jobs is not None and self.taken >= max_jobs:
                log.info("Worker %s: took %d jobs, its max_jobs: finishing them and stopping", self.name, self.taken)
                self.stopping.set()

    def _finished(self, greenlet: gevent.Greenlet, slots: BoundedSemaphore) -> None:
        job = self.running.pop(greenlet)
        self._blocking_named.discard(job.id)
        self.last_busy = time.monotonic()
        slots.release()
        self.emptied.clear()  # the job may have queued work anywhere: a burst looks everywhere again

    def _take(self, queue: Queue, burst: bool) -> Job | None:
        """The next job of ``queue``, waiting at most a second for one (not at all in burst mode)."""
        if self.suspended:
            self.stopping.wait(1.0)
            return None
        try:
            found = self.queue_class.dequeue_any(
                [queue],
                None if burst else defaults.DEQUEUE_BLOCK,
                connection=self.dequeue_connection,
                job_class=self.job_class,
                serializer=self.serializer,
                death_penalty_class=self.death_penalty_class,
            )
        except DequeueTimeout:
            return None
        except RedisError as error:
            self.outage.lost(error)
            self.stopping.wait(1.0)
            return None
        except Exception:
            # A job RQ cannot read (a corrupt record): the queue must go on being served. RQ's
            # maintenance finds the job in the intermediate queue.
            log.exception("Worker %s: %s: a job could not be taken", self.name, queue.name)
            self.stopping.wait(1.0)
            return None
        if found is None:
            return None
        job: Job = found[0]
        job.connection = self.connection  # its outcome is written with short timeouts
        log.debug("Worker %s: %s: %s (%s)", self.name, queue.name, job.description, job.id)
        return job

    def _put_back(self, job: Job, queue: Queue) -> None:
        """Return a job that arrived as the worker was told to stop to the front of its queue."""
        try:
            with self.connection.pipeline() as pipe:
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()
        except RedisError as error:
            # RQ's maintenance finds it in the intermediate queue and fails it: the flow is told.
            log.warning("job %s could not be put back in its queue: %s", job.id, error)

    def _run(self, job: Job, queue: Queue) -> None:
        """Run one job in this greenlet, as RQ's simple worker runs one in its process."""
        try:
            execution = self.prepare_execution(job)
            with self.beats.running(job, execution):
                self.perform_job(job, queue, execution)
            self.performed += 1
        except RedisError as error:
            log.error("job %s: Redis stayed away; its outcome is lost and it will be reaped: %s", job.id, error)
            # RQ forgets an execution as it writes the outcome, which did not happen.
            for execution_id in [key for key, kept in self.executions.items() if kept.job_id == job.id]:
                del self.executions[execution_id]

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's, always taking the job off the intermediate queue.

        RQ takes it off only for a worker of a single queue, because with several it dequeues with
        BLPOP, which uses no intermediate queue. This worker dequeues each queue alone (BLMOVE), so
        the job is always there; left behind, RQ's maintenance would fail it a minute later.
        """
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)

    def handle_payload(self, message: dict[str, Any]) -> None:
        """RQ's commands; stop-job stops the job it names, not the one RQ takes to be "current".

        RQ's own stop-job handling compares the job with one of the worker's executions and kills a
        work horse; here each job has its greenlet, and exactly the named one is ended.
        """
        payload = parse_payload(message)
        if payload.get("command") != "stop-job":
            super().handle_payload(message)  # type: ignore[no-untyped-call]  # RQ's is unannotated
            return
        job_id = str(payload.get("job_id", ""))
        if self._stop(job_id):
            log.info("Worker %s: job %s stopped on request", self.name, job_id)
        else:
            log.warning("Worker %s: not running job %s: stop command ignored", self.name, job_id)

    def request_stop_execution(self, execution_id: str) -> None:
        """RQ's stop-execution command: end the job of that execution, if it runs here."""
        execution = self.executions.get(execution_id)
        if execution is None or not self._stop(execution.job_id):
            log.warning("Worker %s: not running execution %s: stop command ignored", self.name, execution_id)

    def _stop(self, job_id: str) -> bool:
        """End a running job at an operator's request, to be recorded as stopped; whether it ran here."""
        if not stop_job(job_id):
            return False
        self.stopped_jobs.add(job_id)
        return True

    def _watch_for_blocking_handlers(self) -> None:
        """Name, once per job, a handler that holds the event loop: every other job waits meanwhile."""
        gevent.config.max_blocking_time = defaults.MAX_BLOCKING_TIME
        gevent.config.print_blocking_reports = False  # a page of stacks on stderr; the line below says it
        gevent.events.subscribers.append(self._name_blocking_handler)
        gevent.config.monitor_thread = True
        gevent.get_hub().start_periodic_monitoring_thread()
        # Only this hub: every other thread's hub (the heartbeat's, the thread pool's) would start a
        # monitor of its own when its loop first runs, which would find that thread's native sleep
        # "blocked" every second and walk every greenlet of the process for its report.
        gevent.config.monitor_thread = False

    def _name_blocking_handler(self, event: object) -> None:
        if not isinstance(event, gevent.events.EventLoopBlocked):
            return
        # The handler's code runs in a greenlet its job's greenlet spawned (workers/timeouts.py).
        spawner = getattr(event.greenlet, "spawning_greenlet", None)
        job = self.running.get(spawner() if spawner is not None else event.greenlet)
        if job is None or job.id in self._blocking_named:
            return
        self._blocking_named.add(job.id)
        log.warning(
            "handler %s (job %s) held the worker for more than %.1f s: its other jobs waited; "
            'a handler that computes should set SETTINGS["cpu_bound"] = True',
            job.description,
            job.id,
            event.blocking_time,
        )
