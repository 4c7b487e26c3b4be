"""Start-up checks of the Redis that holds the jobs, as job-queue tools people trust do them."""

from __future__ import annotations

import logging
from typing import cast

from redis import Redis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)


def redis_warnings(connection: Redis) -> list[str]:
    """What about this Redis puts jobs or results at risk; empty when nothing does.

    A Redis that forbids CONFIG (some managed services do) cannot be checked and gets no warning.

    Raises:
        RedisError: when Redis cannot be reached.
    """
    config: dict[str, str] = {}
    try:
        for name in ("maxmemory-policy", "appendonly", "save"):  # one at a time: Redis 6 takes one
            config.update(cast(dict[str, str], connection.config_get(name)))
    except ResponseError:
        return []
    warnings = []
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        warnings.append(
            f"Redis maxmemory-policy is {policy}: when memory runs short Redis evicts queued jobs and "
            "results; set maxmemory-policy noeviction"
        )
    if config.get("appendonly") == "no" and not config.get("save"):
        warnings.append(
            "Redis keeps nothing on disk (appendonly no, no save points): a Redis restart loses every "
            "queued job and result; set appendonly yes (appendfsync everysec)"
        )
    return warnings


def warn_about_redis(connection: Redis, logger: logging.Logger = log) -> None:
    """Log each warning to ``logger``; a Redis that is not reachable yet is only named as such.

    The web service (gunicorn's ``when_ready``, with gunicorn's logger) and every worker run it once
    at start.
    """
    try:
        for warning in redis_warnings(connection):
            logger.warning(warning)
    except RedisError as error:
        logger.warning("cannot check Redis at start-up: %s", error)
