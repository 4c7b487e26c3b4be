"""Operator commands on the Flask CLI: ``flask --app app handlers | jobs | forget ID``.

The developer commands (``new``, ``call``) live in ``flowhook.dev.commands`` and are added where
the development tooling is installed (not in the production image).

Commands that act on the service use ``REDIS_URL`` when it is set; in development, without it,
they find the Redis of the `make run` in this folder (``flowhook.dev.runfile``), and say so in one
line when there is none rather than guess a Redis that may be someone else's.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask
from flask.cli import with_appcontext
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from flowhook import keys
from flowhook.connection import connect
from flowhook.extension import current_flowhook
from flowhook.jobstore import JOB_ID, JobStore, owner_of
from flowhook.liveness import fresh_workers
from flowhook.ratelimit import conversation_digest
from flowhook.settings import Settings

if TYPE_CHECKING:
    from flowhook.dev.runfile import RunState

# Present in a checkout, absent from the production image (see .dockerignore).
DEV_TOOLING = importlib.util.find_spec("flowhook.dev") is not None


def running_make_run() -> RunState | None:
    """The `make run` serving from this folder, if the development tooling is here and one runs."""
    if not DEV_TOOLING:
        return None
    from flowhook.dev import runfile  # noqa: PLC0415 - development only

    return runfile.running(Path(current_flowhook().settings.state_file))


def service_settings() -> Settings:
    """The settings with the Redis of the service these commands act on.

    Raises:
        click.ClickException: in one line, when REDIS_URL is not set and no `make run` runs here.
    """
    settings = current_flowhook().settings
    if "REDIS_URL" in settings.given:
        return settings
    if not DEV_TOOLING:
        raise click.ClickException("REDIS_URL is not set: set it to the service's Redis")
    from flowhook.dev import runfile  # noqa: PLC0415 - development only

    try:
        url = runfile.service_redis_url(settings)
    except runfile.NoServiceError as error:
        raise click.ClickException(str(error)) from None
    return dataclasses.replace(settings, redis_url=url)


def _without_password(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


@click.command("handlers")
@with_appcontext
def handlers_command() -> None:
    """List the handlers found and their effective settings."""
    running = running_make_run()
    base = running.url if running is not None else ""
    click.echo(f"served by `make run` (pid {running.pid}) at {base}" if running else "`make run` is not running here")
    registry = current_flowhook().registry
    for handler in registry.values():
        settings = handler.settings
        schema = handler.input_schema
        fields = ", ".join(schema.load_fields) if schema is not None else "(every variable)"
        click.echo(click.style(handler.name, bold=True) + f"  {base}/webservice/{handler.name}")
        click.echo(f"  input        {fields}")
        click.echo(f"  runs_in      {settings.runs_in}")
        click.echo(f"  budget       {settings.budget:g} s")
        click.echo(f"  poll_wait    {settings.poll_wait:g} s")
        click.echo(f"  job_timeout  {settings.job_timeout} s")
        retries = f"{settings.retries}, after {list(settings.retry_intervals)} s" if settings.retries else "none"
        click.echo(f"  retries      {retries}")
        click.echo(f"  result_ttl   {settings.result_ttl} s")
        click.echo(f"  namespace    {settings.namespace}_status, _job, _error, _progress, _next")
        click.echo(f"  concurrency  {settings.concurrency} jobs at once per worker")
        click.echo(f"  cpu_bound    {'true' if settings.cpu_bound else 'false'}")
    for name, error in registry.broken.items():
        click.echo(click.style(name, bold=True) + "  " + click.style("broken: the service does not start", fg="red"))
        click.echo(f"  {error}")
    if registry.broken:
        sys.exit(1)


@click.command("forget")
@click.argument("process_instance_id")
@with_appcontext
def forget_command(process_instance_id: str) -> None:
    """Delete everything stored for one conversation: its jobs, results, dedupe, turn and rate-limit entries."""
    settings = service_settings()
    registry = current_flowhook().registry
    if settings.handlers_package in registry.broken:  # no handler is known, so none of their jobs
        raise click.ClickException(f"{registry.broken[settings.handlers_package]}; nothing done")
    connection = connect(settings)
    try:
        _require_flowhook_data(connection, settings)
        # A module broken now may have served before (`make run` keeps the last good version).
        owners = {owner_of(name, process_instance_id) for name in [*registry, *registry.broken]}
        jobs, running = _forget_jobs(connection, owners)
        connection.delete(*(keys.turn(owner) for owner in owners))  # when its turn began, if it polls now
        pattern = f"LIMITS:*conversation:{conversation_digest(process_instance_id)}*"
        counters = list(connection.scan_iter(match=pattern, count=1000))
        if counters:
            connection.delete(*counters)
    except RedisError as error:
        raise click.ClickException(f"cannot reach Redis at {_without_password(settings.redis_url)}: {error}") from None
    click.echo(
        f"deleted {_count(jobs, 'job')} and {_count(len(counters), 'rate-limit counter')} of {process_instance_id}"
    )
    if running:
        jobs_are = "1 job is" if running == 1 else f"{running} jobs are"
        it_ends = "it ends" if running == 1 else "they end"
        click.echo(f"{jobs_are} running: run forget again once {it_ends} (at most their job timeout)")
        sys.exit(1)


def _forget_jobs(connection: Redis, owners: set[str]) -> tuple[int, int]:
    """Delete every job (with its results and dedupe entry) whose owner tag is in ``owners``.

    A job running right now is left alone: its worker writes it back when it ends. Returns how
    many jobs were deleted and how many are still running.
    """
    deleted = running = 0
    for key in connection.scan_iter(match="rq:job:*", count=1000):
        job_id = key.decode().removeprefix("rq:job:")
        if not JOB_ID.fullmatch(job_id):  # rq:job:<id>:dependents and the like
            continue
        try:
            job = Job.fetch(job_id, connection=connection, serializer=JobStore.serializer)
        except NoSuchJobError:
            continue
        if job.meta.get("owner") not in owners:
            continue
        if job.get_status(refresh=False) == JobStatus.STARTED:
            running += 1
            continue
        if job.meta.get("dedupe"):
            connection.delete(job.meta["dedupe"])
        job.delete()
        connection.delete(Result.get_key(job_id))  # RQ's delete() leaves the results behind
        deleted += 1
    return deleted, running


def _require_flowhook_data(connection: Redis, settings: Settings) -> None:
    """Refuse a Redis that has never held an RQ queue or worker: it is not the service's.

    Deleting nothing there and saying "deleted 0" would read as success while the conversation's
    data sits in the service's real Redis.
    """
    if not Queue.all(connection=connection) and not Worker.all(connection=connection):
        raise click.ClickException(
            f"the Redis at {_without_password(settings.redis_url)} holds no RQ queue and no worker: it is not "
            "Flowhook's; nothing done (is REDIS_URL the service's Redis?)"
        )


@click.command("jobs")
@click.option("--limit", default=20, show_default=True, help="jobs listed per queue and state")
@with_appcontext
def jobs_command(limit: int) -> None:
    """Show the queued, running and failed jobs of every queue, and the workers."""
    settings = service_settings()
    connection = connect(settings)
    try:
        _require_flowhook_data(connection, settings)
        serializer = JobStore.serializer
        workers = Worker.all(connection=connection)
        alive = fresh_workers(connection, [worker.key for worker in workers], settings)
        live = sorted((worker for worker in workers if worker.key in alive), key=lambda worker: worker.name)
        click.echo(f"Redis {_without_password(settings.redis_url)}: {_count(len(live), 'live worker')}")
        for worker in live:
            running = [execution.job_id for execution in worker.get_current_executions()]
            click.echo(f"  {worker.name}  {worker.get_state()}  running {len(running)}: {' '.join(running) or '-'}")
        for queue in sorted(Queue.all(connection=connection, serializer=serializer), key=lambda q: q.name):
            click.echo(click.style(queue.name, bold=True))
            sections = (
                ("queued", queue.get_job_ids(0, limit - 1), queue.count),
                ("running", queue.started_job_registry.get_job_ids(0, limit - 1), queue.started_job_registry.count),
                ("failed", queue.failed_job_registry.get_job_ids(0, limit - 1), queue.failed_job_registry.count),
            )
            for label, job_ids, count in sections:
                click.echo(f"  {label:<8}{count}")
                for job in Job.fetch_many(job_ids, connection=connection, serializer=serializer):
                    if job is not None:
                        click.echo(f"    {_describe(job)}")
    except RedisError as error:
        raise click.ClickException(f"cannot reach Redis at {_without_password(settings.redis_url)}: {error}") from None


def _describe(job: Job) -> str:
    """A job's id, handler, age, trace id (to find its log lines) and failure reason: never its variables."""
    age = ""
    if job.enqueued_at is not None:
        seconds = (datetime.now(UTC) - job.enqueued_at.replace(tzinfo=UTC)).total_seconds()
        age = f"  enqueued {seconds:.0f} s ago"
    trace = f"  trace={job.meta['trace']}" if job.meta.get("trace") else ""
    reason = f"  {job.meta['error']}" if job.meta.get("error") else ""
    return f"{job.id}  {job.description}{age}{trace}{reason}"


def init_app(app: Flask) -> None:
    """Register the operator commands, and the developer commands where the tooling is installed."""
    for command in (handlers_command, jobs_command, forget_command):
        app.cli.add_command(command)
    if DEV_TOOLING:
        from flowhook.dev import commands  # noqa: PLC0415 - development only

        commands.init_app(app)


def _count(number: int, thing: str) -> str:
    """``1 job``, ``2 jobs``."""
    return f"{number} {thing}{'' if number == 1 else 's'}"
