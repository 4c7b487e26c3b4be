"""make run's own paths (what it watches for a reload and what its code check compiles exist), and make lint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dev import run, stack
from flowhook.dev.testing import run as run_handler
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


@pytest.mark.workers  # starts a subprocess
def test_make_lint_formats_what_it_cannot_fix_and_still_fails(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # ruff's rules and line length, as in the project
    source = tmp_path / "greet.py"
    source.write_text("import os\n\ndef greet( name ):\n    return  {'greeting' : f'Hello {nme}'}\n")
    venv = ROOT / ".venv"
    # The project's Makefile and .venv on a folder of one file; -o: .venv is there, install nothing.
    make = ["make", "-s", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), f"VENV={venv}", "-o", f"{venv}/.installed"]
    finished = subprocess.run(
        [*make, "lint"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0  # the undefined name is left for a person
    assert "F821" in finished.stdout
    # Yet the fixable error is fixed and the file is formatted.
    assert source.read_text() == 'def greet(name):\n    return {"greeting": f"Hello {nme}"}\n'


def test_the_testing_helper_returns_the_variables_as_the_flow_receives_them() -> None:
    sent = {"count": 3, "ok": True, "eta": None, "items": [1, "a"], "echo_status": "done"}
    assert run_handler("echo", sent, package="handlers") == {"count": "3", "ok": "true", "eta": "", "items": '[1,"a"]'}
