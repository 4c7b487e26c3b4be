"""A chat user's turn: whether a pending answer tells the flow to call again at once, or to ask.

LoyJoy's chat front end gives up on a turn after about 30 s (and sends the user's message again),
the calls of one turn adding up. A pending answer says ``<h>_next = poll`` while one more poll still
fits in the user's current turn, ``ask`` (a message and a "Check again" button) once it would not.
A turn begins with a call that does not continue an automatic loop: the first after a message of the
user, or after an ``ask``.

Where the turn began is kept in Redis (``keys.turn``, for the conversation and handler), since the
loop's next call may reach another web process; it lives no longer than a turn can. While Redis is
away the process keeps it itself: the loop's next call usually comes back on LoyJoy's keep-alive
connection, and one that reaches a process that does not know the turn's start asks the user.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import cast

from redis import Redis
from redis.exceptions import RedisError

from flowhook import defaults, keys
from flowhook.contract import ASK, PENDING, POLL, Envelope, flow_value
from flowhook.jobstore import owner_of
from flowhook.registry import Handler


class Turns:
    """Decides ``<h>_next`` for pending answers, and keeps where each turn began.

    Args:
        connection: The Redis that keeps the turns' starts.
        limit: Seconds a turn may last, the calls of an automatic loop adding up.
    """

    def __init__(self, connection: Redis, limit: float = defaults.TURN_LIMIT) -> None:
        self.connection = connection
        self.limit = limit
        # Turns' starts (wall clock) by key, written while Redis was away.
        self._kept_here: dict[str, float] = {}

    def next_step(self, handler: Handler, envelope: Envelope, started: float, *, redis_away: bool) -> str:
        """POLL when a poll's wait still fits in the turn of the call that arrived at ``started`` (monotonic), else ASK.

        The turn's start is kept for the next call when the answer is POLL.
        """
        key = keys.turn(owner_of(handler.name, envelope.process_instance_id))
        began: float | None = time.time() - (time.monotonic() - started)  # the call's arrival, wall clock
        if continues_loop(handler, envelope):
            began = self._began(key, redis_away)
        if began is None or time.time() - began + handler.settings.poll_wait >= self.limit:
            return ASK  # the turn's start is unknown (or expired: then it is surely over), or no poll fits
        self._keep(key, began, redis_away)
        return POLL

    def _began(self, key: str, redis_away: bool) -> float | None:
        stored = None
        if not redis_away:
            with contextlib.suppress(RedisError):  # then what this process kept, if anything
                stored = cast(bytes | None, self.connection.get(key))
        return float(stored) if stored is not None else self._kept_here.get(key)

    def _keep(self, key: str, began: float, redis_away: bool) -> None:
        if not redis_away:
            try:
                # A turn's start is of no use once the turn is surely over.
                self.connection.set(key, repr(began), ex=math.ceil(self.limit))
                self._kept_here.pop(key, None)
                return
            except RedisError:
                pass
        now = time.time()
        for old in [name for name, start in self._kept_here.items() if now - start > self.limit]:
            del self._kept_here[old]
        self._kept_here[key] = began


def continues_loop(handler: Handler, envelope: Envelope) -> bool:
    """Whether the call is the flow's automatic jump back after a pending answer that said POLL.

    LoyJoy sends back every variable: the last answer's ``<h>_status`` and ``<h>_next``. After a
    `done` answer ``<h>_next`` keeps its old value, so the status is looked at too.
    """
    variables = envelope.variables
    return (
        flow_value(variables.get(handler.next_variable)) == POLL
        and flow_value(variables.get(f"{handler.namespace}_status")) == PENDING
    )
