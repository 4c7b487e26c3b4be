"""Developer commands on the Flask CLI: ``flask --app app handlers | new NAME | call NAME``."""

from __future__ import annotations

import importlib
import json
import keyword
import re
import sys
import time
import uuid
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import click
import requests
from flask import Flask, current_app
from flask.cli import with_appcontext

from flowhook.contract import PENDING
from flowhook.jobs import forget, owner_of
from flowhook.ratelimit import conversation_digest
from flowhook.registry import Registry
from flowhook.settings import Settings

HANDLER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _registry() -> Registry:
    registry: Registry = current_app.extensions["flowhook"].registry
    return registry


def _settings() -> Settings:
    settings: Settings = current_app.config["FLOWHOOK_SETTINGS"]
    return settings


@click.command("handlers")
@with_appcontext
def handlers_command() -> None:
    """List the handlers found and their effective settings."""
    for handler in _registry().values():
        settings = handler.settings
        schema = handler.input_schema
        fields = ", ".join(schema.load_fields) if schema is not None else "(every variable)"
        click.echo(click.style(handler.name, bold=True) + f"  /webservice/{handler.name}")
        click.echo(f"  input        {fields}")
        click.echo(f"  runs_in      {settings.runs_in}")
        click.echo(f"  budget       {settings.budget:g} s")
        click.echo(f"  job_timeout  {settings.job_timeout} s")
        retries = f"{settings.retries}, after {list(settings.retry_intervals)} s" if settings.retries else "none"
        click.echo(f"  retries      {retries}")
        click.echo(f"  result_ttl   {settings.result_ttl} s")
        click.echo(f"  namespace    {settings.namespace}_status, _job, _error, _progress")


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
    click.echo(f"restart `make run`, then: flask --app app call {name} --var name=Ada")


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
@click.option("--url", help="the service (default: http://127.0.0.1:$PORT)")
@with_appcontext
def call_command(name: str, pairs: tuple[str, ...], instance: str | None, url: str | None) -> None:
    """Call handler NAME as LoyJoy would, polling until it is done or failed."""
    handler = _registry().get(name)
    namespace = handler.namespace if handler is not None else name
    endpoint = f"{(url or f'http://127.0.0.1:{_settings().port}').rstrip('/')}/webservice/{name}"
    variables = _parse_variables(pairs)
    body: dict[str, Any] = {
        "process_definition_id": "flowhook-cli",
        "process_instance_id": instance or f"cli-{uuid.uuid4().hex[:12]}",
        "params": {"user-agent": "flowhook-cli"},
    }
    started = time.monotonic()
    live = sys.stdout.isatty()
    while True:
        answer = _post(endpoint, {**body, "variables": variables})
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


def _post(endpoint: str, body: dict[str, Any]) -> dict[str, str]:
    try:
        response = requests.post(endpoint, json=body, timeout=30)
    except requests.RequestException as error:
        raise click.ClickException(f"cannot reach {endpoint}: {error}") from None
    if response.status_code != 200:
        raise click.ClickException(f"{endpoint} answered {response.status_code}: {response.text[:500]}")
    answer: dict[str, str] = response.json()["data"]["variables"]
    return answer


@click.command("forget")
@click.argument("process_instance_id")
@with_appcontext
def forget_command(process_instance_id: str) -> None:
    """Delete everything stored for one conversation: its jobs, results, dedupe and rate-limit entries."""
    store = current_app.extensions["flowhook"].store
    owners = {owner_of(handler, process_instance_id) for handler in _registry().values()}
    jobs, running = forget(store.connection, owners, store.serializer)
    pattern = f"LIMITS:*conversation:{conversation_digest(process_instance_id)}*"
    counters = list(store.connection.scan_iter(match=pattern, count=1000))
    if counters:
        store.connection.delete(*counters)
    click.echo(f"deleted {jobs} jobs and {len(counters)} rate-limit counters of {process_instance_id}")
    if running:
        click.echo(f"{running} jobs are running: run forget again once they end (at most their job timeout)")
        sys.exit(1)


def init_app(app: Flask) -> None:
    """Register the developer commands."""
    for command in (handlers_command, new_command, call_command, forget_command):
        app.cli.add_command(command)
