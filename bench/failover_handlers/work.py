"""Two seconds of work in a worker; every execution is written down outside Redis, before the work.

The kit counts executions from that file, not from Redis, so an execution whose outcome Redis never
received (the worker lost Redis, the master died) is still counted: that is how it finds work that ran
twice, or work that was answered `done` without ever running.
"""

from __future__ import annotations

import os
import time

from marshmallow import Schema, fields

from flowhook import Call

SETTINGS = {"runs_in": "worker"}
WORK_SECONDS = 2.0


class Input(Schema):
    # "conversation-turn": which turn of which conversation this is, so executions can be matched.
    turn = fields.String(required=True)


def handle(call: Call) -> dict[str, str]:
    """Note the execution (one short O_APPEND write: lines of concurrent jobs never mix), then work."""
    descriptor = os.open(os.environ["FAILOVER_EXECUTIONS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, f"{call.variables['turn']}\n".encode())
    finally:
        os.close(descriptor)
    time.sleep(WORK_SECONDS)
    return {"turn": call.variables["turn"]}
