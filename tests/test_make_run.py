"""`make run` as a newcomer meets it: found by the developer commands, reloaded on edit, safe by default."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests

from flowhook import defaults
from flowhook.dev.redis_server import free_port
from tests.conftest import ROOT
from tests.test_cli import developer_command as typed_command
from tests.test_e2e import Service, make_run_command, make_run_environment, running_service, wait_for_log
from tests.waiting import Call, poll_until_over, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "a-token-of-twenty-chars"


def developer_command(service: Service, *command: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """A command typed in the project's folder while `service` runs, on the handlers it serves."""
    handlers = os.environ.get("FLOWHOOK_HANDLERS", defaults.HANDLERS_PACKAGE)
    return typed_command(*command, state_file=service.state_file, **{"FLOWHOOK_HANDLERS": handlers, **settings})


def test_the_commands_find_make_run_which_removes_its_record_when_it_stops(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        record = json.loads(service.state_file.read_text())
        assert record["pid"] == service.process.pid
        assert f"http://127.0.0.1:{record['port']}" == service.url

        called = developer_command(service, "flask", "--app", "app", "call", "sleep", "--var", "seconds=2")
        assert called.returncode == 0, called.stderr  # on make run's port, without --url
        assert '"slept": "2"' in called.stdout
        job_id = re.search(r"pending  job ([0-9a-f]{32})", called.stdout)
        assert job_id is not None
        listed = developer_command(service, "flask", "--app", "app", "handlers")
        assert f"sleep  {service.url}/webservice/sleep" in listed.stdout
        info = developer_command(service, "rq", "info", "-c", "flowhook.rq_config")
        assert info.returncode == 0, info.stderr
        assert "flowhook" in info.stdout
        assert "1 workers" in info.stdout

        # The poll answered done names its job, and a call without LoyJoy's trace id has an id.
        wait_for_log(service.log, f"status=done job={job_id.group(1)} trace=")
        log = service.log.read_text()
        assert re.search(rf"status=pending job={job_id.group(1)} trace=[0-9a-f]{{16}}\n", log)
        assert "MonkeyPatchWarning" not in log

        service.process.send_signal(signal.SIGINT)
        assert service.process.wait(timeout=30) == 0
    assert not service.state_file.exists()
    finished = developer_command(service, "flask", "--app", "app", "forget", "e2e-1")
    assert finished.returncode == 1
    assert "no Flowhook is running here" in finished.stderr


def test_call_presents_a_token(tmp_path: Path) -> None:
    with running_service(tmp_path, FLOWHOOK_TOKENS=TOKEN) as service:
        refused = developer_command(service, "flask", "--app", "app", "call", "echo")
        assert refused.returncode == 1
        assert "answered 401" in refused.stderr
        assert "--token" in refused.stderr
        for arguments, settings in (
            (["--token", TOKEN], {}),
            ([], {"FLOWHOOK_CALL_TOKEN": TOKEN}),
            (["--url", f"{service.url}/?token={TOKEN}"], {}),
        ):
            answered = developer_command(service, "flask", "--app", "app", "call", "echo", *arguments, **settings)
            assert answered.returncode == 0, (arguments, answered.stderr)
            assert '"echo_status": "done"' in answered.stdout
            assert TOKEN not in answered.stdout + answered.stderr


def write_handler(package: Path, version: str, field: str) -> None:
    """The team's handler at ``version``: it reads ``field``, runs in a worker and says its version."""
    (package / "greet.py").write_text(
        "from marshmallow import Schema, fields\n\n\n"
        f"class Input(Schema):\n    {field} = fields.String(required=True)\n\n\n"
        f"def handle(call):\n    return {{'version': '{version}', 'hello': call.variables['{field}']}}\n"
    )


def team_handlers(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A team's handlers package with `greet` at version 1, and the settings that serve it."""
    code = tmp_path / "code"
    package = code / "team_handlers"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    write_handler(package, "1", "name")
    # One web process: once it has answered, every process has loaded the code, and a process that
    # starts later (loading the broken code) cannot be what the test sees.
    return package, {"FLOWHOOK_HANDLERS": "team_handlers", "PYTHONPATH": f"{ROOT}:{code}", "WEB_CONCURRENCY": "1"}


def test_an_edit_reloads_web_and_workers_and_a_broken_one_keeps_the_last_good_version(
    tmp_path: Path,
) -> None:
    package, team = team_handlers(tmp_path)
    with running_service(tmp_path, **team) as service:
        assert service.call("greet", {"name": "Ada"})["version"] == "1"

        (package / "greet.py").write_text((package / "greet.py").read_text() + "\ndef broken(:\n")
        wait_for_log(service.log, "not reloaded, the last good version keeps serving")
        assert "greet.py" in service.log.read_text().split("changed; checking the code")[-1]
        assert [service.call("greet", {"name": "Ada"})["version"] for _ in range(4)] == ["1"] * 4

        write_handler(package, "2", "nickname")  # a new schema (checked by the web) and a new result
        wait_for_log(service.log, "reloading web and workers")
        wait_until(
            lambda: service.call("greet", {"nickname": "Ada"})["greet_status"] == "done",
            30,
            "the new schema was not served",
        )
        answers = [service.call("greet", {"nickname": "Ada"}) for _ in range(6)]
        assert [(a["greet_status"], a.get("version")) for a in answers] == [("done", "2")] * 6
        assert service.call("greet", {"name": "Ada"})["greet_status"] == "invalid"  # the web has the new schema
        assert service.process.poll() is None


def test_a_part_that_restarts_into_broken_code_stops_the_stack_until_the_fix_not_make_run(tmp_path: Path) -> None:
    package, team = team_handlers(tmp_path)
    with running_service(tmp_path, **team) as service:
        assert service.call("greet", {"name": "Ada"})["version"] == "1"
        (package / "greet.py").write_text("def handle(call) return\n")
        wait_for_log(service.log, "not reloaded, the last good version keeps serving")

        rq_worker = next(
            process
            for process in psutil.Process(service.process.pid).children(recursive=True)
            if process.cmdline()[1:] == ["-m", "workers"]
        )
        rq_worker.kill()  # its respawn imports the broken handler and exits: the stack stops
        wait_for_log(service.log, "the service stopped")
        assert service.process.poll() is None  # make run waits for the fix

        write_handler(package, "2", "name")
        wait_for_log(service.log, "restarting web and workers")
        assert call_when_up(service, "greet", {"name": "Ada"})["version"] == "2"


class Conversations:
    """Flows calling a handler one after another, each on a connection of its own, as LoyJoy's do.

    Each flow polls while pending; what it ends with is kept, and so is every call that was not
    answered 200 (a refused connection, a reset, an error status).
    """

    def __init__(self, url: str, handler: str, variables: dict[str, str], headers: dict[str, str]) -> None:
        self.url, self.handler, self.variables, self.headers = url, handler, variables, headers
        self.ended: list[dict[str, str]] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def call(self, instance: str, variables: dict[str, str]) -> dict[str, str]:
        response = requests.post(
            f"{self.url}/webservice/{self.handler}",
            json={"process_instance_id": instance, "params": {}, "variables": variables},
            headers=self.headers,
            timeout=20,
        )
        if response.status_code != 200:
            raise requests.HTTPError(f"{response.status_code} {response.text[:200]}")
        answer: dict[str, str] = response.json()["data"]["variables"]
        return answer

    def new_flow(self) -> Call:
        """The calls of one new conversation."""
        instance = f"flow-{uuid.uuid4().hex}"
        return lambda _, variables: self.call(instance, variables)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.ended.append(poll_until_over(self.new_flow(), self.handler, self.variables))
            except requests.RequestException as error:
                self.failures.append(f"{type(error).__name__}: {error}")

    def until(self, predicate: Callable[[dict[str, str]], bool], then: int = 10) -> None:
        """Wait for a flow to end as ``predicate`` says, and for ``then`` flows more."""
        reached = wait_until(
            lambda: next((i + 1 for i, answer in enumerate(self.ended) if predicate(answer)), None),
            60,
            lambda: f"no flow ended as expected; last: {self.ended[-3:]}, failures: {self.failures[:3]}",
            interval=0.1,
        )
        wait_until(lambda: len(self.ended) >= reached + then, 30, "the flows stopped", interval=0.1)


@contextmanager
def conversations(
    service: Service, handler: str, variables: dict[str, str], headers: dict[str, str] | None = None
) -> Iterator[Conversations]:
    """Flows calling ``handler`` on ``service`` in a thread until the block ends."""
    flows = Conversations(service.url, handler, variables, headers or {})
    thread = threading.Thread(target=flows.run, daemon=True)
    thread.start()
    try:
        yield flows
    finally:
        flows.stopping.set()
        thread.join(timeout=30)


def test_a_handler_saved_while_calls_arrive_refuses_none_and_running_jobs_finish(tmp_path: Path) -> None:
    package, team = team_handlers(tmp_path)
    (package / "slow.py").write_text(
        "import time\n\n\ndef handle(call):\n    time.sleep(3)\n    return {'version': '1'}\n"
    )
    with running_service(tmp_path, **team) as service:
        slow = service.call("slow", {}, instance="slow-1")
        assert slow["slow_status"] == "pending"
        with conversations(service, "greet", {"name": "Ada"}) as flows:
            flows.until(lambda answer: answer.get("version") == "1")
            write_handler(package, "2", "name")
            wait_for_log(service.log, "reloading web and workers")
            flows.until(lambda answer: answer.get("version") == "2")
        assert flows.failures == []  # not one call refused, reset or answered in error
        assert {answer["greet_status"] for answer in flows.ended} == {"done"}
        assert flows.ended[-1]["version"] == "2"
        # The job running at the reload finished on its version, not interrupted; the worker then
        # took the new code.
        ended = poll_until_over(lambda handler, variables: service.call(handler, variables, "slow-1"), "slow", slow)
        assert (ended["slow_status"], ended.get("version")) == ("done", "1")
        assert "Hang up: Master" in service.log.read_text()  # gunicorn's reload, its master stayed


def test_env_saved_while_calls_arrive_is_read_by_web_and_workers_refusing_none(tmp_path: Path) -> None:
    package, team = team_handlers(tmp_path)
    (package / "greet.py").write_text(
        "import os\n\n\ndef handle(call):\n    return {'greeting': os.environ.get('GREETING', '')}\n"
    )
    env_file = tmp_path / ".env"
    env_file.write_text("GREETING=hello\n")
    with running_service(tmp_path, **team) as service:
        assert service.call("greet", {})["greeting"] == "hello"
        presenting = {"Authorization": f"Bearer {TOKEN}"}  # accepted before tokens are set, and after
        with conversations(service, "greet", {}, presenting) as flows:
            flows.until(lambda answer: answer.get("greeting") == "hello")
            env_file.write_text(f"GREETING=bonjour\nFLOWHOOK_TOKENS={TOKEN}\n")
            wait_for_log(service.log, ".env changed")
            flows.until(lambda answer: answer.get("greeting") == "bonjour")
        assert flows.failures == []
        assert {answer["greet_status"] for answer in flows.ended} == {"done"}

        # The web read it too, once its new processes serve (the old ones finish their calls meanwhile):
        # a call without the token is now refused.
        def refused() -> bool:
            answer = requests.post(
                f"{service.url}/webservice/greet", json={"process_instance_id": "e2e-2", "variables": {}}, timeout=20
            )
            return answer.status_code == 401

        wait_until(refused, 20, "the web processes did not read .env's token", interval=0.2)


def call_when_up(service: Service, handler: str, variables: dict[str, str], timeout: float = 20) -> dict[str, str]:
    """Call once the restarted web service answers."""
    return wait_until(
        lambda: service.call(handler, variables),
        timeout,
        "the web service did not come back",
        interval=0.1,
        ignoring=(requests.ConnectionError,),
    )


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            make_run_command(tmp_path),
            cwd=ROOT,
            env=make_run_environment(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert finished.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stderr
    assert f"PORT={port + 1} make run" in finished.stderr
    assert "serving" not in finished.stdout
    assert not (tmp_path / "redis").exists()  # no Redis was started
    assert not (tmp_path / "run.json").exists()


def test_a_second_make_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        second = subprocess.run(
            make_run_command(tmp_path),
            cwd=ROOT,
            env=make_run_environment(tmp_path, free_port()),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert second.returncode == 2
        assert f"already running here (pid {service.process.pid}, {service.url})" in second.stderr
        assert json.loads(service.state_file.read_text())["pid"] == service.process.pid


def test_make_run_reads_env_listens_on_loopback_and_names_a_misspelled_setting(tmp_path: Path) -> None:
    # The environment wins over .env (PORT), .env fills in what it lacks (the handlers).
    (tmp_path / ".env").write_text("FLOWHOOK_HANDLERS=tests.handlers\nPORT=1\nFLOWHOOK_BUDEGT=3\n")
    with running_service(tmp_path) as service:
        assert service.call("kept", {})["kept_status"] == "done"  # a handler of tests.handlers
        assert "FLOWHOOK_BUDEGT is not a Flowhook setting and is ignored; did you mean FLOWHOOK_BUDGET?" in (
            service.log.read_text()
        )
        port = int(service.url.rsplit(":", 1)[1])
        listening = {
            connection.laddr.ip
            for connection in psutil.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
        banner = next(line for line in service.log.read_text().splitlines() if line.startswith("flowhook: serving"))
        assert "kept" in banner
        assert f"at {service.url}/webservice/<handler>" in banner
