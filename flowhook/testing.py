"""Run a handler directly in a test, the way a worker would, without Redis or HTTP."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flowhook.call import Call
from flowhook.registry import discover
from flowhook.settings import Settings


def run(
    name: str,
    variables: Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    package: str = "handlers",
    process_instance_id: str = "test-instance",
) -> dict[str, str]:
    """Validate ``variables`` with the handler's schema, run it, and return its answer variables.

    Raises:
        marshmallow.ValidationError: when the variables fail the handler's schema (``invalid``).
        Exception: whatever the handler raised (``failed``).
    """
    handler = discover(Settings(handlers_package=package))[name]
    call = Call(
        handler=name,
        process_instance_id=process_instance_id,
        process_definition_id=None,
        params=params or {},
        variables=handler.load(handler.inputs(variables)),
        idempotency_key="test-idempotency-key",
        deadline=time.monotonic() + handler.settings.job_timeout,
    )
    return handler.run(call)
