"""The project's own development tools, which start or test what is built on the engine.

- ``run.py``: `make run` (Redis, web and workers, reloaded on edit); ``stack.py``: the web service
  and the workers under honcho, and the code check before a reload.
- ``rq_suite/``: `make rq-suite`, RQ's own tests with the ``pool`` worker in place of RQ's.

They import the app and the workers, so they live above them, not in the engine: ``flowhook/dev``
holds the development helpers the engine's own commands and handler tests use. Not in the
production image.
"""
