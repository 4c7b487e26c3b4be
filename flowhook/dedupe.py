"""One job per identical call: the dedupe entry the web writes with a job, and its release.

The web process writes the entry in the transaction that enqueues the job
(``flowhook.jobstore.JobStore.start``); the worker releases it once the job's outcome is final
(``workers/job.py``), so an identical call after that starts anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from redis.client import Pipeline
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job

from flowhook.registry import Handler


def fingerprint_of(handler: Handler, process_instance_id: str, inputs: Mapping[str, Any]) -> str:
    """What makes two calls 'the same call': handler, conversation and input variables."""
    canonical = json.dumps([handler.name, process_instance_id, inputs], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# Delete the dedupe entry only if it still names this job: never another call's newer entry.
# Also delete RQ's intermediate-queue mark of the job, which RQ's maintenance writes (to live a
# day) when it runs just as a worker has taken the job off the queue and not yet started it.
_RELEASE = """
redis.call('DEL', KEYS[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def release(job: Job, pipe: Pipeline) -> None:
    """Forget a job's dedupe entry once its outcome is final, so an identical call starts anew.

    The command goes into ``pipe``, which the caller sends with its own (workers/job.py).
    """
    dedupe_key = job.meta.get("dedupe")
    if dedupe_key:
        intermediate = IntermediateQueue(f"{Queue.redis_queue_namespace_prefix}{job.origin}", job.connection)
        # EVAL, not the registered script: in a pipeline redis-py asks SCRIPT EXISTS first, a round trip.
        pipe.eval(_RELEASE, 2, dedupe_key, intermediate.get_first_seen_key(job.id), job.id)
