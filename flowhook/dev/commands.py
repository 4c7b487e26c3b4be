"""Developer commands on the Flask CLI: ``flask --app app new NAME | call NAME``.

``new`` writes a handler and its test from a template; ``call`` calls a handler of the running
`make run` as LoyJoy would, polling until it is over.
"""

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
from urllib.parse import urlsplit, urlunsplit

import click
import requests
from flask import Flask
from flask.cli import with_appcontext

from flowhook.contract import PENDING
from flowhook.dev import runfile
from flowhook.extension import current_flowhook

# Seconds a poll waits for a service that stopped answering: `make run` restarting after an edit.
RELOAD_PATIENCE = 20.0
HANDLER_NAME = re.compile(r"[a-z][a-z0-9_]*")


@click.command("new")
@click.argument("name")
@click.option("--handlers-dir", type=click.Path(path_type=Path), help="default: the handlers package's folder")
@click.option("--tests-dir", type=click.Path(path_type=Path), help="default: tests/ beside the handlers package")
@with_appcontext
def new_command(name: str, handlers_dir: Path | None, tests_dir: Path | None) -> None:
    """Create a handler module NAME and its test from a template."""
    if not HANDLER_NAME.fullmatch(name) or keyword.iskeyword(name):
        raise click.BadParameter("use lower-case letters, digits and _, starting with a letter", param_hint="NAME")
    package = current_flowhook().settings.handlers_package
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
    installed = "" if (bin_dir / "pytest").exists() else "   (pytest comes with `make install`)"
    click.echo(f"  {bin_dir}/pytest {_relative(test_file)}{installed}")


def _relative(path: Path) -> Path:
    """``path`` as typed in the project's folder (``.venv/bin``), or whole when it lies elsewhere."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path


def _template(file_name: str, values: dict[str, str]) -> str:
    text = resources.files("flowhook.dev").joinpath("templates", file_name).read_text()
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
    """Call handler NAME as LoyJoy would, following the flow recipe until it is done or failed.

    A pending answer whose <h>_next is "poll" is polled again at once (the flow's automatic jump);
    one whose <h>_next is "ask" is where the flow shows its message and the user clicks "Check
    again": each such click is printed and counted.
    """
    registry = current_flowhook().registry
    if name in registry.broken:
        raise click.ClickException(f"handler {name} is broken, fix it first: {registry.broken[name]}")
    handler = registry.get(name)
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
    clicks = 0
    while True:
        # Once the job runs, the service may be restarting (`make run` reloads on edit): poll on.
        answer = _post(endpoint, {**body, "variables": variables}, headers, patience=RELOAD_PATIENCE if answer else 0)
        status = answer.get(f"{namespace}_status", "?")
        elapsed = time.monotonic() - started
        if status != PENDING:
            break
        following = answer.get(f"{namespace}_next", "ask")
        line = (
            f"pending  job {answer.get(f'{namespace}_job')}  progress {answer.get(f'{namespace}_progress', '-')}"
            f"  next {following}"
        )
        click.echo(f"\r\x1b[2K{line}  {elapsed:.1f} s" if live else f"{line}  {elapsed:.1f} s", nl=not live)
        if following != "poll":
            clicks += 1
            if live:
                click.echo()
            click.echo(f'the flow shows its message; the user clicks "Check again" (click {clicks})')
        variables.update(answer)  # LoyJoy sends back what the answer set, so this call is a poll
    if live:
        click.echo()
    click.echo(f"{status} after {elapsed:.1f} s, {clicks} click{'' if clicks == 1 else 's'} by the user")
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    if status != "done":
        sys.exit(1)


def _service_url() -> str:
    """The running `make run`'s address; with REDIS_URL or PORT set (a service run by hand), PORT's."""
    flowhook = current_flowhook()
    running = runfile.running(Path(flowhook.settings.state_file))
    if running is not None:
        return running.url
    if "REDIS_URL" in flowhook.settings.given or "PORT" in flowhook.settings.given:
        return f"http://127.0.0.1:{flowhook.settings.port}"
    raise click.ClickException(
        f"no Flowhook is running here ({flowhook.settings.state_file} names no live `make run`): "
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


def init_app(app: Flask) -> None:
    """Register the developer commands."""
    for command in (new_command, call_command):
        app.cli.add_command(command)
