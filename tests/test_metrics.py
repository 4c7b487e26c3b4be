"""Counting calls: held in memory, then added to prometheus-client's metrics as its own counting would."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from flowhook import metrics
from tests.test_e2e import gunicorn


def exposed(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a registry exposes, by name and sorted labels; not the creation times, which differ."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_calls_counted_together_reach_the_histogram_as_one_observation_each_would() -> None:
    # On a bucket's bound, just past one, under the first, past the last: the client's own rule decides.
    seconds = [0.0004, 0.005, 0.0051, 0.3, 0.3, 2.5, 19.99, 20.0, 31.0]
    one_by_one, together = CollectorRegistry(), CollectorRegistry()
    observed = Histogram("calls", "Calls.", ["handler"], buckets=metrics.CALL_BUCKETS, registry=one_by_one)
    added = Histogram("calls", "Calls.", ["handler"], buckets=metrics.CALL_BUCKETS, registry=together)
    counts = metrics.CallCounts()
    for value in seconds:
        observed.labels("echo").observe(value)
        counts.add(value)
    metrics.add_observations(added.labels("echo"), counts)

    assert exposed(together) == exposed(one_by_one)
    assert exposed(together)["calls_count", (("handler", "echo"),)] == len(seconds)


@pytest.mark.e2e  # gunicorn as a subprocess
def test_a_web_process_that_stops_leaves_every_call_it_answered_counted(redis_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    environment = {
        **os.environ,
        "REDIS_URL": redis_url,
        "FLOWHOOK_HANDLERS": "tests.handlers",
        "FLOWHOOK_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    with gunicorn(environment, tmp_path / "web.log") as url:
        for number in range(5):
            body = {"process_instance_id": f"counted-{number}", "variables": {}}
            response = requests.post(f"{url}/webservice/quick", json=body, timeout=10)
            assert response.json()["data"]["variables"]["quick_status"] == "done"
    # Stopped within the second its calls were counted in: what it left in the shared directory.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    found = exposed(registry)
    assert found["flowhook_calls_total", (("handler", "quick"), ("outcome", "done"), ("path", "inline"))] == 5
    assert found["flowhook_call_duration_seconds_count", (("handler", "quick"), ("outcome", "done"))] == 5
