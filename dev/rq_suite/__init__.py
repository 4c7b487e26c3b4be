"""RQ's own test suite, run with Flowhook's ``pool`` worker in place of RQ's: ``make rq-suite``.

``python -m dev.rq_suite`` (``__main__.py``) downloads the source release of the RQ that
requirements.txt pins, runs its tests once with RQ's workers and once with the pool class, against
a private redis-server, and compares both with the failures expected of the pool
(``expected_failures.toml``). Every Python process of a run, the suite's and the workers RQ's tests
start, first runs ``site/sitecustomize.py``: it sends the suite's Redis to the private server
(``redirect.py``) and, for the pool, patches the process with gevent and substitutes the class
(``substitute.py``). ``plugin.py`` records each test's outcome and bounds its time. See
docs/rq-suite.md.
"""
