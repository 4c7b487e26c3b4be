"""One job per identical call: the dedupe entry the web writes with a job, and its release.

The web process writes the entry in the script that enqueues the job (:func:`enqueue_once`, from
``flowhook.jobstore.JobStore.start``); the worker releases it once the job's outcome is final
(``workers/job.py``), so an identical call after that starts anew. Until then an identical call
that finds the job finished starts anew too.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.utils import now

from flowhook.registry import Handler


def fingerprint_of(handler: Handler, process_instance_id: str, inputs: Mapping[str, Any]) -> str:
    """What makes two calls 'the same call': handler, conversation and input variables."""
    canonical = json.dumps([handler.name, process_instance_id, inputs], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# The statuses of a job that is still to give its call an outcome: an identical call waits for it.
UNRESOLVED = tuple(s.value for s in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED))

# Enqueue the job unless the entry names an unresolved job (then return that job's id), in one step:
# no WATCH, no round trip to read the entry first. It writes what RQ's Queue.enqueue_job writes for
# a job without dependencies (tests/test_rq_pins.py holds the two side by side).
# KEYS: the entry, the job's hash, its queue, RQ's set of queues. ARGV: the job's id, the entry's
# lifetime (s), the job's TTL (s; -1: none), RQ's job key prefix, the number n of unresolved
# statuses, those n statuses, then the job's fields and values.
_ENQUEUE_ONCE = """
local running = redis.call('GET', KEYS[1])
local n = tonumber(ARGV[5])
if running then
    if running == ARGV[1] then
        return running  -- this call's own earlier try got through; its answer was lost
    end
    local status = redis.call('HGET', ARGV[4] .. running, 'status')
    for i = 6, 5 + n do
        if status == ARGV[i] then
            return running
        end
    end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[4], KEYS[3])
redis.call('HSET', KEYS[2], unpack(ARGV, 6 + n))
if tonumber(ARGV[3]) > 0 then
    redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('RPUSH', KEYS[3], ARGV[1])
return false
"""


@functools.cache
def _enqueue_once_script(connection: Redis) -> Script:
    return connection.register_script(_ENQUEUE_ONCE)


def enqueue_once(job: Job, queue: Queue, dedupe_key: str, lifetime: int) -> str:
    """Enqueue ``job`` with its dedupe entry, unless the entry names a job still unresolved.

    Args:
        job: The new job, without dependencies.
        queue: Its queue.
        dedupe_key: The call's dedupe entry.
        lifetime: Seconds the entry lives: the longest the job can stay unresolved.

    Returns:
        The id of the job that gives the call its outcome: ``job``'s, or an identical call's.
    """
    # What RQ sets as it enqueues a job (Queue._prepare_for_queue).
    job.origin = queue.name
    job.enqueued_at = now()
    job.redis_server_version = queue.get_redis_server_version()
    fields = job.to_dict()
    running = _enqueue_once_script(queue.connection)(
        keys=[dedupe_key, job.key, queue.key, queue.redis_queues_keys],
        args=[
            job.id,
            lifetime,
            job.ttl or -1,  # -1: none, as RQ keeps a job created without one
            job.redis_job_namespace_prefix,
            len(UNRESOLVED),
            *UNRESOLVED,
            *chain.from_iterable(fields.items()),
        ],
    )
    return cast(bytes, running).decode() if running else job.id


# Delete each dedupe entry only if it still names its job: never another call's newer entry. Also
# delete RQ's intermediate-queue mark of each job, which RQ's maintenance writes when it runs just as
# a worker has taken the job off the queue and not yet started it. KEYS: a job's dedupe entry and
# its mark, then the next job's; ARGV: the jobs' ids.
_RELEASE = """
for i = 1, #ARGV do
    redis.call('DEL', KEYS[2 * i])
    if redis.call('GET', KEYS[2 * i - 1]) == ARGV[i] then
        redis.call('DEL', KEYS[2 * i - 1])
    end
end
"""


def release(jobs: Iterable[Job], pipe: Pipeline) -> None:
    """Forget the jobs' dedupe entries once their outcomes are final, so an identical call starts anew.

    One command, which goes into ``pipe`` for the caller to send with its own (workers/job.py).
    """
    keys, job_ids = [], []
    for job in jobs:
        dedupe_key = job.meta.get("dedupe")
        if dedupe_key:
            intermediate = IntermediateQueue(f"{Queue.redis_queue_namespace_prefix}{job.origin}", job.connection)
            keys += [dedupe_key, intermediate.get_first_seen_key(job.id)]
            job_ids.append(job.id)
    if job_ids:
        # EVAL, not the registered script: in a pipeline redis-py asks SCRIPT EXISTS first, a round trip.
        pipe.eval(_RELEASE, len(keys), *keys, *job_ids)
