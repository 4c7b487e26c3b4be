"""Development helpers: the developer commands, handler tests' helper, what `make run` shares.

Nothing here serves a call in production, and the production image leaves it out
(``.dockerignore``); it needs ``requirements-local.txt`` (``make run`` installs it). `make run`
itself starts the app and the workers, so it lives above them, in the project's ``dev/``.
"""
