"""Shared by the I/O handlers: one call to the sleepy loopback server, written as plain sync code."""

from __future__ import annotations

import os

import requests

from flowhook import Call, RetryableError


def wait_on_io(call: Call) -> dict[str, str]:
    """GET the sleepy server (it answers after BENCH_IO_DELAY seconds), bounded by the time left."""
    try:
        response = requests.get(os.environ["BENCH_IO_URL"], timeout=max(0.05, call.remaining()))
    except requests.RequestException as error:
        raise RetryableError("the slow API did not answer") from error
    return {"io": response.text}
