"""The developer commands: handlers, new."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner


def test_handlers_lists_every_handler_with_its_effective_settings(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["handlers"])
    assert result.exit_code == 0
    assert "inline_overrun  /webservice/inline_overrun" in result.output
    block = result.output.split("inline_overrun  /webservice/inline_overrun")[1].split("/webservice/")[0]
    assert "runs_in      web" in block
    assert "budget       0.5 s" in block
    assert "input        case, gate" in block
    assert "retries      2, after [1] s" in result.output
    assert "namespace    tp_status, _job, _error, _progress" in result.output


def test_new_creates_a_handler_and_its_test(runner: FlaskCliRunner, tmp_path: Path) -> None:
    handlers_dir = tmp_path / "team_handlers"
    result = runner.invoke(args=["new", "greet", "--handlers-dir", str(handlers_dir), "--tests-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (handlers_dir / "__init__.py").exists()
    assert "def handle(call: Call)" in (handlers_dir / "greet.py").read_text()
    test_text = (tmp_path / "test_handler_greet.py").read_text()
    assert 'run("greet", {"name": "Ada"}, package="team_handlers")' in test_text


@pytest.mark.parametrize("name", ["Greet", "class", "1st", "greet-user", ""])
def test_new_refuses_names_that_are_not_handler_names(runner: FlaskCliRunner, tmp_path: Path, name: str) -> None:
    result = runner.invoke(args=["new", name, "--handlers-dir", str(tmp_path / "h"), "--tests-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "lower-case letters" in result.output
    assert not (tmp_path / "h").exists()


def test_new_never_overwrites(runner: FlaskCliRunner, tmp_path: Path) -> None:
    arguments = ["new", "greet", "--handlers-dir", str(tmp_path / "h"), "--tests-dir", str(tmp_path)]
    assert runner.invoke(args=arguments).exit_code == 0
    again = runner.invoke(args=arguments)
    assert again.exit_code == 1
    assert "exists already" in again.output
