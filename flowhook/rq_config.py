"""RQ's own command line on the service's Redis: ``rq info -c flowhook.rq_config``.

RQ reads ``REDIS_URL`` from this module: the settings' ``REDIS_URL`` when it is set (always, in a
container); in development without it, the running `make run`'s private Redis
(``flowhook.dev.runfile``), or one line saying there is none, rather than a guess at a Redis that
may be someone else's.
"""

from __future__ import annotations

import importlib.util

from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings

_settings = Settings.from_env()
if importlib.util.find_spec("flowhook.dev") is None:  # the production image: no `make run` to look for
    REDIS_URL = _settings.redis_url
else:
    from flowhook.dev.runfile import service_redis_url

    try:
        REDIS_URL = service_redis_url(_settings)
    except FlowhookError as error:
        raise SystemExit(f"flowhook: {error}") from None
