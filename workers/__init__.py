"""The worker side of Flowhook: RQ workers that run the jobs the web service started.

- ``__main__.py``: ``python -m workers`` (patches with gevent first for the ``pool`` class).
- ``job.py``: the job itself, ``workers.job.run_handler``: one handler for one call.
- ``pool.py``: the default worker class, many jobs at once (``FLOWHOOK_WORKER_CONCURRENCY``);
  ``classes.py``: the ``simple`` and ``fork`` classes; ``base.py``: what every class shares.
- ``heartbeat.py``, ``timeouts.py``: keeping running jobs alive in RQ's registries, and ending them
  at their timeout.
"""
