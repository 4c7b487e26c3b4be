"""Handlers are discovered from a package; a broken handler module stops start-up, naming its file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app import create_app
from flowhook.exceptions import HandlerModuleError
from flowhook.registry import discover
from flowhook.settings import Settings
from tests.conftest import ROOT


def test_every_module_of_the_package_is_a_handler() -> None:
    registry = discover(Settings(handlers_package="handlers"))
    assert list(registry) == ["echo", "sleep"]


def test_handler_settings_override_the_global_ones() -> None:
    registry = discover(Settings(handlers_package="tests.handlers", budget=3, job_timeout=50))
    assert registry["gated"].settings.budget == 1
    assert registry["boom"].settings.budget == 3
    assert registry["overrun"].settings.job_timeout == 1
    assert registry["boom"].settings.job_timeout == 50
    assert registry["typed"].namespace == "tp"
    assert registry["boom"].namespace == "boom"


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
