"""docker-compose.yml without a container engine: it follows the Compose Specification, configures what
running Flowhook needs, and each service's command and healthcheck run here with the compose environment.

What needs an engine (the image built, the stack up, a worker killed, `--scale`, `down` and `up`, the
image's user and contents) is in `make compose-check` (deploy/compose_check.py)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError
from ruamel.yaml import YAML

from flowhook.checks import redis_warnings
from flowhook.dev.redis_server import free_port, redis_server_binary
from flowhook.registry import discover
from flowhook.settings import Settings
from tests.conftest import ROOT
from tests.test_e2e import stop_tree, wait_for_log
from tests.waiting import wait_until

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


def seconds(duration: str) -> float:
    """A compose duration (`330s`, `1m30s`) in seconds."""
    assert re.fullmatch(r"(\d+(\.\d+)?(h|ms|m|s))+", duration), f"not a compose duration: {duration}"
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", duration))


def test_every_service_is_restarted_when_it_dies_and_has_a_healthcheck() -> None:
    for name, service in services().items():
        # A worker killed by a handler (or the OOM killer) comes back; `make compose-check` kills one.
        assert service["restart"] in {"always", "unless-stopped", "on-failure"}, name
        # Exec form, no shell needed in the image; the end-to-end test below runs each one as it is.
        assert service["healthcheck"]["test"][0] == "CMD", name


def interpolated(value: object, shell: dict[str, str]) -> str:
    """A compose value with ``${NAME:-default}`` filled in from the shell and .env, as compose does."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: shell.get(m[1], m[2]), str(value))


def test_web_and_workers_scale_and_the_proxy_is_published_only_where_flowhook_publish_says() -> None:
    web, worker, proxy = services()["web"], services()["worker"], services()["proxy"]
    # `--scale worker=N` (and a deploy's second web container) needs containers without a fixed
    # name or host port: the proxy is what is published.
    for scaled in (web, worker):
        assert "container_name" not in scaled
        assert "ports" not in scaled
    assert web["environment"]["FLOWHOOK_TRUSTED_PROXIES"] == "1"  # the proxy adds X-Forwarded-For
    (published,) = proxy["ports"]
    # On the host's loopback unless told otherwise, to the port the web service listens on.
    address, host_port, container_port = interpolated(published, env_example()).split(":")
    assert (address, host_port) == ("127.0.0.1", "8000")
    assert container_port == str(web["environment"]["PORT"])
    assert interpolated(published, {"FLOWHOOK_PUBLISH": "0.0.0.0:80"}) == f"0.0.0.0:80:{container_port}"
    assert web["image"] == worker["image"]  # one image: web and workers run the same handlers
    assert "build" in web


def test_a_stopped_service_may_finish_its_work_first() -> None:
    """SIGTERM lets a worker finish its longest job and gunicorn answer its calls in flight."""
    handlers = discover(Settings.from_env({}))
    longest_job = max(handler.settings.job_timeout for handler in handlers.values())
    assert seconds(services()["worker"]["stop_grace_period"]) >= longest_job
    # In a process of its own: gunicorn.conf.py patches the process it runs in with gevent.
    read = "import runpy; print(runpy.run_path('gunicorn.conf.py')['graceful_timeout'])"
    graceful = subprocess.run([sys.executable, "-c", read], cwd=ROOT, capture_output=True, text=True, check=True)
    assert seconds(services()["web"]["stop_grace_period"]) > int(graceful.stdout)


def test_redis_keeps_its_data_in_a_named_volume_and_web_and_workers_find_it() -> None:
    redis = services()["redis"]
    assert redis["volumes"] == ["redis-data:/data"]  # `down` and `up` keep queued jobs (not `down -v`)
    assert "redis-data" in YAML(typ="safe").load(COMPOSE.read_text())["volumes"]
    for name in ("web", "worker"):
        assert services()[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert "redis" in services()[name]["depends_on"]


def test_every_setting_is_in_env_example() -> None:
    documented = set(env_example())
    guide = (ROOT / "docs" / "operations.md").read_text()
    for name in documented - {"FLOWHOOK_PUBLISH"}:
        assert f"`{name}`" in guide, f"{name} is in .env.example but not in docs/operations.md's configuration"
    from flowhook.settings import _SettingsSchema

    settings = {field.data_key for field in _SettingsSchema().fields.values()}
    assert settings - {"REDIS_URL", "FLOWHOOK_SENTINELS", "FLOWHOOK_SENTINEL_MASTER"} <= documented


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
    wait_until(client.ping, 10, "redis-server did not start with the compose options", ignoring=(RedisError,))
    yield client
    client.close()
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
    base = {**os.environ, **env_example()}
    # compose interpolates ${NAME:-default} from the shell and .env
    environment = {
        **base,
        **{name: interpolated(value, base) for name, value in services()[service]["environment"].items()},
    }
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
        with (tmp_path / f"{name}.log").open("wb") as log:
            parts[name] = subprocess.Popen(
                services()[name]["command"],
                cwd=ROOT,
                env=compose_environment(name, compose_redis, port),
                stdout=log,
                stderr=log,
            )
    try:
        # The container's every interface (FLOWHOOK_HOST in the compose environment), not loopback only.
        wait_for_log(tmp_path / "web.log", f"Listening at: http://0.0.0.0:{port}")
        wait_for_log(tmp_path / "worker.log", "listening on flowhook")
        url = f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/readyz", timeout=5).json() == {
            "ready": True,
            "redis": "ok",
            "workers": 1,
            "unserved": [],
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


def dockerfile_environment() -> dict[str, str]:
    """What the Dockerfile's ENV instructions set for every process of the image."""
    environment = {}
    for instruction in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        if instruction.startswith("ENV "):
            pairs = (pair.partition("=") for pair in shlex.split(instruction.removeprefix("ENV ")))
            environment.update({name: value for name, _, value in pairs})
    return environment


def test_the_image_listens_on_every_interface_and_a_local_run_on_loopback() -> None:
    """Read as Flowhook reads its settings: the image's own environment, and `cp .env.example .env`."""
    assert Settings.from_env(dockerfile_environment()).host == "0.0.0.0"
    assert Settings.from_env(env_example()).host == "127.0.0.1"


def test_local_settings_are_never_committed() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
