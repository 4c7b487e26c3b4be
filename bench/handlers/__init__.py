"""Handlers for the benchmarks (FLOWHOOK_HANDLERS=bench.handlers)."""

# Workers import this package at start, so the raw RQ baseline's job is preloaded in them just as
# Flowhook's own job function is: a forked work horse must not import it anew for every job.
from bench import jobs as jobs
