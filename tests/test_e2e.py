"""End to end, as a new user runs it: `make run` (private Redis, gunicorn, a worker) driven over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from flowhook import defaults
from flowhook.contract import INTERRUPTED
from flowhook.dev.redis_server import free_port
from tests.conftest import ROOT
from tests.waiting import poll_until_over, wait_until

pytestmark = pytest.mark.e2e


@dataclass
class Service:
    """The launcher process and what it serves."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    data_dir: Path
    state_file: Path

    def call(self, handler: str, variables: dict[str, str], instance: str = "e2e-1") -> dict[str, str]:
        response = requests.post(
            f"{self.url}/webservice/{handler}",
            json={"process_instance_id": instance, "params": {}, "variables": variables},
            timeout=20,
        )
        assert response.status_code == 200, response.text
        answer: dict[str, str] = response.json()["data"]["variables"]
        return answer


def wait_for_log(log: Path, *needles: str, timeout: float = 30.0, times: int = 1) -> None:
    """Wait until every needle appears in the launcher's output (``times`` times or more)."""
    wait_until(
        lambda: all(log.read_text(errors="replace").count(needle) >= times for needle in needles),
        timeout,
        lambda: f"not in the output: {needles}\n{log.read_text(errors='replace')}",
        interval=0.1,
    )


def make_run_command(tmp_path: Path) -> list[str]:
    """`make run`'s command with its files (Redis data, state file, .env) in ``tmp_path``."""
    return [
        *(sys.executable, "-m", "dev.run", "--workers", "1"),
        *("--data-dir", str(tmp_path / "redis"), "--env-file", str(tmp_path / ".env")),
    ]


def make_run_environment(tmp_path: Path, port: int, **settings: str) -> dict[str, str]:
    """REDIS_URL unset, on ``port``, a 1 s budget, the state file in ``tmp_path``, and ``settings``."""
    environment = {**os.environ, "PORT": str(port), "FLOWHOOK_BUDGET": "1", "PYTHONUNBUFFERED": "1"}
    environment.pop("REDIS_URL", None)
    environment.pop("FLOWHOOK_HANDLERS", None)
    environment["FLOWHOOK_STATE_FILE"] = str(tmp_path / "run.json")
    environment.update(settings)
    return environment


@contextmanager
def running_service(tmp_path: Path, **settings: str) -> Iterator[Service]:
    """`make run`'s command on a free port (see make_run_environment)."""
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            make_run_command(tmp_path),
            cwd=ROOT,
            env=make_run_environment(tmp_path, port, **settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log(log, "Listening at", "listening on flowhook")
        yield Service(process, f"http://127.0.0.1:{port}", log, tmp_path / "redis", tmp_path / "run.json")
    finally:
        stop_tree(process)


@contextmanager
def gunicorn(environment: Mapping[str, str], log: Path) -> Iterator[str]:
    """The web service as the image runs it (gunicorn.conf.py), one process, its lines in ``log``; yields its URL."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env={**environment, "PORT": str(port), "WEB_CONCURRENCY": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log(log, "Booting worker")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_tree(process)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path) as running:
        yield running


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop the launcher as Ctrl-C would; if that fails, kill it and everything it started."""
    if process.poll() is not None:
        return
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    process.send_signal(signal.SIGINT)
    _, alive = psutil.wait_procs(tree, timeout=20)
    for leftover in alive:
        leftover.kill()
    psutil.wait_procs(alive, timeout=5)
    process.wait(5)  # psutil has reaped it; this tells the Popen object (no ResourceWarning)


def test_make_run_answers_inline_then_pending_then_polled_to_done(service: Service) -> None:
    echo = service.call("echo", {"firstname": "Ada"})
    assert echo == {"firstname": "Ada", "echo_status": "done", "echo_job": "", "echo_error": ""}

    answer = service.call("sleep", {"seconds": "3"})
    assert answer["sleep_status"] == "pending"
    assert len(answer["sleep_job"]) == 32
    answer = poll_until_over(service.call, "sleep", {"seconds": "3"}, answer, timeout=20)
    assert answer == {"slept": "3", "sleep_status": "done", "sleep_job": "", "sleep_error": ""}

    malformed = requests.post(f"{service.url}/webservice/echo", data=b"{", timeout=5)
    assert malformed.status_code == 415
    assert malformed.json()["error"]["code"] == 415


# A call of the README's quick start and the answer it shows: a ```sh block with one curl, then a ```json block.
README_CALL = re.compile(
    r"```sh\ncurl -s localhost:8000(/webservice/\w+) [^`]*?-d '([^']*)'\n```\n```json\n([^\n]*)\n```"
)
# How the README shortens a job id, in what it sends and what it shows.
SHORTENED_JOB = "9b46496134..."


@pytest.mark.slow  # waits out the default budget, as the README's pending example does
def test_the_readmes_calls_are_answered_as_the_readme_shows(tmp_path: Path) -> None:
    calls = README_CALL.findall((ROOT / "README.md").read_text())
    assert len(calls) == 3  # echo; sleep, pending; its poll, done
    job = ""
    with running_service(tmp_path, FLOWHOOK_BUDGET=str(defaults.BUDGET)) as service:
        for path, body, shown in calls:
            response = requests.post(
                f"{service.url}{path}",
                data=body.replace(SHORTENED_JOB, job),
                headers={"Content-Type": "application/json"},
                timeout=20,
            )
            job = response.json()["data"]["variables"].get("sleep_job") or job
            assert response.text.strip() == shown.replace(SHORTENED_JOB, job)


def test_ctrl_c_stops_everything_and_keeps_redis_data(service: Service) -> None:
    assert service.call("echo", {"x": "1"})["echo_status"] == "done"
    children = psutil.Process(service.process.pid).children(recursive=True)
    assert len(children) >= 3  # redis-server, gunicorn (arbiter and workers), the RQ worker

    service.process.send_signal(signal.SIGINT)
    assert service.process.wait(timeout=30) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {alive}"
    assert (service.data_dir / "appendonly.aof").exists()


def test_make_run_starts_a_worker_again_when_a_handler_ends_its_process(tmp_path: Path) -> None:
    settings = {"FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_HEARTBEAT_TTL": "4"}
    with running_service(tmp_path, **settings) as service:  # one worker
        # The 4 s heartbeat and a poll's budget (5 s), and a few seconds for a loaded machine.
        answer = poll_until_over(service.call, "dying", {}, timeout=15)
        assert (answer["dying_status"], answer["dying_error"]) == ("failed", INTERRUPTED)
        wait_for_log(service.log, "starting it again")
        assert service.call("kept", {})["kept_status"] == "done"  # the worker started again serves
        # Nothing the dead worker left behind (its scheduler process) keeps Ctrl-C from ending it all.
        children = psutil.Process(service.process.pid).children(recursive=True)
        service.process.send_signal(signal.SIGINT)
        assert service.process.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"left running: {alive}"


def flask_cli(*arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app app ...`` as a developer would, in the project's folder."""
    environment = {**os.environ, "FLASK_SKIP_DOTENV": "1", **settings}  # not the developer's own .env
    command = [sys.executable, "-m", "flask", "--app", "app", *arguments]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_the_call_command_polls_to_done_showing_progress(service: Service) -> None:
    finished = flask_cli("call", "sleep", "--var", "seconds=2", "--url", service.url)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("pending  job ")
    assert "%" in lines[0]
    assert "next poll" in lines[0]  # the flow's automatic jump: the poll is held until the job ends
    assert any(line.startswith("done after ") and line.endswith(", 0 clicks by the user") for line in lines)
    assert '"slept": "2"' in finished.stdout


def test_the_call_command_exits_non_zero_unless_done(service: Service) -> None:
    invalid = flask_cli("call", "sleep", "--var", "seconds=many", "--url", service.url)
    assert invalid.returncode == 1
    assert "invalid after" in invalid.stdout
    missing = flask_cli("call", "nope", "--url", service.url)
    assert missing.returncode == 1
    assert "answered 404" in missing.stderr


def test_a_new_handler_is_picked_up_by_make_run(tmp_path: Path) -> None:
    package = tmp_path / "code" / "team_handlers"
    created = flask_cli("new", "greet", "--handlers-dir", str(package), "--tests-dir", str(tmp_path / "code" / "tests"))
    assert created.returncode == 0, created.stderr
    generated_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "code" / "tests")],
        cwd=tmp_path / "code",
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{tmp_path / 'code'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "3 passed" in generated_tests.stdout, generated_tests.stdout + generated_tests.stderr

    team = {"FLOWHOOK_HANDLERS": "team_handlers", "PYTHONPATH": f"{ROOT}:{tmp_path / 'code'}"}
    with running_service(tmp_path, **team) as service:
        finished = flask_cli("call", "greet", "--var", "name=Ada", "--url", service.url, **team)
    assert finished.returncode == 0, finished.stderr
    assert '"greeting": "Hello, Ada!"' in finished.stdout
