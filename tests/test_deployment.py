"""docker-compose.yml and the Dockerfile, proven without a Docker engine: the compose file follows the
Compose Specification, and each service's exact command runs here with the compose environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from ruamel.yaml import YAML

from flowhook.checks import redis_warnings
from flowhook.redis_server import free_port, redis_server_binary
from tests.conftest import ROOT
from tests.test_e2e import stop_tree, wait_for_log

pytestmark = pytest.mark.e2e

COMPOSE = ROOT / "docker-compose.yml"
BIN = str(Path(sys.executable).parent)


def services() -> dict[str, Any]:
    compose: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return dict(compose["services"])


def env_example() -> dict[str, str]:
    """The settings a user gets with `cp .env.example .env`."""
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.lstrip().startswith("#")}


def test_the_compose_file_follows_the_compose_specification() -> None:
    command = [f"{BIN}/check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_compose_runs_redis_web_and_scalable_workers_safely() -> None:
    redis, web, worker = (services()[name] for name in ("redis", "web", "worker"))
    assert redis["image"].startswith("redis:")
    assert " ".join(redis["command"]).endswith("--appendonly yes --appendfsync everysec --maxmemory-policy noeviction")
    assert redis["volumes"] == ["redis-data:/data"]
    for service in (web, worker):
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert service["restart"] == "unless-stopped"
        assert "container_name" not in service  # `--scale worker=N` needs containers without fixed names
        assert service["healthcheck"]["test"][0] == "CMD"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert worker["command"] == ["python", "-m", "workers"]


def test_every_setting_is_in_env_example() -> None:
    documented = set(env_example())
    readme = (ROOT / "README.md").read_text()
    for name in documented - {"FLOWHOOK_PUBLISH"}:
        assert f"`{name}`" in readme, f"{name} is in .env.example but not in the README"
    from flowhook.settings import _SettingsSchema

    settings = {field.data_key for field in _SettingsSchema().fields.values()}
    assert settings - {"REDIS_URL", "FLOWHOOK_SENTINELS", "FLOWHOOK_SENTINEL_MASTER"} <= documented


def test_the_dockerfile_runs_the_compose_web_command_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    assert dockerfile[1].startswith("FROM python:3.11-slim")
    instructions = [line for line in dockerfile if line and not line.startswith((" ", "#"))]
    assert "RUN pip install -r requirements.txt" in instructions  # runtime dependencies only
    assert instructions.index("COPY requirements.txt ./") < instructions.index("COPY flowhook/ flowhook/")
    assert "USER flowhook" in instructions
    for copied in (line.split()[1] for line in instructions if line.startswith("COPY ")):
        if not copied.startswith("--"):
            assert (ROOT / copied).exists(), copied
    command = next(line for line in instructions if line.startswith("CMD "))
    assert command == 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]'
    assert services()["web"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[Redis]:
    """redis-server started with the compose file's own command line (the image's binary here)."""
    command = services()["redis"]["command"]
    assert command[0] == "redis-server"
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), *command[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except Exception:
            assert time.monotonic() < deadline, "redis-server did not start with the compose options"
            time.sleep(0.05)
    yield client
    process.terminate()
    process.wait(10)


def test_redis_accepts_the_compose_options(compose_redis: Redis) -> None:
    config = {}
    for name in ("appendonly", "appendfsync", "maxmemory-policy"):
        config.update(compose_redis.config_get(name))
    assert config == {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}
    assert redis_warnings(compose_redis) == []


def compose_environment(service: str, redis: Redis, port: int) -> dict[str, str]:
    """What compose gives the service's container: .env (from .env.example), then `environment`."""
    environment = {**os.environ, **env_example(), **services()[service]["environment"]}
    environment["REDIS_URL"] = environment["REDIS_URL"].replace(
        "redis:6379", f"127.0.0.1:{redis.connection_pool.connection_kwargs['port']}"
    )
    environment["PORT"] = str(port)
    environment["PATH"] = f"{BIN}:{environment['PATH']}"
    return environment


def test_the_web_and_worker_commands_serve_with_the_compose_environment(compose_redis: Redis, tmp_path: Path) -> None:
    port = free_port()
    parts = {}
    for name in ("web", "worker"):
        log = (tmp_path / f"{name}.log").open("wb")
        parts[name] = subprocess.Popen(
            services()[name]["command"],
            cwd=ROOT,
            env=compose_environment(name, compose_redis, port),
            stdout=log,
            stderr=log,
        )
    try:
        wait_for_log(tmp_path / "web.log", "Listening at")
        wait_for_log(tmp_path / "worker.log", "Listening on flowhook")
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/readyz", timeout=5).json() == {
            "ready": True,
            "redis": "ok",
            "workers": 1,
            "missing": [],
        }
        body = {"process_instance_id": "compose-1", "variables": {"firstname": "Ada"}}
        answer = requests.post(f"{url}/webservice/echo", json=body, timeout=10).json()["data"]["variables"]
        assert answer == {"firstname": "Ada", "echo_status": "done", "echo_job": "", "echo_error": ""}

        for name in ("web", "worker"):
            healthcheck = services()[name]["healthcheck"]["test"][1:]
            environment = compose_environment(name, compose_redis, port)
            finished = subprocess.run(
                healthcheck, cwd=ROOT, env=environment, capture_output=True, timeout=30, check=False
            )
            assert finished.returncode == 0, (name, finished.stdout, finished.stderr)
    finally:
        for process in parts.values():
            stop_tree(process)
    logs = (tmp_path / "web.log").read_text() + (tmp_path / "worker.log").read_text()
    assert "maxmemory-policy" not in logs  # the compose Redis draws no warning
    assert "keeps nothing on disk" not in logs


def test_the_container_listens_on_every_interface_and_the_local_run_on_loopback() -> None:
    assert "ENV FLOWHOOK_HOST=0.0.0.0" in (ROOT / "Dockerfile").read_text().splitlines()
    assert services()["web"]["environment"]["FLOWHOOK_HOST"] == "0.0.0.0"
    assert env_example()["FLOWHOOK_HOST"] == "127.0.0.1"


def test_local_settings_are_never_committed() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
