"""Development tooling: `make run`, the developer commands, handler tests' helper.

Nothing here serves a call in production, and the production image leaves it out
(``.dockerignore``); it needs ``requirements-local.txt`` (``make run`` installs it).
"""
