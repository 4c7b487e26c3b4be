"""``make rq-suite``: RQ's own tests with RQ's workers, then with the pool class, and what differs.

``python -m dev.rq_suite [--only rq|pool] [--timeout S] [-- PYTEST_ARGS]``. It exits 0 when
every test that passes with RQ's workers passes with the pool too, or is listed in
``expected_failures.toml`` with its reason; else it names the unexpected failures and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flowhook.dev.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parent
# Downloads and runs, ignored by git (.flowhook/) and removed by `make clean`.
CACHE = ROOT / ".flowhook" / "rq-suite"
EXPECTED_FAILURES = PACKAGE / "expected_failures.toml"
# A test of RQ's suite runs for a second or two; one that waits this long hangs.
DEFAULT_TIMEOUT = 60.0
# The runs, in order: RQ's workers first, as the baseline the pool is compared with.
RUNS = ("rq", "pool")


# Why the pool class fails a test RQ's workers pass: it assumes a forked work horse, or one job at
# a time; or it meets a deliberate, documented difference of Flowhook's workers (all three
# classes); or a difference reported to be mended, still open.
KINDS = ("forking", "one at a time", "by design", "open difference")


@dataclass(frozen=True)
class Expected:
    """A test of RQ's suite the pool class fails, and why.

    A test that would end the whole test process (it kills the process its job runs in, which
    with the pool is the test process) is ``deselected``: not run with the pool class.
    """

    test: str
    kind: str
    reason: str
    deselected: bool = False


def pinned_rq_version(requirements: Path = ROOT / "requirements.txt") -> str:
    """The RQ version requirements.txt pins."""
    found = re.search(r"^rq==(\S+)", requirements.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"rq-suite: no rq==VERSION in {requirements}")
    return found.group(1)


def rq_tests(version: str) -> Path:
    """RQ's tests of ``version``, from its source release, downloaded once into the cache.

    Only the tests and the pytest settings in pyproject.toml are extracted: the tests import the
    installed RQ (the pinned one), not a copy of its source.
    """
    folder = CACHE / f"rq-{version}"
    if (folder / "tests").is_dir():
        return folder
    archive = CACHE / f"rq-{version}.tar.gz"
    if not archive.exists():
        print(f"rq-suite: downloading the source release of rq {version}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
             "--no-binary", ":all:", "--no-deps", f"rq=={version}", "--dest", str(CACHE)],
            check=True,
        )  # fmt: skip
    top = f"rq-{version}/"
    with tarfile.open(archive) as source:
        members = [
            member
            for member in source.getmembers()
            if member.name.startswith(top + "tests/") or member.name == top + "pyproject.toml"
        ]
        source.extractall(CACHE, members=members, filter="data")
    return folder


def run_suite(workers: str, suite: Path, timeout: float, pytest_args: list[str]) -> dict[str, str]:
    """Run RQ's tests in ``suite`` with ``workers`` (``rq`` or ``pool``) against a private Redis.

    Returns:
        Each test's outcome by its id: ``passed``, ``failed`` or ``skipped``.
    """
    results = CACHE / f"results-{workers}.jsonl"
    log = CACHE / f"pytest-{workers}.log"
    results.unlink(missing_ok=True)
    with EmbeddedRedis(CACHE / f"redis-{workers}", appendonly=False) as redis:
        env = dict(
            os.environ,
            # site/ first: its sitecustomize prepares every Python process of the run. Then RQ's
            # `tests` (the workers RQ's tests start import their jobs from it), then Flowhook.
            PYTHONPATH=os.pathsep.join([str(PACKAGE / "site"), str(suite), str(ROOT)]),
            # RQ's tests start `rqworker`: this environment's.
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            FLOWHOOK_RQ_SUITE_REDIS_PORT=str(redis.port),
            FLOWHOOK_RQ_SUITE_WORKERS=workers,
            FLOWHOOK_RQ_SUITE_RESULTS=str(results),
            FLOWHOOK_RQ_SUITE_TIMEOUT=str(timeout),
        )
        # Under gevent the plugin bounds each test; pytest-timeout's SIGALRM would not reach it.
        timeouts = ["-p", "no:timeout"] if workers == "pool" else ["--timeout", str(timeout)]
        command = [
            sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
            "-p", "dev.rq_suite.plugin", *timeouts, *pytest_args,
        ]  # fmt: skip
        print(f"rq-suite: RQ's tests with {describe(workers)} (log: {log.relative_to(ROOT)})", flush=True)
        with log.open("w") as output:
            # A session of its own: whatever the tests leave running (workers of RQ's, `rqworker`)
            # is ended with it, also when the run is interrupted.
            pytest = subprocess.Popen(
                command, cwd=suite, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                pytest.wait()
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pytest.pid, signal.SIGKILL)
                pytest.wait()
    lines = log.read_text().splitlines()
    print(f"rq-suite:   {lines[-1] if lines else '(no output)'}", flush=True)
    return read_outcomes(results)


def read_outcomes(results: Path) -> dict[str, str]:
    """Each test's outcome from the plugin's lines; one left ``started`` ended the process: ``failed``."""
    outcomes: dict[str, str] = {}
    if results.exists():
        for line in results.read_text().splitlines():
            entry = json.loads(line)
            outcomes[entry["test"]] = entry["outcome"]
    for test, outcome in outcomes.items():
        if outcome == "started":
            print(f"rq-suite:   {test} ended the test process", flush=True)
            outcomes[test] = "failed"
    return outcomes


def describe(workers: str) -> str:
    return "RQ's workers" if workers == "rq" else "the pool class"


def expected_failures(path: Path = EXPECTED_FAILURES) -> dict[str, Expected]:
    """The tests the pool class is known to fail, each with its reason, by test id."""
    listed: dict[str, Expected] = {}
    for group in tomllib.loads(path.read_text())["expected"]:
        if group["kind"] not in KINDS:
            raise SystemExit(f"rq-suite: {path.name}: kind {group['kind']!r} is none of {', '.join(KINDS)}")
        for test in group["tests"]:
            listed[test] = Expected(test, group["kind"], group["reason"], group.get("deselect", False))
    return listed


def count(outcomes: dict[str, str], outcome: str) -> int:
    return sum(1 for found in outcomes.values() if found == outcome)


def report(baseline: dict[str, str] | None, pool: dict[str, str], expected: dict[str, Expected]) -> int:
    """Print what the pool fails beyond what RQ's workers fail, against the list; the exit status.

    Without a baseline, every failure of the pool's run counts.
    """
    pool_failed = {test for test, outcome in pool.items() if outcome == "failed"}
    if baseline is not None:
        print(
            f"rq-suite: {count(baseline, 'passed')} pass with RQ's workers, {count(pool, 'passed')} with the pool "
            f"class ({len(baseline)} tests; {count(baseline, 'skipped')} skipped with RQ's workers)"
        )
        failing_anyway = sorted(test for test in pool_failed if baseline.get(test) != "passed")
        if failing_anyway:
            print(f"rq-suite: fail with RQ's workers too ({len(failing_anyway)}): {', '.join(failing_anyway)}")
        pool_failed -= set(failing_anyway)
    unexpected = sorted(pool_failed - expected.keys())
    failing = [listed for test, listed in expected.items() if test in pool_failed or listed.deselected]
    by_kind = ", ".join(f"{kind} {sum(1 for listed in failing if listed.kind == kind)}" for kind in KINDS)
    deselected = sum(1 for listed in expected.values() if listed.deselected)
    print(
        f"rq-suite: listed failures of the pool class: {len(failing)} of {len(expected)} listed ({by_kind}; "
        f"{deselected} of them not run: they would end the test process)"
    )
    still_open = sorted(listed.test for listed in failing if listed.kind == "open difference")
    if still_open:
        print(f"rq-suite: open differences, to be mended ({len(still_open)}): {', '.join(still_open)}")
    no_longer = sorted(test for test in expected if pool.get(test) == "passed")
    if no_longer:
        print(f"rq-suite: listed, but passed this time ({len(no_longer)}): {', '.join(no_longer)}")
    if not unexpected:
        print("rq-suite: unexpected failures: none")
        return 0
    print(f"rq-suite: unexpected failures ({len(unexpected)}):")
    for test in unexpected:
        print(f"  {test}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.rq_suite", description=__doc__)
    parser.add_argument("--only", choices=RUNS, help="one run only (for pool: no baseline to compare with)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds a test may run")
    parser.add_argument("pytest_args", nargs="*", help="after --: more arguments for pytest (-k NAME)")
    args = parser.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    version = pinned_rq_version()
    suite = rq_tests(version)
    print(f"rq-suite: RQ {version}'s tests, in {suite.relative_to(ROOT)}", flush=True)
    expected = expected_failures()
    deselect = [f"--deselect={test}" for test, listed in expected.items() if listed.deselected]
    outcomes = {
        workers: run_suite(workers, suite, args.timeout, [*(deselect if workers == "pool" else []), *args.pytest_args])
        for workers in RUNS
        if args.only in {None, workers}
    }
    if "pool" not in outcomes:
        return 0
    return report(outcomes.get("rq"), outcomes["pool"], expected)


if __name__ == "__main__":
    sys.exit(main())
