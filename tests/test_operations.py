"""Operating Flowhook: /metrics summed over gunicorn's processes and the workers, JSON logs, one trace id."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from app import create_app
from flowhook import keys, logs
from flowhook.contract import INTERRUPTED
from flowhook.dev.redis_server import free_port
from flowhook.settings import Settings
from tests.conftest import ROOT, StartWorkers, WorkerPool, caller
from tests.test_e2e import gunicorn, stop_tree, wait_for_log
from tests.waiting import poll_until_over, wait_until

# A value no metric and no log line may carry (personal data in a call's variables).
SECRET = "ada.secret@example.org"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics text, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def jobs_ended(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    """How many jobs the figures count as ended, however they ended."""
    return sum(value for (name, _), value in found.items() if name == "flowhook_jobs_total")


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def calls_counted(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> Counter[tuple[str, str, str]]:
    """flowhook_calls_total's samples, by handler, path and outcome."""
    counted: Counter[tuple[str, str, str]] = Counter()
    for (name, labels), count in found.items():
        if name == "flowhook_calls_total" and count:
            label = dict(labels)
            counted[label["handler"], label["path"], label["outcome"]] = int(count)
    return counted


class Web:
    """gunicorn with two processes, JSON logs, in front of its own workers."""

    def __init__(self, url: str, log: Path, metrics_dir: Path) -> None:
        self.url = url
        self.log = log
        self.metrics_dir = metrics_dir

    def call(self, handler: str, instance: str, variables: dict[str, str], trace: str | None = None) -> dict[str, str]:
        headers = {"X-B3-TraceId": trace} if trace else {}
        body = {"process_instance_id": instance, "variables": variables}
        response = requests.post(f"{self.url}/webservice/{handler}", json=body, headers=headers, timeout=20)
        assert response.status_code == 200, response.text
        answer: dict[str, str] = response.json()["data"]["variables"]
        return answer

    def metrics(self) -> str:
        response = requests.get(f"{self.url}/metrics", timeout=10)
        assert response.status_code == 200
        return response.text


@pytest.fixture
def observed_stack(start_workers: StartWorkers, tmp_path: Path) -> Iterator[tuple[Web, WorkerPool]]:
    """Two workers (a short heartbeat, so a killed worker's job is reaped soon) and gunicorn, all JSON."""
    workers = start_workers(2, FLOWHOOK_LOG_FORMAT="json", FLOWHOOK_HEARTBEAT_TTL="4")
    port = free_port()
    log = tmp_path / "web.log"
    metrics_dir = tmp_path / "metrics"
    environment = {
        **workers.environment,
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_log(log, "Booting worker", times=2)
        yield Web(f"http://127.0.0.1:{port}", log, metrics_dir), workers
    finally:
        stop_tree(process)


def poll_until_resolved(
    web: Web,
    handler: str,
    instance: str,
    variables: dict[str, str],
    answer: dict[str, str],
    tally: Counter[tuple[str, str, str]],
    timeout: float = 30.0,
) -> dict[str, str]:
    """Poll a pending job until it is done or failed, tallying each poll's answer."""

    def count(polled: dict[str, str]) -> None:
        tally[handler, "poll", polled[f"{handler}_status"]] += 1

    return poll_until_over(
        lambda name, sent: web.call(name, instance, sent), handler, variables, answer, timeout=timeout, each=count
    )


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The lines of a log that are JSON objects (all of them, with FLOWHOOK_LOG_FORMAT=json)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.mark.e2e  # gunicorn with two processes
def test_metrics_count_a_known_mix_of_calls_over_both_web_processes_and_the_workers(
    observed_stack: tuple[Web, WorkerPool],
) -> None:
    web, workers = observed_stack
    tally: Counter[tuple[str, str, str]] = Counter()
    conversation = f"ops-{uuid.uuid4().hex}"
    # done inline: three calls, then twelve at once, so that both gunicorn processes take some
    for _ in range(3):
        assert web.call("quick", conversation, {"email": SECRET})["quick_status"] == "done"
        tally["quick", "inline", "done"] += 1
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda n: web.call("quick", f"{conversation}-{n}", {"email": SECRET}), range(12)))
    assert all(answer["quick_status"] == "done" for answer in answers)
    tally["quick", "inline", "done"] += 12
    # invalid, twice: nothing runs
    for _ in range(2):
        assert web.call("typed", conversation, {"email": SECRET, "count": "many"})["tp_status"] == "invalid"
        tally["typed", "none", "invalid"] += 1
    # failed in a worker: the handler raised
    assert web.call("boom", conversation, {"email": SECRET})["boom_status"] == "failed"
    tally["boom", "worker", "failed"] += 1
    # pending, then polled to done; the identical call meanwhile attaches to the same job
    trace = uuid.uuid4().hex
    sleepy = {"seconds": "1.5", "email": SECRET}
    first = web.call("sleepy", conversation, sleepy, trace=trace)
    assert first["sleepy_status"] == "pending"
    tally["sleepy", "worker", "pending"] += 1
    again = web.call("sleepy", conversation, sleepy)
    assert again["sleepy_job"] in (first["sleepy_job"], "")  # the same job, or its result
    tally["sleepy", "attach", again["sleepy_status"]] += 1
    assert poll_until_resolved(web, "sleepy", conversation, sleepy, first, tally)["sleepy_status"] == "done"
    # past its job timeout (2 s): failed, counted as timed out
    overrun = {"seconds": "5"}
    answer = web.call("sleepy", conversation, overrun)
    tally["sleepy", "worker", "pending"] += 1
    assert poll_until_resolved(web, "sleepy", conversation, overrun, answer, tally)["sleepy_status"] == "failed"
    # a worker killed mid-job: interrupted. A pool worker writes its jobs' ends once a second, and
    # one killed loses those of its last second: the killing waits for the earlier ends.
    wait_until(lambda: jobs_ended(samples(web.metrics())) == 3, 5, "the three jobs' ends were not written")
    answer = web.call("dying", conversation, {})
    tally["dying", "worker", "pending"] += 1
    answer = poll_until_resolved(web, "dying", conversation, {}, answer, tally)
    assert answer["dying_error"] == INTERRUPTED

    # Each web process writes the calls it counted every second, and each pool worker its jobs'
    # ends: wait for the last ones (4 jobs ended: boom, sleepy twice, dying).
    wait_until(
        lambda: calls_counted(found := samples(web.metrics())) == tally and jobs_ended(found) == 4,
        5,
        lambda: (
            f"calls counted: {calls_counted(samples(web.metrics()))}, made: {tally}; jobs ended: "
            f"{jobs_ended(samples(web.metrics()))}, 4 expected"
        ),
    )
    for _ in range(4):  # whichever process answers the scrape, it reports every process's counts
        found = samples(web.metrics())
        for (handler, path, outcome), count in tally.items():
            assert value(found, "flowhook_calls_total", handler=handler, path=path, outcome=outcome) == count
        assert sum(v for (name, _), v in found.items() if name == "flowhook_calls_total") == sum(tally.values())
        assert value(found, "flowhook_call_duration_seconds_count", handler="quick", outcome="done") == 15
        assert value(found, "flowhook_jobs_total", handler="boom", ended="failed") == 1
        assert value(found, "flowhook_jobs_total", handler="sleepy", ended="done") == 1
        assert value(found, "flowhook_jobs_total", handler="sleepy", ended="timed_out") == 1
        assert value(found, "flowhook_jobs_total", handler="dying", ended="interrupted") == 1
        assert value(found, "flowhook_job_run_seconds_count", handler="sleepy") == 2
        assert value(found, "flowhook_job_run_seconds_bucket", handler="sleepy", le="1.0") == 0
        assert value(found, "flowhook_job_run_seconds_bucket", handler="sleepy", le="2.5") == 2
        assert value(found, "flowhook_redis_up") == 1
        assert value(found, "flowhook_queue_depth", handler="sleepy") == 0
        live = value(found, "flowhook_workers", handler="sleepy")
        assert live >= 1
        assert value(found, "flowhook_worker_capacity", handler="sleepy") == live * 100
    # Both gunicorn processes counted calls: each wrote files of its own.
    pids = {path.stem.rsplit("_", 1)[-1] for path in web.metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, pids

    text = web.metrics()
    worker_log = workers.log
    assert worker_log is not None
    for output in (text, web.log.read_text(), worker_log.read_text()):
        assert SECRET not in output
        assert conversation not in output

    # One trace id end to end: the web's access line and the worker's line for the job carry it.
    job_id = first["sleepy_job"]
    access = [line for line in json_lines(web.log) if line.get("logger") == "gunicorn.access"]
    assert any(line.get("trace") == trace and line.get("job") == job_id for line in access), access[-5:]
    started = next(line for line in access if line.get("trace") == trace)
    assert started["handler"] == "sleepy"
    assert started["outcome"] == "pending"
    assert started["duration_ms"] > 0
    ended = [line for line in json_lines(worker_log) if line.get("job") == job_id]
    assert ended, "no JSON line of the worker names the job"
    assert all(line["trace"] == trace for line in ended)
    assert {"outcome": "done", "handler": "sleepy"}.items() <= ended[-1].items()


@pytest.fixture
def unserved_app(redis_url: str) -> Flask:
    """The test handlers on a queue of their own that no worker serves: jobs stay queued."""
    return create_app(
        {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "FLOWHOOK_HANDLERS": "tests.handlers",
            "FLOWHOOK_QUEUE": f"idle-{uuid.uuid4().hex[:8]}",
        }
    )


@pytest.mark.slow  # waits out budgets for seconds
def test_queue_depth_and_the_oldest_jobs_age_without_workers(unserved_app: Flask) -> None:
    client = unserved_app.test_client()
    for number in range(3):
        body = {"process_instance_id": f"idle-{number}", "variables": {"seconds": "1"}}
        answer = client.post("/webservice/sleepy", json=body).get_json()["data"]["variables"]
        assert answer["sleepy_status"] == "pending"
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert value(found, "flowhook_queue_depth", handler="sleepy") == 3
    assert value(found, "flowhook_queue_oldest_age_seconds", handler="sleepy") >= 1.0  # three budgets of 0.5 s
    assert value(found, "flowhook_jobs_in_flight", handler="sleepy") == 0
    assert value(found, "flowhook_workers", handler="sleepy") == 0
    assert value(found, "flowhook_worker_capacity", handler="sleepy") == 0
    assert value(found, "flowhook_queue_depth", handler="quick") == 0


def test_metrics_can_be_switched_off_or_put_behind_a_token(redis_url: str) -> None:
    off = create_app({"TESTING": True, "REDIS_URL": redis_url, "FLOWHOOK_METRICS": "false"})
    assert off.test_client().get("/metrics").status_code == 404
    token = "m" * 20
    guarded = create_app({"TESTING": True, "REDIS_URL": redis_url, "FLOWHOOK_METRICS_TOKENS": token}).test_client()
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.slow  # waits out the dead worker's job heartbeat (4 s)
def test_an_app_whose_own_configuration_switches_metrics_off_counts_no_job(
    start_workers: StartWorkers, redis_url: str, redis: Redis
) -> None:
    """The interrupted job the app finds is not counted, though the process environment leaves metrics on."""
    pool = start_workers(1, FLOWHOOK_METRICS="false", FLOWHOOK_HEARTBEAT_TTL="4")
    config = {"REDIS_URL": redis_url, "FLOWHOOK_HANDLERS": "tests.handlers", "FLOWHOOK_QUEUE": pool.queue}
    app = create_app({"TESTING": True, **config, "FLOWHOOK_METRICS": "false"})
    answer = poll_until_over(caller(app.test_client(), f"conv-{uuid.uuid4().hex}"), "dying", {})
    assert answer["dying_error"] == INTERRUPTED
    assert not redis.exists(keys.job_figures(pool.queue))


def test_a_json_line_written_in_a_job_carries_its_trace_handler_and_job_and_no_arguments() -> None:
    stream = io.StringIO()
    logger = logging.getLogger(f"handlers.sleepy.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logs.log_handler(Settings(log_format="json"), stream))
    with logs.job_context("sleepy", "a" * 32, "0123456789abcdef"):
        logger.info("asked the ERP")
    # RQ adds a failed job's arguments to its exception line: not a field a line keeps.
    logger.warning("outside any job", extra={"arguments": [{"email": SECRET}], "queue": "flowhook.sleepy"})
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside == {
        "time": inside["time"],
        "level": "INFO",
        "logger": logger.name,
        "message": "asked the ERP",
        "handler": "sleepy",
        "job": "a" * 32,
        "trace": "0123456789abcdef",
    }
    assert "trace" not in outside
    assert outside["queue"] == "flowhook.sleepy"
    assert SECRET not in stream.getvalue()


def test_a_text_line_written_in_a_job_ends_with_its_trace_id_as_the_access_line_does() -> None:
    stream = io.StringIO()
    logger = logging.getLogger(f"handlers.sleepy.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logs.log_handler(Settings(), stream))
    with logs.job_context("sleepy", "a" * 32, "0123456789abcdef"):
        logger.info("asked the ERP")
        try:
            raise TimeoutError("the ERP")
        except TimeoutError:
            logger.exception("gave up")
    logger.info("outside any job")
    inside, failed, *traceback, outside = stream.getvalue().splitlines()
    assert inside.endswith(f"{logger.name}: asked the ERP trace=0123456789abcdef")
    assert failed.endswith("gave up trace=0123456789abcdef")  # on the line, not after the traceback
    assert traceback[-1] == "TimeoutError: the ERP"
    assert outside.endswith("outside any job")


@pytest.mark.parametrize(
    ("settings", "environment_format", "json_line"),
    [
        (Settings(log_format="json"), "text", True),
        (None, "json", True),
        (Settings(), "json", False),
        (None, None, False),
    ],
)
def test_a_start_up_error_is_one_line_as_text_or_json(
    settings: Settings | None,
    environment_format: str | None,
    json_line: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without settings (reading them failed), FLOWHOOK_LOG_FORMAT alone says which."""
    if environment_format is None:
        monkeypatch.delenv("FLOWHOOK_LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("FLOWHOOK_LOG_FORMAT", environment_format)
    logs.startup_error(settings, "handler module handlers.greet: invalid SETTINGS", source="flowhook worker")
    written = capsys.readouterr().err
    assert written.count("\n") == 1
    if json_line:
        line = json.loads(written)
        assert line == {
            "time": line["time"],
            "level": "ERROR",
            "logger": "flowhook worker",
            "message": "handler module handlers.greet: invalid SETTINGS",
        }
    else:
        assert written == "flowhook worker: handler module handlers.greet: invalid SETTINGS\n"


@pytest.mark.e2e  # gunicorn and a worker
def test_the_web_and_worker_text_lines_of_one_call_carry_its_trace_id(
    start_workers: StartWorkers, tmp_path: Path
) -> None:
    workers = start_workers(1)  # text lines, the default format
    trace = uuid.uuid4().hex[:16]
    with gunicorn(workers.environment, tmp_path / "web.log") as url:
        response = requests.post(
            f"{url}/webservice/kept",
            json={"process_instance_id": f"join-{uuid.uuid4().hex}", "variables": {}},
            headers={"X-B3-TraceId": trace},
            timeout=20,
        )
    answer = response.json()["data"]["variables"]
    assert answer["kept_status"] == "done"
    job_id = answer["key"]  # the job's id is its idempotency key
    access = [line for line in (tmp_path / "web.log").read_text().splitlines() if "POST /webservice/kept" in line]
    assert len(access) == 1
    assert access[0].endswith(f"status=done job={job_id} trace={trace}")
    worker_log = workers.log
    assert worker_log is not None
    ended = wait_until(
        lambda: [line for line in worker_log.read_text().splitlines() if f"job {job_id} (kept)" in line],
        10,
        lambda: f"no line of the worker names job {job_id}:\n{worker_log.read_text()}",
    )
    assert re.search(rf"job {job_id} \(kept\) done in [0-9.]+ s trace={trace}$", ended[-1]), ended


STARTS = {
    "the web service": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
    "make run's code check": [sys.executable, "-m", "dev.stack", "--check"],
}


@pytest.mark.workers  # starts subprocesses
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"FLOWHOOK_HANDLERS": "tests.broken.bad_settings"}, r"bad_settings/slow\.py\): invalid SETTINGS: budget"),
        ({"FLOWHOOK_HANDLERS": "tests.broken.import_error"}, r"import_error\.crm: RuntimeError: the CRM client"),
        ({"FLOWHOOK_BUDGET": "99"}, r"^invalid settings: FLOWHOOK_BUDGET: must be"),
    ],
)
def test_with_json_logs_what_stops_start_up_is_said_in_json_lines_only(
    start: str, broken: dict[str, str], message: str, redis_url: str
) -> None:
    environment = {**os.environ, "REDIS_URL": redis_url, "FLOWHOOK_LOG_FORMAT": "json", "PORT": str(free_port())}
    finished = subprocess.run(
        STARTS[start],
        cwd=ROOT,
        env={**environment, "WEB_CONCURRENCY": "1", **broken},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0
    lines = (finished.stdout + finished.stderr).splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines), lines
    said = [json.loads(line) for line in lines if json.loads(line)["level"] == "ERROR"]
    assert any(re.search(message, line["message"]) for line in said), said


def exported_names(text: str) -> set[str]:
    """The series names a /metrics text can hold, from its TYPE lines (a histogram's three series)."""
    names = set()
    for kind_line in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        name, kind = kind_line
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return names


def test_the_alert_rules_and_the_dashboard_use_only_metrics_that_exist(unserved_app: Flask) -> None:
    exported = exported_names(unserved_app.test_client().get("/metrics").get_data(as_text=True))
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "flowhook.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = set(re.findall(r"flowhook_\w+", rules + "\n".join(queries)))
    assert used, "no Flowhook metric used"
    assert used <= exported, used - exported


@pytest.mark.workers  # starts a subprocess
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_make_runs_json_output_names_each_lines_process() -> None:
    assert json.loads(logs.json_line("worker.1", '{"message": "job done", "trace": "ab"}')) == {
        "process": "worker.1",
        "message": "job done",
        "trace": "ab",
    }
    # A line that is not JSON (a traceback, honcho's own) becomes the message of one.
    assert json.loads(logs.json_line("web", "Traceback (most recent call last):")) == {
        "process": "web",
        "message": "Traceback (most recent call last):",
    }


def test_redis_errors_are_counted_and_a_scrape_says_redis_is_down() -> None:
    # Nothing listens on this port: every command fails to connect.
    app = create_app(
        {"TESTING": True, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "FLOWHOOK_HANDLERS": "tests.handlers"}
    )
    client = app.test_client()
    before = value(
        samples(client.get("/metrics").get_data(as_text=True)), "flowhook_redis_errors_total", kind="connection"
    )
    body = {"process_instance_id": "redis-away", "variables": {"seconds": "1"}}
    answer = client.post("/webservice/sleepy", json=body).get_json()["data"]["variables"]
    assert (answer["sleepy_status"], answer["sleepy_job"]) == ("pending", "")  # the flow's loop calls again
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert value(found, "flowhook_redis_errors_total", kind="connection") > before
    assert value(found, "flowhook_redis_up") == 0
    assert value(found, "flowhook_calls_total", handler="sleepy", path="worker", outcome="pending") >= 1
    assert value(found, "flowhook_pending_redis_away_total", handler="sleepy") >= 1
