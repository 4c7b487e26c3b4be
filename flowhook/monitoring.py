"""``GET /metrics``: the web's calls, the workers' jobs, the queues and the workers, for Prometheus.

Three sources, one exposition:

- **Calls**, counted by the web process that answered them (``flowhook.metrics``), summed over
  every gunicorn process.
- **Jobs**, counted by the workers and kept in Redis (``flowhook.jobfigures``): how they ended
  and how long they ran, per handler. The figures are the deployment's, not this process's: every
  web process exports the same.
- **Queues and workers**, read from RQ's records in Redis at each scrape: queue depth, the oldest
  queued job's age, jobs in flight, live workers and the jobs they can run at once.

``FLOWHOOK_METRICS=false`` switches counting off and ``/metrics`` answers 404;
``FLOWHOOK_METRICS_TOKENS`` makes a scrape present a token, as calls do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import cast

from flask import Blueprint, Flask, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq.utils import utcparse
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from flowhook import jobfigures, metrics
from flowhook.auth import authorized, presented_token
from flowhook.extension import Flowhook, current_flowhook
from flowhook.health import live_workers
from flowhook.jobstore import JobStore
from flowhook.multiproc import shared_directory
from flowhook.registry import Registry
from flowhook.settings import Settings

bp = Blueprint("monitoring", __name__)
CHALLENGE = WWWAuthenticate("bearer", {"realm": "flowhook-metrics"})


class QueueFigures(Collector):
    """Read at each scrape: the workers' job figures, the queues and the workers, from Redis."""

    def __init__(self, store: JobStore, registry: Registry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("flowhook_redis_up", "1 when this scrape could read Redis, else 0.")
        try:
            families = self._read()
        except RedisError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _read(self) -> list[Metric]:
        store = self.store
        connection = store.connection
        names = list(self.registry)
        queues = [store.queue(name) for name in names]
        now = time.time()
        with connection.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue.key)
                pipe.lindex(queue.key, 0)
                pipe.zcount(queue.started_job_registry.key, f"({now}", "+inf")
            replies = pipe.execute()
        depths = cast(list[int], replies[0::3])
        oldest_ids = cast(list[bytes | None], replies[1::3])
        in_flight = cast(list[int], replies[2::3])
        with connection.pipeline(transaction=False) as pipe:
            for job_id in oldest_ids:
                pipe.hget(f"rq:job:{job_id.decode()}" if job_id else "rq:job:-", "enqueued_at")
            enqueued = cast(list[bytes | None], pipe.execute())
        workers = live_workers(store, self.registry)
        figures = jobfigures.read(connection, self.settings.queue_name)

        depth = GaugeMetricFamily("flowhook_queue_depth", "Jobs waiting in the handler's queue.", labels=["handler"])
        age = GaugeMetricFamily(
            "flowhook_queue_oldest_age_seconds",
            "Seconds the oldest job waiting in the handler's queue has waited (0: none waits).",
            labels=["handler"],
        )
        running = GaugeMetricFamily(
            "flowhook_jobs_in_flight", "The handler's jobs running in workers now.", labels=["handler"]
        )
        live = GaugeMetricFamily(
            "flowhook_workers", "Live workers (a heartbeat in the last 10 s) serving the handler.", labels=["handler"]
        )
        capacity = GaugeMetricFamily(
            "flowhook_worker_capacity",
            "Jobs of the handler the live workers can run at once (workers x the handler's concurrency).",
            labels=["handler"],
        )
        ended = CounterMetricFamily(
            "flowhook_jobs", "Jobs that ended in a worker, by handler and how they ended.", labels=["handler", "ended"]
        )
        run = HistogramMetricFamily(
            "flowhook_job_run_seconds", "Seconds a job ran in its worker, by handler.", labels=["handler"]
        )
        for index, name in enumerate(names):
            depth.add_metric([name], depths[index])
            stamp = enqueued[index]
            age.add_metric([name], max(0.0, now - utcparse(stamp.decode()).timestamp()) if stamp else 0.0)
            running.add_metric([name], in_flight[index])
            serving = len(workers.get(name, ()))
            live.add_metric([name], serving)
            # A pool worker runs `concurrency` jobs of the handler at once; simple and fork workers one.
            pool = self.settings.worker_class == "pool"
            per_worker = self.registry[name].settings.concurrency if pool else 1
            capacity.add_metric([name], serving * per_worker)
            handler_figures = figures.get(name, jobfigures.HandlerFigures())
            for ending in jobfigures.ENDINGS:
                ended.add_metric([name, ending], handler_figures.ended.get(ending, 0))
            cumulative = 0
            buckets = []
            for bound in (*map(str, jobfigures.RUN_BUCKETS), "+Inf"):
                cumulative += handler_figures.run_buckets.get(bound, 0)
                buckets.append((bound, float(cumulative)))
            run.add_metric([name], buckets, handler_figures.run_sum)
        return [depth, age, running, live, capacity, ended, run]


def exposition_registry(store: JobStore, handlers: Registry, settings: Settings) -> CollectorRegistry:
    """What ``/metrics`` exposes: the calls of every web process, then the queues and the jobs."""
    registry = CollectorRegistry(auto_describe=False)
    directory = shared_directory()
    if directory is not None:
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]  # every gunicorn process's counts
    else:
        for metric in (metrics.CALLS, metrics.CALL_SECONDS, metrics.REDIS_ERRORS, metrics.PENDING_WHILE_AWAY):
            registry.register(metric)
    registry.register(QueueFigures(store, handlers, settings))
    return registry


@bp.get("/metrics")
def metrics_view() -> Response:
    """The metrics in Prometheus's text format."""
    flowhook = current_flowhook()
    settings = flowhook.settings
    if not settings.metrics:
        abort(404, description="metrics are switched off (FLOWHOOK_METRICS=false)")
    if settings.metrics_tokens and not authorized(presented_token(request), settings.metrics_tokens):
        raise Unauthorized(description="missing or invalid credentials", www_authenticate=CHALLENGE)
    metrics.write_counted_calls()  # this process's last calls too, not only those of its last write
    return Response(generate_latest(flowhook.metrics_registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, flowhook: Flowhook) -> None:
    """Serve ``/metrics`` and count the app's Redis errors (``flowhook.webservice`` counts the calls)."""
    if flowhook.settings.metrics:
        metrics.count_redis_errors(flowhook.store.connection)
    app.register_blueprint(bp)
