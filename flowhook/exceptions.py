"""Exceptions, as a plain list."""

from __future__ import annotations


class FlowhookError(Exception):
    """Base class for Flowhook's own errors."""


class ConfigurationError(FlowhookError):
    """A setting from the environment is missing or out of range."""


class HandlerModuleError(FlowhookError):
    """A module in the handlers package cannot be used; stops start-up."""


class HandlerError(FlowhookError):
    """Raised by a handler to fail the call with a message meant for the flow.

    The message becomes ``<h>_error`` as it is, so keep it short and free of personal data.
    """


class RetryableError(HandlerError):
    """Raised by a handler when trying again later may succeed (a timeout, a 503).

    The work is retried as the handler's ``retries`` and ``retry_intervals`` settings say; when
    they are used up, the call fails with this message.
    """


class JobEnded(BaseException):
    """Raised into a running handler to end its job early.

    A ``BaseException``, as Celery's gevent pool and dramatiq raise theirs: a handler's
    ``except Exception`` (a retry loop, say) cannot keep a job past it.
    """


class JobTimedOut(JobEnded):
    """The job ran past its ``job_timeout``."""


class JobInterrupted(JobEnded):
    """The job's worker stops at once (a second SIGTERM or Ctrl-C)."""


class JobStopped(JobEnded):
    """An operator stopped the job (RQ's ``send_stop_job_command``)."""
