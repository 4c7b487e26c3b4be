"""Test-only handlers, served by the test app and the test workers (FLOWHOOK_HANDLERS=tests.handlers)."""
