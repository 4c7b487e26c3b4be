"""RQ's own command line on the service's Redis: ``.venv/bin/rq info -c flowhook.dev.rq_config``.

RQ reads ``REDIS_URL`` from this module: the service's Redis as the developer commands find it
(``REDIS_URL`` when set, else the running `make run`'s private one), or one line saying there is none.
"""

from __future__ import annotations

import os

from flowhook.dev.runfile import service_redis_url
from flowhook.exceptions import FlowhookError
from flowhook.settings import Settings

try:
    REDIS_URL = service_redis_url(Settings.from_env(), redis_url_given=bool(os.environ.get("REDIS_URL")))
except FlowhookError as error:
    raise SystemExit(f"flowhook: {error}") from None
