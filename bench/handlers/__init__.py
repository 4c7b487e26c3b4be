"""Handlers for the benchmarks (FLOWHOOK_HANDLERS=bench.handlers)."""
