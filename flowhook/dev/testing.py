"""Run a handler directly in a test, the way a worker would, without Redis or HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flowhook import defaults
from flowhook.call import make_call
from flowhook.registry import discover
from flowhook.settings import Settings


def run(
    name: str,
    variables: Mapping[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    package: str | None = None,
    process_instance_id: str = "test-instance",
    progress: list[str] | None = None,
) -> dict[str, str]:
    """Validate ``variables`` with the handler's schema, run it, and return its answer variables.

    Args:
        name: The handler's module name.
        variables: The conversation's variables, as LoyJoy would send them.
        params: Browser parameters.
        package: The handlers package; by default ``FLOWHOOK_HANDLERS`` (``handlers`` when unset),
            as the service finds it. No other setting is read: a handler test does not depend on
            the shell's settings.
        process_instance_id: The conversation's id.
        progress: When given, collects every value the handler reported with ``call.progress()``.

    Returns:
        The handler's variables as the flow receives them, every value a string (``3`` as ``"3"``,
        ``True`` as ``"true"``, ``None`` as ``""``, lists and dicts as JSON); no status variables.

    Raises:
        marshmallow.ValidationError: when the variables fail the handler's schema (``invalid``).
        Exception: whatever the handler raised (``failed``).
    """
    package = package or os.environ.get("FLOWHOOK_HANDLERS") or defaults.HANDLERS_PACKAGE
    handler = discover(Settings(handlers_package=package))[name]
    payload = {
        "process_instance_id": process_instance_id,
        "params": dict(params or {}),
        "variables": handler.inputs(variables),
    }
    call = make_call(
        handler,
        payload,
        idempotency_key="test-idempotency-key",
        deadline=time.monotonic() + handler.settings.job_timeout,
        report_progress=progress.append if progress is not None else lambda _: None,
    )
    return handler.run(call)
