"""Handlers are discovered from a package; a broken handler module stops start-up, naming its file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import click
import pytest

from app import create_app
from flowhook.exceptions import HandlerModuleError
from flowhook.extension import EXTENSION
from flowhook.registry import discover
from flowhook.settings import Settings
from tests.conftest import ROOT


def test_every_module_of_the_package_is_a_handler() -> None:
    registry = discover(Settings(handlers_package="handlers"))
    # The team's own handlers (`flask --app app new` adds them here) are found beside the examples.
    modules = sorted(path.stem for path in (ROOT / "handlers").glob("*.py") if not path.stem.startswith("_"))
    assert list(registry) == modules
    assert {"echo", "order_lookup", "sleep"} <= set(registry)


def test_settings_have_documented_defaults() -> None:
    settings = discover(Settings(handlers_package="tests.handlers"))["boom"].settings
    assert settings.runs_in == "worker"
    assert settings.retries == 0
    assert settings.result_ttl == 3600
    assert settings.job_timeout == 180


def test_handler_settings_override_the_global_ones() -> None:
    registry = discover(Settings(handlers_package="tests.handlers", budget=3, job_timeout=50))
    assert registry["gated"].settings.budget == 1
    assert registry["boom"].settings.budget == 3
    assert registry["overrun"].settings.job_timeout == 1
    assert registry["boom"].settings.job_timeout == 50
    assert registry["typed"].namespace == "tp"
    assert registry["boom"].namespace == "boom"
    assert registry["quick"].settings.runs_in == "web"
    assert registry["flaky"].settings.retries == 2
    assert registry["flaky"].settings.retry_intervals == (1,)
    assert registry["kept"].settings.result_ttl == 7


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"runs_in": "lambda"}, r"runs_in: Must be one of: worker, web"),
        ({"budget": 15.5}, r"budget: must be more than 0 and at most 15 seconds"),
        ({"job_timeout": 0}, r"job_timeout: Must be greater than or equal to 1"),
        ({"retries": -1}, r"retries: Must be greater than or equal to 0"),
        ({"retry_intervals": []}, r"retry_intervals: Length must be between 1 and 20"),
        ({"result_ttl": "forever"}, r"result_ttl: Not a valid integer"),
        ({"namespace": "my-ns"}, r"namespace: must use only"),
        ({"budjet": 3}, r"budjet: Unknown field"),
    ],
)
def test_bad_handler_settings_are_named(
    settings: dict[str, object], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"settings_{uuid.uuid4().hex[:8]}"  # a new package each time: imports are cached
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "orders.py").write_text(f"SETTINGS = {settings!r}\n\ndef handle(call):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HandlerModuleError, match=rf"{name}/orders\.py\): invalid SETTINGS: {message}"):
        discover(Settings(handlers_package=name))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "SETTINGS = {'cpu_bound': True}\n\nasync def handle(call):\n    return None\n",
            r"an async def handle cannot be cpu_bound",
        ),
        ("async def handle(call):\n    yield {}\n", r"handle\(call\) must return its variables, not yield them"),
        ("def handle(call):\n    yield {}\n", r"handle\(call\) must return its variables, not yield them"),
    ],
)
def test_a_handler_that_cannot_run_is_refused_at_start_up(
    source: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"mixed_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "orders.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HandlerModuleError, match=rf"handler module {name}\.orders \(.*orders\.py\): {message}"):
        discover(Settings(handlers_package=name))


def test_an_async_handler_is_known_as_one() -> None:
    registry = discover(Settings(handlers_package="tests.handlers"))
    assert registry["async_nap"].asynchronous
    assert not registry["boom"].asynchronous


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ("tests.broken.import_error", r"tests\.broken\.import_error\.crm.*the CRM client is not configured"),
        ("tests.broken.no_handle", r"no_handle/orders\.py.*handle\(call\)"),
        ("tests.broken.bad_settings", r"bad_settings/slow\.py.*budget.*at most 15"),
        ("tests.broken.bad_schema", r"bad_schema/typo\.py.*marshmallow Schema"),
        ("tests.no_such_package", r"cannot import handler module tests\.no_such_package"),
    ],
)
def test_a_broken_handler_module_is_named(package: str, message: str) -> None:
    with pytest.raises(HandlerModuleError, match=message):
        discover(Settings(handlers_package=package))


def test_the_app_does_not_start_with_a_broken_handler(redis_url: str) -> None:
    with pytest.raises(HandlerModuleError, match=r"no_handle/orders\.py"):
        create_app({"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.broken.no_handle"})


def test_a_command_goes_on_past_a_broken_handler_module_but_flask_run_does_not(redis_url: str) -> None:
    config = {"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.broken.no_handle"}
    with click.Context(click.Command("jobs")):
        registry = create_app(config).extensions[EXTENSION].registry
    assert not registry
    assert re.search(r"no_handle/orders\.py.*handle\(call\)", registry.broken["orders"])
    with click.Context(click.Command("run")), pytest.raises(click.ClickException, match=r"no_handle/orders\.py"):
        create_app(config)


@pytest.mark.workers  # starts a subprocess
def test_a_worker_does_not_start_with_a_broken_handler(redis_url: str) -> None:
    environment = {**os.environ, "REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.broken.bad_settings"}
    finished = subprocess.run(
        [sys.executable, "-m", "workers"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert "bad_settings/slow.py" in finished.stderr
    assert "Traceback" not in finished.stderr
