"""Run at the start of every Python process of a ``make rq-suite`` run (its directory is on PYTHONPATH).

RQ's tests start processes of their own (``rqworker``, ``python -c``): each of them must reach the
private Redis, and in the pool's run must use the pool, before it imports anything else. A
process started outside the suite (no ``FLOWHOOK_RQ_SUITE_REDIS_PORT``) is left as it is.
"""

from __future__ import annotations

import os

_port = os.environ.get("FLOWHOOK_RQ_SUITE_REDIS_PORT")
if _port:
    if os.environ.get("FLOWHOOK_RQ_SUITE_WORKERS") == "pool":
        # As `python -m workers` does for the pool: gevent first, before RQ, redis-py or threads.
        from gevent import monkey

        monkey.patch_all()
    from dev.rq_suite.redirect import redirect_default_redis

    redirect_default_redis(int(_port))
    if os.environ.get("FLOWHOOK_RQ_SUITE_WORKERS") == "pool":
        from dev.rq_suite.substitute import substitute_pool

        substitute_pool()
