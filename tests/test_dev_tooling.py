"""make run's own paths: what it watches for a reload and what its code check compiles exist."""

from __future__ import annotations

from flowhook.dev import run, stack
from tests.conftest import ROOT


def test_make_run_watches_the_projects_own_code() -> None:
    assert run.ROOT == ROOT
    missing = [path for path in run.OWN_CODE if not path.exists()]
    assert missing == []
    assert ROOT / "flowhook" in run.OWN_CODE
    assert ROOT / "workers" in run.OWN_CODE


def test_the_code_check_compiles_the_workers() -> None:
    assert stack.WORKER_CODE == ROOT / "workers"
    assert list(stack.WORKER_CODE.rglob("*.py"))
