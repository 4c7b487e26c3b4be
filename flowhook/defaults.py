"""Default values, one place to read them all."""

from __future__ import annotations

# LoyJoy gives up after about 20 s; a budget must leave room for the network and for other
# modules in the same chat turn, so no budget may come near it.
MAX_BUDGET = 15.0
BUDGET = 5.0
# A poll (a call that carries <h>_job) starts no work and only waits for the job, so it may wait
# longer than a new call: up to this (seconds), answered the moment the job ends. It must stay
# below LoyJoy's 20 s (LIMIT_POLL_WAIT: a setting at or above it is refused at start-up).
POLL_WAIT = 15.0
LIMIT_POLL_WAIT = 20.0
# LoyJoy's chat front end gives up on a turn (and sends the user's message again) after about
# 30 s, the calls of one turn adding up. A pending answer tells the flow to poll again at once
# (<h>_next = poll) only while the turn so far plus that poll's wait stays under this (seconds);
# a flow with other slow modules in the same turn wants less (FLOWHOOK_TURN_LIMIT).
TURN_LIMIT = 28.0
LIMIT_TURN = 30.0

REDIS_URL = "redis://127.0.0.1:6379/0"
# Longest wait (seconds) for Redis to answer one command: a Redis that hangs (paused, or packets
# dropped on the way) makes calls answer `failed` after this, not after LoyJoy has given up.
# Commands take well under a millisecond; a long-poll blocks in slices shorter than this.
REDIS_TIMEOUT = 0.8
# While Redis is away, calls and polls keep trying it within their budget; then a poll answers
# `pending` with the same job, and a new call `pending` with no job (the flow's loop calls again and
# that call starts the work). Once Redis has been away this long (seconds), both answer `failed`
# "temporarily unavailable", so that a flow never polls forever.
OUTAGE_LIMIT = 60
# How long gunicorn keeps an idle keep-alive connection open (seconds): longer than the idle
# timeout of the proxies and load balancers in front (nginx and cloud balancers keep theirs 60 s),
# so that the proxy, never gunicorn, closes an idle connection, and no request races a close.
KEEPALIVE = 75
# The name Redis Sentinel knows the master by, when FLOWHOOK_SENTINELS is set.
SENTINEL_MASTER = "mymaster"
QUEUE_NAME = "flowhook"
HANDLERS_PACKAGE = "handlers"
PORT = 8000
# The address the web service listens on: this machine only, unless a setting opens it up (the
# container image sets 0.0.0.0, and compose publishes the port on 127.0.0.1 of the host).
HOST = "127.0.0.1"
# Where `make run` writes what it started (its Redis URL, port and process id) for the developer
# commands, relative to the project's folder; removed when it stops.
STATE_FILE = ".flowhook/run.json"
# gunicorn: processes, and concurrent calls in each (gevent greenlets: a waiting call costs little).
WEB_PROCESSES = 2
WEB_CONNECTIONS = 1000

# Request bodies above this are refused with 413 before they are parsed.
MAX_BODY_BYTES = 256 * 1024

# RQ worker class: "pool" runs many jobs at once in one process (gevent: handlers wait on I/O);
# "simple" and "fork" run one job at a time, in the worker process or in a child process of its own.
WORKER_CLASS = "pool"
# Jobs of one handler that one "pool" worker runs at once: each handler has slots of its own, so a
# handler whose back end is slow never takes the slots of another. Waiting jobs cost little (a
# greenlet each); a handler's SETTINGS["concurrency"] lowers it to spare a fragile back end.
WORKER_CONCURRENCY = 100
# Longest single wait (seconds) of a pool worker for its next job: how soon it notices a stop.
DEQUEUE_BLOCK = 1
# A handler that holds a pool worker's event loop this long (seconds) is named in the log: its
# neighbours waited that long. Such a handler should say SETTINGS["cpu_bound"] = True.
MAX_BLOCKING_TIME = 1.0
# How often (seconds) a worker cleans RQ's registries of expired entries (RQ's default is 10 min):
# this is what answers a dead worker's job when no flow polls for it.
MAINTENANCE_INTERVAL = 15
# Longest a process holds the lock on one queue's registry clean-up (seconds; it takes milliseconds):
# what a process that dies holding it delays the next clean-up by.
MAINTENANCE_LOCK_TTL = 30
# A job taken from its queue but not started this long after (seconds; a start takes milliseconds)
# lost its worker, or Redis's reply to the worker: it goes back to its queue (connection.py).
UNSTARTED_AFTER = 10
# How long maintenance's note that it saw such a job lives (seconds): past the next clean-ups.
FIRST_SEEN_TTL = 4 * MAINTENANCE_INTERVAL
# A running job's heartbeat, renewed every quarter of this: a job whose worker died is reaped as
# abandoned this many seconds after its last one (RQ's own simple worker: the job timeout + 60 s).
# Longer rides out longer Redis outages without reaping jobs that are in fact still running.
HEARTBEAT_TTL = 20
# RQ's worker TTL: a worker's registration expires WORKER_TTL + 60 s after its last heartbeat (RQ
# adds the minute). Workers check in every second, idle or not: liveness is WORKER_SILENCE.
WORKER_TTL = 30
# /readyz counts a worker silent this long (seconds; or half FLOWHOOK_HEARTBEAT_TTL, if longer) as
# missing: dead, or cut off from Redis. Workers check in every second, and every 5 s mid-job.
WORKER_SILENCE = 10

# How long a job may run in a worker before it is stopped and answered `failed`.
JOB_TIMEOUT = 180
# A job that ends early (its timeout, an operator's stop, a cold stop) gives its handler this long
# (seconds) to unwind; a handler still running then is left detached and its job answered anyway.
JOB_END_GRACE = 3.0
# How long a job may wait in the queue for a free worker before it expires.
QUEUE_TTL = 600
# How long results (and failures) are kept for polls to pick up.
RESULT_TTL = 3600

# Longest id LoyJoy plausibly sends; anything longer is refused as malformed.
MAX_ID_LENGTH = 200
# Input limits beyond the body size: nesting inside params and variables, how many variables a
# call may carry, and how long one string value may be (in characters).
MAX_DEPTH = 16
MAX_VARIABLES = 500
MAX_VALUE_LENGTH = 65536
# Shortest token accepted in FLOWHOOK_TOKENS: anything shorter can be guessed.
MIN_TOKEN_LENGTH = 16
# Rate limits are off by default: counting costs a Redis round trip per call (docs/benchmarks.md),
# LoyJoy's poll loop has a user step in it, and LoyJoy calls from a few addresses for every
# conversation. docs/operations.md and SECURITY.md say when and how to switch them on.
RATE_LIMIT_CONVERSATION = ""
RATE_LIMIT_ADDRESS = ""

# Log lines as text for people, or one JSON object per line for a log pipeline (FLOWHOOK_LOG_FORMAT).
LOG_FORMAT = "text"
