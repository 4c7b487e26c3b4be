"""Developer commands on the Flask CLI: ``flask --app app handlers | new NAME | call NAME | jobs | forget ID``.

Commands that act on the service find it as `make run` recorded it (``flowhook.state``) unless
``REDIS_URL`` says otherwise, and say so in one line when there is none.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import keyword
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import requests
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job

from flowhook import state
from flowhook.connection import connect
from flowhook.contract import PENDING
from flowhook.health import longest_silence
from flowhook.jobs import JobStore, forget, owner_of
from flowhook.ratelimit import conversation_digest
from flowhook.registry import Registry
from flowhook.settings import Settings

# Seconds a poll waits for a service that stopped answering: `make run` restarting after an edit.
RELOAD_PATIENCE = 20.0
HANDLER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _registry() -> Registry:
    registry: Registry = current_app.extensions["flowhook"].registry
    return registry


def _settings() -> Settings:
    settings: Settings = current_app.config["FLOWHOOK_SETTINGS"]
    return settings


def _running() -> state.RunState | None:
    return state.running(Path(_settings().state_file))


def _service_settings() -> Settings:
    """The settings with the Redis of the service these commands act on.

    Raises:
        click.ClickException: in one line, when no service is running and REDIS_URL is not set.
    """
    settings = _settings()
    try:
        url = state.service_redis_url(settings, redis_url_given=current_app.config["FLOWHOOK_REDIS_URL_GIVEN"])
    except state.NoServiceError as error:
        raise click.ClickException(str(error)) from None
    return dataclasses.replace(settings, redis_url=url)


def _without_password(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


@click.command("handlers")
@with_appcontext
def handlers_command() -> None:
    """List the handlers found and their effective settings."""
    running = _running()
    base = running.url if running is not None else ""
    click.echo(f"served by `make run` (pid {running.pid}) at {base}" if running else "`make run` is not running here")
    for handler in _registry().values():
        settings = handler.settings
        schema = handler.input_schema
        fields = ", ".join(schema.load_fields) if schema is not None else "(every variable)"
        click.echo(click.style(handler.name, bold=True) + f"  {base}/webservice/{handler.name}")
        click.echo(f"  input        {fields}")
        click.echo(f"  runs_in      {settings.runs_in}")
        click.echo(f"  budget       {settings.budget:g} s")
        click.echo(f"  job_timeout  {settings.job_timeout} s")
        retries = f"{settings.retries}, after {list(settings.retry_intervals)} s" if settings.retries else "none"
        click.echo(f"  retries      {retries}")
        click.echo(f"  result_ttl   {settings.result_ttl} s")
        click.echo(f"  namespace    {settings.namespace}_status, _job, _error, _progress")
        click.echo(f"  concurrency  {settings.concurrency} jobs at once per worker")
        click.echo(f"  cpu_bound    {'true' if settings.cpu_bound else 'false'}")


@click.command("new")
@click.argument("name")
@click.option("--handlers-dir", type=click.Path(path_type=Path), help="default: the handlers package's folder")
@click.option("--tests-dir", type=click.Path(path_type=Path), help="default: tests/ beside the handlers package")
@with_appcontext
def new_command(name: str, handlers_dir: Path | None, tests_dir: Path | None) -> None:
    """Create a handler module NAME and its test from a template."""
    if not HANDLER_NAME.match(name) or keyword.iskeyword(name):
        raise click.BadParameter("use lower-case letters, digits and _, starting with a letter", param_hint="NAME")
    package = _settings().handlers_package
    if handlers_dir is None:
        handlers_dir = Path(next(iter(importlib.import_module(package).__path__)))
    else:
        package = handlers_dir.name  # a package of its own, imported by its folder's name
    tests_dir = tests_dir or handlers_dir.parent / "tests"
    handler_file = handlers_dir / f"{name}.py"
    test_file = tests_dir / f"test_handler_{name}.py"
    for existing in (handler_file, test_file):
        if existing.exists():
            raise click.ClickException(f"{existing} exists already")
    values = {"name": name, "package": package}
    if not handlers_dir.exists():
        handlers_dir.mkdir(parents=True)
        (handlers_dir / "__init__.py").write_text('"""Handlers: each module here is one use case."""\n')
    tests_dir.mkdir(parents=True, exist_ok=True)
    handler_file.write_text(_template("handler.py.txt", values))
    test_file.write_text(_template("test_handler.py.txt", values))
    click.echo(f"created {handler_file}\ncreated {test_file}")
    bin_dir = _relative(Path(sys.executable).parent)
    click.echo("`make run` serves it as soon as it is saved (it reloads on change); then try it and test it:")
    click.echo(f"  {bin_dir}/flask --app app call {name} --var name=Ada")
    installed = "" if (bin_dir / "pytest").exists() else "   (pytest comes with `make test`)"
    click.echo(f"  {bin_dir}/pytest {_relative(test_file)}{installed}")


def _relative(path: Path) -> Path:
    """``path`` as typed in the project's folder (``.venv/bin``), or whole when it lies elsewhere."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path


def _template(file_name: str, values: dict[str, str]) -> str:
    text = resources.files("flowhook").joinpath("templates", file_name).read_text()
    return Template(text).substitute(values)


def _parse_variables(pairs: tuple[str, ...]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--var")
        variables[key] = value
    return variables


@click.command("call")
@click.argument("name")
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="a flow variable; repeat for more")
@click.option("--instance", help="the conversation's id (default: a new one)")
@click.option("--url", help="the service (default: the one `make run` serves here)")
@click.option(
    "--token",
    envvar="FLOWHOOK_CALL_TOKEN",
    help="sent as Authorization: Bearer, when the service has FLOWHOOK_TOKENS (default: $FLOWHOOK_CALL_TOKEN)",
)
@with_appcontext
def call_command(name: str, pairs: tuple[str, ...], instance: str | None, url: str | None, token: str | None) -> None:
    """Call handler NAME as LoyJoy would, polling until it is done or failed."""
    handler = _registry().get(name)
    namespace = handler.namespace if handler is not None else name
    endpoint = _endpoint(url or _service_url(), name)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    variables = _parse_variables(pairs)
    body: dict[str, Any] = {
        "process_definition_id": "flowhook-cli",
        "process_instance_id": instance or f"cli-{uuid.uuid4().hex[:12]}",
        "params": {"user-agent": "flowhook-cli"},
    }
    started = time.monotonic()
    live = sys.stdout.isatty()
    answer: dict[str, str] = {}
    while True:
        # Once the job runs, the service may be restarting (`make run` reloads on edit): poll on.
        answer = _post(endpoint, {**body, "variables": variables}, headers, patience=RELOAD_PATIENCE if answer else 0)
        status = answer.get(f"{namespace}_status", "?")
        elapsed = time.monotonic() - started
        if status != PENDING:
            break
        line = f"pending  job {answer.get(f'{namespace}_job')}  progress {answer.get(f'{namespace}_progress', '-')}"
        click.echo(f"\r\x1b[2K{line}  {elapsed:.1f} s" if live else f"{line}  {elapsed:.1f} s", nl=not live)
        variables.update(answer)  # LoyJoy sends back what the answer set, so this call is a poll
    if live:
        click.echo()
    click.echo(f"{status} after {elapsed:.1f} s")
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    if status != "done":
        sys.exit(1)


def _service_url() -> str:
    """The running `make run`'s address; with REDIS_URL or PORT set (a service run by hand), PORT's."""
    running = _running()
    if running is not None:
        return running.url
    if current_app.config["FLOWHOOK_REDIS_URL_GIVEN"] or "PORT" in os.environ:
        return f"http://127.0.0.1:{_settings().port}"
    raise click.ClickException(
        f"no Flowhook is running here ({_settings().state_file} names no live `make run`): "
        "start `make run` in this folder, or pass --url"
    )


def _endpoint(base: str, name: str) -> str:
    """``base``'s /webservice/NAME, keeping a query string such as ``?token=...``."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/webservice/{name}"))


def _post(endpoint: str, body: dict[str, Any], headers: dict[str, str], patience: float = 0) -> dict[str, str]:
    """POST a call; a service that does not answer is tried again for ``patience`` seconds."""
    shown = endpoint.split("?", 1)[0]  # a token in the query string stays off the screen
    give_up = time.monotonic() + patience
    while True:
        try:
            response = requests.post(endpoint, json=body, headers=headers, timeout=30)
            break
        except requests.ConnectionError:
            if time.monotonic() < give_up:
                time.sleep(0.5)
                continue
            raise click.ClickException(
                f"nothing answers at {shown}: is `make run` running (and on that port)?"
            ) from None
        except requests.RequestException as error:
            raise click.ClickException(f"cannot reach {shown}: {error}") from None
    if response.status_code == 401:
        raise click.ClickException(
            f"{shown} answered 401: the service wants a token, and this one was missing or wrong; "
            "pass --token (or set FLOWHOOK_CALL_TOKEN)"
        )
    if response.status_code != 200:
        raise click.ClickException(f"{shown} answered {response.status_code}: {response.text[:500]}")
    answer: dict[str, str] = response.json()["data"]["variables"]
    return answer


@click.command("forget")
@click.argument("process_instance_id")
@with_appcontext
def forget_command(process_instance_id: str) -> None:
    """Delete everything stored for one conversation: its jobs, results, dedupe and rate-limit entries."""
    settings = _service_settings()
    connection = connect(settings)
    try:
        _require_flowhook_data(connection, settings)
        owners = {owner_of(handler, process_instance_id) for handler in _registry().values()}
        jobs, running = forget(connection, owners, JobStore.serializer)
        pattern = f"LIMITS:*conversation:{conversation_digest(process_instance_id)}*"
        counters = list(connection.scan_iter(match=pattern, count=1000))
        if counters:
            connection.delete(*counters)
    except RedisError as error:
        raise click.ClickException(f"cannot reach Redis at {_without_password(settings.redis_url)}: {error}") from None
    click.echo(f"deleted {jobs} jobs and {len(counters)} rate-limit counters of {process_instance_id}")
    if running:
        click.echo(f"{running} jobs are running: run forget again once they end (at most their job timeout)")
        sys.exit(1)


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
    settings = _service_settings()
    connection = connect(settings)
    try:
        _require_flowhook_data(connection, settings)
        serializer = JobStore.serializer
        fresh_since = datetime.now(UTC) - timedelta(seconds=longest_silence(settings))
        workers = [
            worker
            for worker in Worker.all(connection=connection)
            if worker.last_heartbeat is not None and worker.last_heartbeat > fresh_since
        ]
        click.echo(f"Redis {_without_password(settings.redis_url)}: {len(workers)} live workers")
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
    """Register the developer commands."""
    for command in (handlers_command, new_command, call_command, jobs_command, forget_command):
        app.cli.add_command(command)
