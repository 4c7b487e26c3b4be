"""Shared by the I/O handlers: one call to the sleepy loopback server, written as plain sync code."""

from __future__ import annotations

import os

import requests
from requests.adapters import HTTPAdapter

from flowhook import Call, RetryableError

# One session per process keeps connections alive between calls, as a handler calling an API
# should; its pool is as large as the number of calls a process serves at once.
session = requests.Session()
session.mount("http://", HTTPAdapter(pool_maxsize=1000))


def wait_on_io(call: Call) -> dict[str, str]:
    """GET the sleepy server (it answers after 1 s), bounded by the time left."""
    try:
        response = session.get(os.environ["BENCH_IO_URL"], timeout=max(0.05, call.remaining()))
    except requests.RequestException as error:
        raise RetryableError("the slow API did not answer") from error
    return {"io": response.text}
