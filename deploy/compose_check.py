"""`make compose-check`: build the image and run docker-compose.yml for real, checking what a team relies on.

It uses `docker compose` where there is one (with a daemon that answers) and `podman-compose`
otherwise, on the project's one compose file, under a compose project of its own (`--project`, so a
stack of yours named `flowhook` and its Redis volume are never touched) and an image tag of its own
(`FLOWHOOK_IMAGE`). The web service is published where `FLOWHOOK_PUBLISH` says (default
127.0.0.1:8000, as in the compose file). Each step prints its outcome; the first failed step stops
the run. Everything the check created is removed at the end, volumes and image too, and the exit
status is 1 if any step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEFAULT_PUBLISH = "127.0.0.1:8000"  # the compose file's default for FLOWHOOK_PUBLISH
# The worker's stop_grace_period in docker-compose.yml: a stopped worker may finish its job first.
WORKER_GRACE = 330
# The image adds Flowhook and its runtime dependencies (about 45 MB) to its base; a copied
# virtualenv or the development dependencies would add hundreds.
MAX_ADDED_MB = 100
# A worker killed mid-job: its job is answered within FLOWHOOK_HEARTBEAT_TTL (20 s) plus a
# maintenance round; this leaves room for a slow machine and a changed setting.
INTERRUPTED_WITHIN = 120
# The web's stop_grace_period in docker-compose.yml.
WEB_GRACE = 30
# How long the proxy takes to send calls to a web container that has just started: compose's DNS
# names it within a second (deploy/proxy/haproxy.cfg: `hold valid 1s`), and one health check
# (`inter 1s`, `rise 1`) later it is in; this leaves room for a slow machine.
PROXY_FINDS_WITHIN = 5
# Conversations at once during the deploy step, each calling `sleep` one message after another.
DEPLOY_CONVERSATIONS = 6
# The deploy step's sleeps: within the 5 s budget (done at once) and past it (pending, then polled).
DEPLOY_SLEEPS = ("1", "7")


class StepError(Exception):
    """A step found the stack not doing what it should; the message says what it saw."""


@dataclass(frozen=True)
class Engine:
    """The compose command and the container engine under it."""

    name: str  # "docker" or "podman"
    compose: tuple[str, ...]
    version: str

    @classmethod
    def find(cls) -> Engine:
        """`docker compose` when it and its daemon answer, else `podman-compose`."""
        if shutil.which("docker") and _succeeds(["docker", "compose", "version"]) and _succeeds(["docker", "info"]):
            return cls("docker", ("docker", "compose"), _output(["docker", "compose", "version", "--short"]))
        if shutil.which("podman-compose") and shutil.which("podman"):
            version = _output(["podman", "version", "--format", "{{.Client.Version}}"])
            return cls("podman", ("podman-compose",), f"podman-compose with podman {version}")
        raise StepError(
            "neither `docker compose` (with a running daemon) nor podman-compose is here: "
            "install Docker with its compose plugin, or podman with podman-compose"
        )


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, timeout=60, check=False).returncode == 0


def _output(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout.strip()


class Stack:
    """The compose project the check runs, and the calls it makes through the published port."""

    def __init__(self, engine: Engine, project: str, publish: str) -> None:
        self.engine = engine
        self.project = project
        self.image = f"flowhook:{project}"
        self.proxy_image = f"flowhook-proxy:{project}"
        host, _, port = publish.rpartition(":")
        # Published on every address (or on no address given): call it on loopback.
        self.url = f"http://{host if host not in ('', '0.0.0.0') else '127.0.0.1'}:{port}"
        # The shell's variables win over .env's in the compose file, so these are what compose uses.
        self.environment = {
            **os.environ,
            "FLOWHOOK_PUBLISH": publish,
            "FLOWHOOK_IMAGE": self.image,
            "FLOWHOOK_PROXY_IMAGE": self.proxy_image,
        }
        self.session = requests.Session()
        # Workers one worker container runs (more than one if a setting says so), counted at `up`.
        self.workers_per_container = 0

    def compose(self, *arguments: str, timeout: float = 120) -> str:
        """Run a compose command on the project's compose file; its output, or StepError."""
        command = [*self.engine.compose, "-p", self.project, "-f", str(COMPOSE_FILE), *arguments]
        return self._run(command, timeout)

    def container_engine(self, *arguments: str, timeout: float = 120) -> str:
        """Run a docker or podman command; its output, or StepError."""
        return self._run([self.engine.name, *arguments], timeout)

    def _run(self, command: list[str], timeout: float) -> str:
        try:
            finished = subprocess.run(
                command, cwd=ROOT, env=self.environment, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise StepError(f"`{' '.join(command)}` did not finish in {timeout:.0f} s") from error
        if finished.returncode != 0:
            tail = "\n".join((finished.stdout + finished.stderr).strip().splitlines()[-15:])
            raise StepError(f"`{' '.join(command)}` exited {finished.returncode}:\n{tail}")
        return finished.stdout

    def containers(self, service: str | None = None, *, running_only: bool = False) -> list[str]:
        """The project's containers (of one service), by their compose number."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        listed = self.container_engine(
            "ps", *([] if running_only else ["-a"]), *filters, "--format", "{{.Names}}"
        ).split()
        return sorted(
            listed,
            key=lambda name: int(
                self.inspect(name, '{{index .Config.Labels "com.docker.compose.container-number"}}') or 0
            ),
        )

    def inspect(self, container: str, template: str) -> str:
        return self.container_engine("inspect", "--format", template, container).strip()

    def only_container(self, service: str) -> str:
        containers = self.containers(service)
        if len(containers) != 1:
            raise StepError(f"expected one {service} container, found {containers}")
        return containers[0]

    def run_healthcheck(self, container: str) -> tuple[bool, str]:
        """Run the container's healthcheck now: did it pass, and what did it say."""
        if self.engine.name == "podman":
            # podman 4.3 without systemd runs healthchecks only when asked.
            command = ["podman", "healthcheck", "run", container]
        else:
            test = json.loads(self.inspect(container, "{{json .Config.Healthcheck.Test}}"))
            shell = test[0] == "CMD-SHELL"
            command = ["docker", "exec", container, *(["sh", "-c", test[1]] if shell else test[1:])]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        return finished.returncode == 0, (finished.stdout + finished.stderr).strip()

    def post(self, handler: str, instance: str, variables: dict[str, str]) -> dict[str, str]:
        """One call as LoyJoy makes it, through the published port; the answer's variables."""
        body = {"process_instance_id": instance, "variables": variables}
        response = self.session.post(f"{self.url}/webservice/{handler}", json=body, timeout=30)
        if response.status_code != 200:
            raise StepError(f"POST /webservice/{handler} answered {response.status_code}: {response.text[:300]}")
        answer: dict[str, str] = response.json()["data"]["variables"]
        return answer

    def poll(self, handler: str, instance: str, variables: dict[str, str], job: str, within: float) -> dict[str, str]:
        """Poll a job as the flow does until it is no longer pending; StepError past ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            answer = self.post(handler, instance, {**variables, f"{handler}_job": job})
            if answer[f"{handler}_status"] != "pending":
                return answer
            if time.monotonic() > deadline:
                raise StepError(f"job {job} still pending after {within:.0f} s: {answer}")

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """/readyz's status code and body; (0, {}) while nothing answers on the port."""
        try:
            response = self.session.get(f"{self.url}/readyz", timeout=10)
        except requests.ConnectionError:
            return 0, {}
        return response.status_code, response.json()

    def wait_for_workers(self, containers: int, within: float = 90) -> None:
        """Wait until /readyz is 200 and counts the workers of ``containers`` worker containers."""
        count = containers * self.workers_per_container
        last: tuple[int, dict[str, Any]] = (0, {})

        def counted() -> bool:
            nonlocal last
            last = self.readiness()
            return last[0] == 200 and last[1].get("workers") == count

        wait_until(counted, within, lambda: f"/readyz to count {count} workers; it last answered {last}")

    def count_workers_per_container(self, within: float = 90) -> int:
        """/readyz's worker count once it is 200 and has not changed for 3 s, with one worker container."""
        deadline = time.monotonic() + within
        counts: list[int] = []
        while len(counts) < 7 or len(set(counts[-7:])) > 1 or not counts[-1]:
            if time.monotonic() > deadline:
                raise StepError(f"/readyz did not settle on a worker count in {within:.0f} s: {self.readiness()}")
            status, body = self.readiness()
            counts.append(body.get("workers", 0) if status == 200 else 0)
            time.sleep(0.5)
        return counts[-1]

    def roll(self, service: str, grace: int) -> list[str]:
        """Replace the containers of ``service`` one after another, as docs/operations.md deploys.

        For each old container a new one starts (the image as built now) next to it; once it is
        healthy (and, for the web, the proxy sends it calls), the old one is stopped with SIGTERM
        (``grace`` seconds: it finishes what it holds) and removed. Returns the new containers.
        """
        old = self.containers(service, running_only=True)
        for container in old:
            before = set(self.containers(service))  # stopped ones too: podman-compose numbers after them
            self.compose(
                "up", "-d", "--no-deps", "--no-recreate", "--scale", f"{service}={len(old) + 1}", service, timeout=300
            )
            added = sorted(set(self.containers(service)) - before)
            if len(added) != 1:
                raise StepError(f"`up --scale {service}={len(old) + 1}` added {added}, not one container")
            self.wait_healthy(added[0])
            if service == "web":
                time.sleep(PROXY_FINDS_WITHIN)
            self.container_engine("stop", "-t", str(grace), container, timeout=grace + 30)
            try:
                self.container_engine("rm", container)
            except StepError as error:
                # podman-compose starts a container with `--requires` on those it depends on, and podman
                # refuses to remove a required one (the web): it stays stopped until `down`.
                if self.engine.name != "podman" or "dependent containers" not in str(error):
                    raise
        return self.containers(service, running_only=True)

    def wait_healthy(self, container: str, within: float = 90) -> None:
        """Run the container's healthcheck until it passes."""
        wait_until(lambda: self.run_healthcheck(container)[0], within, lambda: f"{container} to be healthy")

    def remove_everything(self) -> list[str]:
        """Remove the project's containers (also those `--scale` added), volumes, networks and image."""
        removed = []
        try:
            self.compose("down", "--volumes", "--timeout", "10", timeout=300)
        except StepError as error:
            print(f"  (compose down: {error})", flush=True)
        label = f"label=com.docker.compose.project={self.project}"
        # podman-compose's `down` leaves the containers `--scale` added, and with them their network.
        for kind, listing, removal in (
            # podman refuses to remove a container that another depends on, unless told to.
            (
                "container",
                ["ps", "-a", "-q"],
                ["rm", "-f", "-v", *(["--depend"] if self.engine.name == "podman" else [])],
            ),
            ("volume", ["volume", "ls", "-q"], ["volume", "rm", "-f"]),
            ("network", ["network", "ls", "-q"], ["network", "rm", "-f"]),
        ):
            leftovers = self.container_engine(*listing, "--filter", label).split()
            if leftovers:
                self.container_engine(*removal, *leftovers)
                removed.append(f"{len(leftovers)} {kind}(s) compose left")
        for image in (self.image, self.proxy_image):
            if _succeeds([self.engine.name, "image", "inspect", image]):
                self.container_engine("rmi", "-f", image)
                removed.append(f"image {image}")
        return removed


def wait_until(condition: Callable[[], bool], within: float, waiting_for: Callable[[], str]) -> None:
    """Check ``condition`` twice a second until it holds; StepError naming what it waited for."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise StepError(f"waited {within:.0f} s for {waiting_for()}")
        time.sleep(0.5)


def new_instance(purpose: str) -> str:
    """A conversation of its own per step: identical calls would attach to an earlier step's job."""
    return f"compose-check-{purpose}-{uuid.uuid4().hex[:8]}"


def pending_sleep(stack: Stack, seconds: str, purpose: str) -> tuple[str, dict[str, str], str]:
    """Start `sleep` for longer than the budget; the instance, the variables and the job id."""
    instance, variables = new_instance(purpose), {"seconds": seconds}
    answer = stack.post("sleep", instance, variables)
    if answer["sleep_status"] != "pending" or not answer["sleep_job"]:
        raise StepError(f"sleep {seconds} s answered {answer}, not pending with a job")
    return instance, variables, answer["sleep_job"]


@dataclass
class DeployLoad:
    """What the conversations met while a new version rolled out; shared by their threads."""

    messages: int = 0
    calls: int = 0
    refused: list[str] = field(default_factory=list)  # no answer, or not 200
    not_done: list[str] = field(default_factory=list)  # a message that ended other than `done`
    two_jobs: list[str] = field(default_factory=list)  # a message whose answers named two jobs
    lock: threading.Lock = field(default_factory=threading.Lock)

    def converse(self, url: str, number: int, stop: threading.Event) -> None:
        """One conversation: `sleep` messages one after another, each polled while pending, until ``stop``."""
        with requests.Session() as session:
            count = 0
            while not stop.is_set():
                count += 1
                instance, variables = f"compose-check-deploy-{number}-{count}", {"seconds": DEPLOY_SLEEPS[count % 2]}
                answer: dict[str, str] = {}
                jobs = set()
                deadline = time.monotonic() + 90
                try:
                    while True:
                        body = {"process_instance_id": instance, "variables": {**variables, **answer}}
                        response = session.post(f"{url}/webservice/sleep", json=body, timeout=30)
                        with self.lock:
                            self.calls += 1
                        if response.status_code != 200:
                            raise requests.HTTPError(f"{response.status_code} {response.text[:200]}")
                        answer = response.json()["data"]["variables"]
                        jobs.add(answer["sleep_job"])
                        if answer["sleep_status"] != "pending" or time.monotonic() > deadline:
                            break
                        time.sleep(1)
                except (requests.RequestException, ValueError, KeyError) as error:
                    with self.lock:
                        self.refused.append(f"{instance}: {type(error).__name__}: {error}")
                    continue
                with self.lock:
                    self.messages += 1
                    if answer["sleep_status"] != "done":
                        self.not_done.append(f"{instance}: {answer}")
                    if len(jobs - {""}) > 1:  # a `done` answer names no job
                        self.two_jobs.append(f"{instance}: {sorted(jobs - {''})}")


# The steps, in order: each returns what it saw, or raises StepError.


def build(stack: Stack) -> str:
    stack.compose("build", timeout=900)
    return f"image {stack.image} built from the Dockerfile"


def up(stack: Stack) -> str:
    stack.compose("up", "-d", timeout=300)
    stack.workers_per_container = stack.count_workers_per_container()
    services = sorted(
        {stack.inspect(name, '{{index .Config.Labels "com.docker.compose.service"}}') for name in stack.containers()}
    )
    return (
        f"services {', '.join(services)} running; /readyz 200 on {stack.url} "
        f"with {stack.workers_per_container} worker(s) in the worker container"
    )


def healthchecks(stack: Stack) -> str:
    seen = []
    for service in ("redis", "web", "proxy", "worker"):
        for container in stack.containers(service):
            healthy, said = stack.run_healthcheck(container)
            if not healthy:
                raise StepError(f"{container}'s healthcheck failed: {said}")
            seen.append(container)
    return f"passed in {', '.join(seen)}"


def non_root(stack: Stack) -> str:
    seen = []
    for service in ("web", "worker"):
        container = stack.only_container(service)
        status = stack.container_engine("exec", container, "cat", "/proc/1/status")
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.MULTILINE)
        if uids is None or "0" in uids.groups():
            raise StepError(f"{container}'s main process runs as uid {uids.groups() if uids else '?'}")
        user = stack.container_engine("exec", container, "id", "-un").strip()
        seen.append(f"{service} uid {uids.group(2)} ({user})")
    return ", ".join(seen)


def quick_start(stack: Stack) -> str:
    echo = stack.post("echo", new_instance("quick-start"), {"firstname": "Ada"})
    expected = {"echo_error": "", "echo_job": "", "echo_status": "done", "firstname": "Ada"}
    if echo != expected:
        raise StepError(f"echo answered {echo}, not {expected}")
    instance, variables, job = pending_sleep(stack, "8", "quick-start")
    done = stack.poll("sleep", instance, variables, job, within=30)
    if done != {"sleep_error": "", "sleep_job": "", "sleep_status": "done", "slept": "8"}:
        raise StepError(f"the poll of sleep 8 s answered {done}")
    return "echo done; sleep 8 s pending, then polled to done (slept 8)"


def worker_killed_mid_job(stack: Stack) -> str:
    container = stack.only_container("worker")
    restarts = int(stack.inspect(container, "{{.RestartCount}}"))
    instance, variables, job = pending_sleep(stack, "60", "killed")
    killed = time.monotonic()
    # SIGKILL from the host, as the OOM killer or a crash would end it: the engine counts that as
    # the container dying; `podman kill` counts as the user stopping it, with no restart.
    os.kill(int(stack.inspect(container, "{{.State.Pid}}")), signal.SIGKILL)
    wait_until(
        lambda: (
            int(stack.inspect(container, "{{.RestartCount}}")) > restarts
            and stack.inspect(container, "{{.State.Running}}") == "true"
        ),
        30,
        lambda: f"{container} to be restarted by its restart policy",
    )
    # Serving again: a new job runs (echo runs in a worker). /readyz could still count the killed
    # worker, whose registration outlives it by up to a minute and a half.
    echo = stack.post("echo", new_instance("after-kill"), {"firstname": "Ada"})
    if echo["echo_status"] != "done":
        raise StepError(f"after the restart a new echo call answered {echo}")
    restarted = int(stack.inspect(container, "{{.RestartCount}}")) - restarts
    if restarted != 1:
        raise StepError(f"{container} was restarted {restarted} times, not once: it failed to start again")
    answer = stack.poll("sleep", instance, variables, job, within=INTERRUPTED_WITHIN)
    outcome = answer["sleep_status"]
    if outcome == "failed" and "interrupted" not in answer["sleep_error"]:
        raise StepError(f"the killed job failed for another reason: {answer}")
    if outcome not in ("done", "failed"):
        raise StepError(f"the killed job answered {answer}")
    said = f'{outcome} "{answer["sleep_error"]}"' if answer["sleep_error"] else outcome
    return (
        f"{container} restarted once and a new echo call answered done; "
        f"the killed job answered {said} {time.monotonic() - killed:.0f} s after the kill"
    )


def scale_workers(stack: Stack) -> str:
    stack.compose("up", "-d", "--scale", "worker=3", timeout=300)
    if len(stack.containers("worker", running_only=True)) != 3:
        raise StepError(f"--scale worker=3 runs {stack.containers('worker', running_only=True)}")
    stack.wait_for_workers(3)
    counted = 3 * stack.workers_per_container
    # Back to one worker for the steps that follow. podman-compose neither scales down nor stops the
    # added containers with its service: stop them (SIGTERM, so their registrations go at once).
    stack.compose("up", "-d", "--scale", "worker=1", timeout=300)
    extra = stack.containers("worker")[1:]
    if extra:
        stack.container_engine("stop", "-t", str(WORKER_GRACE), *extra, timeout=WORKER_GRACE + 30)
        stack.container_engine("rm", *extra)
    stack.wait_for_workers(1)
    return f"3 worker containers, /readyz counted {counted} workers; back to 1 container"


def deploy_under_load(stack: Stack) -> str:
    """docs/operations.md's deploy of a new version while conversations call: nothing refused or lost."""
    load, stop = DeployLoad(), threading.Event()
    threads = [
        threading.Thread(target=load.converse, args=(stack.url, number, stop), daemon=True)
        for number in range(DEPLOY_CONVERSATIONS)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: load.messages >= DEPLOY_CONVERSATIONS, 60, lambda: "the conversations to get going")
        stack.compose("build", timeout=900)  # the new version (here the same code: the image is rebuilt)
        old = stack.containers("web", running_only=True) + stack.containers("worker", running_only=True)
        new = stack.roll("web", WEB_GRACE) + stack.roll("worker", WORKER_GRACE)
        time.sleep(3)  # calls on the new containers only
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    counts = (
        f"{load.messages} messages ({load.calls} calls) from {DEPLOY_CONVERSATIONS} conversations while "
        f"{', '.join(old)} were replaced one by one by {', '.join(new)}: {len(load.refused)} calls refused "
        f"or in error, {len(load.not_done)} messages not done, {len(load.two_jobs)} with two jobs"
    )
    print(f"  deploy under load: {counts}", flush=True)
    if load.refused or load.not_done or load.two_jobs:
        raise StepError(f"{counts}; first: {(load.refused + load.not_done + load.two_jobs)[:3]}")
    return counts


def healthchecks_fail_without_redis(stack: Stack) -> str:
    worker = stack.only_container("worker")
    stack.compose("stop", "redis", timeout=60)
    try:
        healthy, said = stack.run_healthcheck(worker)
        if healthy:
            raise StepError(f"the worker's healthcheck passed with Redis stopped: {said}")
        status, body = stack.readiness()
        if status != 503 or "redis" not in body.get("missing", []):
            raise StepError(f"/readyz answered {status} {body} with Redis stopped")
    finally:
        stack.compose("start", "redis", timeout=60)
    back = time.monotonic()
    # /readyz counts the worker as soon as Redis has reloaded its registration from the append-only
    # file, maybe before the worker has reconnected: a new job shows that it serves again.
    instance, variables = new_instance("redis-back"), {"firstname": "Ada"}
    answer = stack.post("echo", instance, variables)
    if answer["echo_status"] == "pending":
        answer = stack.poll("echo", instance, variables, answer["echo_job"], within=30)
    if answer["echo_status"] != "done":
        raise StepError(f"once Redis was back, a new echo call answered {answer}")
    healthy, said_after = stack.run_healthcheck(worker)
    if not healthy:
        raise StepError(f"once Redis was back, the worker's healthcheck still failed: {said_after}")
    return (
        f"with Redis stopped, the worker's healthcheck failed ({said.splitlines()[-1][:80]}) and /readyz "
        f"answered 503; once Redis was back, a new echo call answered done after {time.monotonic() - back:.0f} s "
        "and the healthcheck passed"
    )


def graceful_worker_stop(stack: Stack) -> str:
    instance, variables, job = pending_sleep(stack, "8", "graceful")
    worker = stack.only_container("worker")
    started = time.monotonic()
    stack.compose("stop", "worker", timeout=WORKER_GRACE + 30)
    took = time.monotonic() - started
    exit_code = stack.inspect(worker, "{{.State.ExitCode}}")
    if exit_code != "0":
        raise StepError(f"the stopped worker exited {exit_code}: SIGTERM was not a warm shutdown")
    # No worker runs now: only the stopped one can have finished the job.
    answer = stack.poll("sleep", instance, variables, job, within=10)
    if answer["sleep_status"] != "done":
        raise StepError(f"the job running at `stop worker` answered {answer}")
    return f"`stop worker` waited {took:.0f} s for the running job, exit code 0; the job answered done"


def queued_job_survives_down_up(stack: Stack) -> str:
    # The workers are stopped (the step before), so this job waits in the queue.
    instance, variables, job = pending_sleep(stack, "1", "queued")
    stack.compose("stop", timeout=WORKER_GRACE + 60)
    exits = {name: stack.inspect(name, "{{.State.ExitCode}}") for name in stack.containers()}
    if set(exits.values()) != {"0"}:
        raise StepError(f"not every service stopped cleanly on SIGTERM: exit codes {exits}")
    stack.compose("down", timeout=WORKER_GRACE + 60)
    stack.compose("up", "-d", timeout=300)
    stack.wait_for_workers(1)
    answer = stack.poll("sleep", instance, variables, job, within=30)
    if answer["sleep_status"] != "done":
        raise StepError(f"the job queued before `down` answered {answer} after `up`")
    return "every service exited 0 on SIGTERM; the job queued before `down` answered done after `up` (Redis volume)"


def image_contents(stack: Stack) -> str:
    runtime = requirement_names(ROOT / "requirements.txt")
    development = sorted(requirement_names(ROOT / "requirements-dev.txt") - runtime)
    probe = (
        "import importlib.metadata, pathlib, shutil, sys\n"
        "found = [path for path in ('tests', 'bench', 'docs', 'deploy', 'dev', 'flowhook/dev', '.venv', '.git',\n"
        "                           '.env') if pathlib.Path(path).exists()]\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.metadata.distribution(name)\n"
        "        found.append(name)\n"
        "    except importlib.metadata.PackageNotFoundError:\n"
        "        pass\n"
        "found += [tool for tool in ('gcc', 'cc', 'make', 'git') if shutil.which(tool)]\n"
        "print(' '.join(found))\n"
    )
    found = stack.container_engine(
        "run", "--rm", "--network", "none", "--entrypoint", "python", stack.image, "-c", probe, *development
    ).split()
    if found:
        raise StepError(f"the image holds {', '.join(found)}")
    return (
        "no tests, benchmarks, docs, development tooling (dev, flowhook/dev) or .venv in /app; "
        f"none of the {len(development)} development-only "
        "packages of requirements-dev.txt; no compiler, make or git"
    )


def image_size(stack: Stack) -> str:
    base = next(line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM "))
    size, base_size = (
        int(stack.container_engine("image", "inspect", "--format", "{{.Size}}", name)) // 10**6
        for name in (stack.image, base)
    )
    if size - base_size > MAX_ADDED_MB:
        raise StepError(
            f"the image is {size} MB, {size - base_size} MB over its base {base}: more than {MAX_ADDED_MB} MB"
        )
    return f"{size} MB: its base {base} {base_size} MB + {size - base_size} MB of Flowhook and its runtime dependencies"


def requirement_names(path: Path) -> set[str]:
    """The distributions a requirements file pins (`name==version` lines)."""
    return {
        line.split("==")[0].strip().lower()
        for line in path.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }


STEPS: list[tuple[str, Callable[[Stack], str]]] = [
    ("build", build),
    ("up", up),
    ("healthchecks", healthchecks),
    ("non-root", non_root),
    ("quick start", quick_start),
    ("worker killed mid-job", worker_killed_mid_job),
    ("scale workers", scale_workers),
    ("healthchecks can fail", healthchecks_fail_without_redis),
    ("graceful worker stop", graceful_worker_stop),
    ("down, up: queued job kept", queued_job_survives_down_up),
    # Last of the steps that use the stack: podman-compose's `stop` and `down` know a service's
    # containers by the numbers its scale gives, not the ones a deploy leaves (`web_2`).
    ("deploy under load", deploy_under_load),
    ("image contents", image_contents),
    ("image size", image_size),
]


def main(argv: list[str] | None = None) -> int:
    """Run every step, then remove what the check created; 0 only if every step passed."""
    parser = argparse.ArgumentParser(prog="python -m deploy.compose_check", description=__doc__)
    parser.add_argument("--project", default="flowhook-check", help="compose project name (default flowhook-check)")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM (or Ctrl-C), still remove the stack (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        engine = Engine.find()
    except StepError as error:
        print(f"compose check: {error}", file=sys.stderr)
        return 1
    stack = Stack(engine, args.project, os.environ.get("FLOWHOOK_PUBLISH") or DEFAULT_PUBLISH)
    print(f"compose check: {engine.version}, project {stack.project}, {COMPOSE_FILE.name}, {stack.url}", flush=True)
    leftovers = stack.remove_everything()
    if leftovers:
        print(f"  removed what an earlier run left: {', '.join(leftovers)}", flush=True)
    failed = False
    try:
        for name, step in STEPS:
            started = time.monotonic()
            try:
                outcome = step(stack)
            except (StepError, requests.RequestException, KeyError) as error:
                print(f"FAIL  {name}: {error} ({time.monotonic() - started:.0f} s)", flush=True)
                print_logs(stack)
                failed = True
                break
            print(f"ok    {name}: {outcome} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        try:
            removed = stack.remove_everything()
            print(f"  teardown: compose down --volumes; removed {', '.join(removed) or 'nothing more'}", flush=True)
        except StepError as error:
            print(f"FAIL  teardown: {error}", flush=True)
            failed = True
    print("compose check: FAILED" if failed else "compose check: every step passed", flush=True)
    return 1 if failed else 0


def print_logs(stack: Stack) -> None:
    """The last lines each container logged, to see why a step failed."""
    for container in stack.containers():
        logs = subprocess.run(
            [stack.engine.name, "logs", "--tail", "40", container], capture_output=True, text=True, check=False
        )
        print(f"--- {container} (last lines)\n{(logs.stdout + logs.stderr).rstrip()}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
