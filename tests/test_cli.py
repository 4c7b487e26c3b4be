"""The developer commands: handlers, new, jobs, forget, and RQ's own `rq info` through flowhook.rq_config."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import click
import pytest
import requests
from flask.testing import FlaskCliRunner
from redis import Redis
from rq import Queue

from flowhook.dev.commands import _post
from flowhook.dev.redis_server import EmbeddedRedis, free_port
from tests.conftest import ROOT, CallFunction, WorkerPool
from tests.test_e2e import gunicorn

BIN = Path(sys.executable).parent


def developer_command(*command: str, state_file: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run a command as a developer types it in the project's folder: REDIS_URL and PORT unset unless given."""
    environment = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "PORT")}
    environment.update(FLASK_SKIP_DOTENV="1", FLOWHOOK_STATE_FILE=str(state_file), FLOWHOOK_HANDLERS="tests.handlers")
    environment.update(settings)
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def record_make_run(state_file: Path, redis_url: str, pid: int) -> None:
    """Write the state file as a running `make run` does."""
    record = {"pid": pid, "redis_url": redis_url, "host": "127.0.0.1", "port": 1}
    state_file.write_text(json.dumps(record))


@pytest.fixture
def make_run_stand_in() -> Iterator[int]:
    """A live process whose command line names `make run`'s module, standing in for one serving the test Redis."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "dev.run"])
    yield process.pid
    process.kill()
    process.wait()


def assert_one_line_error(finished: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 1, finished.stderr
    for needle in needles:
        assert needle in finished.stderr


def test_handlers_lists_every_handler_with_its_effective_settings(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["handlers"])
    assert result.exit_code == 0
    assert "inline_overrun  /webservice/inline_overrun" in result.output
    block = result.output.split("inline_overrun  /webservice/inline_overrun")[1].split("/webservice/")[0]
    assert "runs_in      web" in block
    assert "budget       0.5 s" in block
    assert "poll_wait    1 s" in block
    assert "input        case, gate" in block
    assert "retries      2, after [1] s" in result.output
    assert "namespace    tp_status, _job, _error, _progress, _next" in result.output


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


def test_new_prints_commands_that_run_as_printed(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["new", "greet", "--handlers-dir", str(tmp_path / "h"), "--tests-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    commands = [line.split() for line in result.output.splitlines() if line.startswith("  ")]
    call_line = next(" ".join(command) for command in commands if command[0].endswith("/flask"))
    test_line = next(" ".join(command) for command in commands if command[0].endswith("/pytest"))
    flask, *arguments = call_line.split()
    assert flask.endswith("/flask")
    assert (Path.cwd() / flask).is_file()  # typed in the project's folder, the path holds
    assert arguments == ["--app", "app", "call", "greet", "--var", "name=Ada"]
    assert (Path.cwd() / test_line.split()[1]).samefile(tmp_path / "test_handler_greet.py")


@pytest.mark.slow  # a subprocess per command
@pytest.mark.workers  # starts a subprocess
@pytest.mark.parametrize(
    "command",
    [
        ("flask", "--app", "app", "forget", "conv-1"),
        ("flask", "--app", "app", "jobs"),
        ("flask", "--app", "app", "call", "quick"),
        ("rq", "info", "-c", "flowhook.rq_config"),
    ],
)
def test_without_make_run_or_redis_url_a_command_says_so_in_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    finished = developer_command(*command, state_file=tmp_path / "run.json")
    assert_one_line_error(finished, "no Flowhook is running here", "make run")


@pytest.mark.workers  # starts a subprocess
def test_a_state_file_left_by_a_dead_make_run_is_not_a_service(tmp_path: Path, redis_url: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record_make_run(tmp_path / "run.json", redis_url, dead.pid)
    finished = developer_command("flask", "--app", "app", "forget", "conv-1", state_file=tmp_path / "run.json")
    assert_one_line_error(finished, "no Flowhook is running here")
    # Its process number now belongs to another program (here: this test's own process).
    record_make_run(tmp_path / "run.json", redis_url, os.getpid())
    finished = developer_command("flask", "--app", "app", "forget", "conv-1", state_file=tmp_path / "run.json")
    assert_one_line_error(finished, "no Flowhook is running here")


@pytest.mark.workers  # starts a subprocess
def test_forget_without_a_reachable_redis_is_one_line(tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    finished = developer_command(
        "flask", "--app", "app", "forget", "conv-1", state_file=tmp_path / "run.json", REDIS_URL=down
    )
    assert_one_line_error(finished, "cannot reach Redis at " + down)


@pytest.mark.workers  # starts a subprocess
def test_forget_refuses_a_redis_that_is_not_the_services(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "other", appendonly=False) as other, Redis.from_url(other.url) as client:
        client.set("someone-elses", "data")
        finished = developer_command(
            "flask", "--app", "app", "forget", "conv-1", state_file=tmp_path / "run.json", REDIS_URL=other.url
        )
        assert_one_line_error(finished, "not Flowhook's", "nothing done")
        assert "deleted" not in finished.stdout
        assert client.dbsize() == 1


@pytest.mark.workers  # starts a subprocess
def test_forget_acts_on_the_redis_of_the_running_make_run(
    call: CallFunction, instance: str, redis: Redis, redis_url: str, tmp_path: Path, make_run_stand_in: int
) -> None:
    assert call("kept", {})["kept_status"] == "done"
    job_id = call("kept", {})["key"]  # the job's id is its idempotency key
    assert redis.exists(f"rq:job:{job_id}")
    record_make_run(tmp_path / "run.json", redis_url, make_run_stand_in)
    finished = developer_command("flask", "--app", "app", "forget", instance, state_file=tmp_path / "run.json")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith(f"deleted 2 jobs and 0 rate-limit counters of {instance}")
    assert not redis.exists(f"rq:job:{job_id}")


@pytest.mark.workers  # starts a subprocess
def test_jobs_and_rq_info_show_failed_jobs_without_their_variables(
    call: CallFunction, redis: Redis, redis_url: str, test_workers: WorkerPool, tmp_path: Path, make_run_stand_in: int
) -> None:
    assert call("boom", {"email": "ada@example.org"})["boom_status"] == "failed"
    # The registry is ordered by expiry: its last entry is this call's job.
    failed = Queue(f"{test_workers.queue}.boom", connection=redis).failed_job_registry.get_job_ids()
    assert failed
    record_make_run(tmp_path / "run.json", redis_url, make_run_stand_in)
    jobs = developer_command("flask", "--app", "app", "jobs", "--limit", "1000", state_file=tmp_path / "run.json")
    assert jobs.returncode == 0, jobs.stderr
    listed = jobs.stdout.split(test_workers.queue, 1)[1]
    assert f"{failed[-1]}  boom" in listed
    # The call's trace id (a request id here: the call sent no X-B3-TraceId) leads to its log lines.
    assert re.search(rf"{failed[-1]}  boom  enqueued \d+ s ago  trace=[0-9a-f]{{16}}  ", listed)
    assert "ada@example.org" not in jobs.stdout
    info = developer_command("rq", "info", "-c", "flowhook.rq_config", state_file=tmp_path / "run.json")
    assert info.returncode == 0, info.stderr
    assert test_workers.queue in info.stdout
    assert "failed" in info.stdout


@pytest.mark.workers  # starts a subprocess
def test_the_commands_read_env_as_make_run_does(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FLOWHOOK_HANDLERS=tests.handlers\n")
    environment = {key: value for key, value in os.environ.items() if key != "FLOWHOOK_HANDLERS"}
    environment.update(PYTHONPATH=str(ROOT), FLOWHOOK_STATE_FILE=str(tmp_path / "run.json"))
    listed = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "handlers"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "kept  /webservice/kept" in listed.stdout


GREET = """from flowhook import Call

SETTINGS = {"runs_in": "web"}


def handle(call: Call) -> dict[str, str]:
    return {"greeting": f"Hello {call.variables.get('name', '')}"}
"""
LATER = """SETTINGS = {"budget": 0.2}


def handle(call):
    return {}
"""


@pytest.mark.e2e  # gunicorn serving the last good version, as `make run` does after a broken edit
def test_the_commands_work_past_broken_handler_modules(redis_url: str, tmp_path: Path) -> None:
    package = f"team_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "greet.py").write_text(GREET)
    (folder / "later.py").write_text(LATER)
    settings = {
        "REDIS_URL": redis_url,
        "FLOWHOOK_HANDLERS": package,
        "FLOWHOOK_QUEUE": f"cli-{uuid.uuid4().hex[:8]}",  # served by no worker: the job stays
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
    }
    with gunicorn({**os.environ, **settings}, tmp_path / "web.log") as url:
        body = {"process_instance_id": "conv-broken", "variables": {}}
        pending = requests.post(f"{url}/webservice/later", json=body, timeout=10).json()["data"]["variables"]
        assert pending["later_status"] == "pending"
        # Then three kinds of broken module: a syntax error, an import that raises, bad SETTINGS.
        (folder / "later.py").write_text(LATER + "\ndef broken(:\n")
        shutil.copy(ROOT / "tests" / "broken" / "import_error" / "crm.py", folder)
        shutil.copy(ROOT / "tests" / "broken" / "bad_settings" / "slow.py", folder)

        def command(*arguments: str) -> subprocess.CompletedProcess[str]:
            finished = developer_command(
                "flask", "--app", "app", *arguments, state_file=tmp_path / "run.json", **settings
            )
            assert "Traceback" not in finished.stdout + finished.stderr
            return finished

        shown = command("--help")
        assert shown.returncode == 0, shown.stderr
        for name in ("call", "forget", "handlers", "jobs", "new"):
            assert re.search(rf"^  {name} ", shown.stdout, flags=re.MULTILINE), shown.stdout

        listed = command("handlers")
        assert listed.returncode == 1  # the service would not start
        assert "greet  /webservice/greet" in listed.stdout
        assert re.search(r"later  broken.*\n.*SyntaxError.*later\.py", listed.stdout)
        assert re.search(r"crm  broken.*\n.*RuntimeError: the CRM client is not configured", listed.stdout)
        assert re.search(r"slow  broken.*\n.*invalid SETTINGS: budget", listed.stdout)

        called = command("call", "greet", "--var", "name=Ada", "--url", url)
        assert called.returncode == 0, called.stderr
        assert '"greeting": "Hello Ada"' in called.stdout
        refused = command("call", "later", "--url", url)
        assert_one_line_error(refused, "handler later is broken", "SyntaxError")

        jobs = command("jobs")
        assert jobs.returncode == 0, jobs.stderr
        assert f"{pending['later_job']}  later" in jobs.stdout
        # The broken module's job was started while it served: forget finds it all the same.
        forgotten = command("forget", "conv-broken")
        assert forgotten.returncode == 0, forgotten.stderr
        assert forgotten.stdout.startswith("deleted 1 job and")

        created = command("new", "hello", "--tests-dir", str(tmp_path / "tests"))
        assert created.returncode == 0, created.stderr
        assert (folder / "hello.py").exists()


@pytest.mark.slow  # waits out budgets for seconds
def test_a_poll_waits_for_a_service_that_is_restarting() -> None:
    """`make run` reloads on edit: the service is away for a few seconds, and `call` polls on."""
    port = free_port()
    answer = {"data": {"variables": {"echo_status": "done"}}}

    class Restarted(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def serve_later() -> None:
        time.sleep(1.5)  # down for a moment, as while web and workers restart
        server = HTTPServer(("127.0.0.1", port), Restarted)
        server.handle_request()
        server.server_close()

    threading.Thread(target=serve_later, daemon=True).start()
    assert _post(f"http://127.0.0.1:{port}/webservice/echo", {}, {}, patience=10) == answer["data"]["variables"]
    with pytest.raises(click.ClickException, match="nothing answers"):
        _post(f"http://127.0.0.1:{free_port()}/webservice/echo", {}, {})  # a first call does not wait
