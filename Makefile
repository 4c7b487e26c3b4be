# Flowhook: `make run` serves, `make test` tests. Both create .venv and install what they need:
# `make run` the runtime dependencies and what running locally takes (requirements-local.txt),
# `make test` also the test and lint tools (requirements-dev.txt).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKERS ?= 2
# Test processes (pytest-xdist): three on two cores, as most tests wait rather than compute;
# TEST_PROCESSES=0 runs them in this process (one at a time, for pdb).
TEST_PROCESSES ?= 3
SOAK_MINUTES ?= 3
FAILOVER_ARGS ?=
COMPOSE_CHECK_PROJECT ?= flowhook-check

# `make` alone lists the targets; it starts nothing.
.DEFAULT_GOAL := help

.PHONY: help run test test-fast test-rq-next rq-suite install lint bench bench-smoke soak failover compose-check monitor-check prometheus chromium wrk clean

help:  ## list the targets with what each does (the default: `make` alone)
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-zA-Z][a-zA-Z_-]*:.*## / { printf "  make %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: $(VENV)/.installed-local  ## Redis (private unless REDIS_URL is set), web and workers, reloaded on edit, until Ctrl-C
	$(BIN)/python -m dev.run --workers $(WORKERS)

test: $(VENV)/.installed  ## everything CI runs: ruff, ruff format --check, mypy and every test, with the coverage figure (private Redis unless REDIS_URL is set)
	@command -v chromium >/dev/null || $(MAKE) --no-print-directory chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_PROCESSES) --cov --cov-report=term

test-fast: $(VENV)/.installed  ## the quick loop while editing, under a minute: unit and workers tests, no e2e or slow ones
	FLOWHOOK_HYPOTHESIS_PROFILE=fast $(BIN)/pytest -n $(TEST_PROCESSES) -m "not e2e and not slow" -q

# The worker tests, on RQ's newest release from the package index instead of the pinned one: an
# upgrade's breakage shows here in minutes (the pins in tests/test_rq_pins.py name what changed).
RQ_NEXT_VENV := .venv-rq-next
RQ_WORKER_TESTS := tests/test_rq_pins.py tests/test_rq_tools.py tests/test_worker_path.py tests/test_concurrency.py \
	tests/test_worker_faults.py tests/test_retries.py tests/test_shutdown.py

test-rq-next:  ## the worker tests on RQ's newest release (its own .venv-rq-next; minutes), before raising the pin
	@test -x $(RQ_NEXT_VENV)/bin/python || $(PYTHON) -m venv $(RQ_NEXT_VENV)
	$(RQ_NEXT_VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(RQ_NEXT_VENV)/bin/python -m pip install --disable-pip-version-check -q --upgrade rq
	@$(RQ_NEXT_VENV)/bin/python -c "import rq; print('make test-rq-next: RQ', rq.__version__, '(pinned:', open('requirements.txt').read().split('rq==')[1].split()[0] + ')')"
	$(RQ_NEXT_VENV)/bin/pytest -p no:cacheprovider -q $(RQ_WORKER_TESTS)

# RQ's own test suite (from the pinned release's source, downloaded once into .flowhook/rq-suite/),
# run with RQ's workers and with the pool class in their place: see docs/rq-suite.md.
rq-suite: $(VENV)/.installed  ## RQ's own tests with RQ's workers, then with the pool class (downloads its source; about 5 min)
	$(BIN)/python -m dev.rq_suite

bench: $(VENV)/.installed  ## the benchmarks (minutes; installs wrk as root); results in docs/benchmarks.md
	@command -v wrk >/dev/null || $(MAKE) --no-print-directory wrk
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.installed  ## every benchmark scenario once, briefly, to check the harness (about 1.5 min; also run by the tests)
	$(BIN)/python -m bench --smoke

soak: $(VENV)/.installed  ## minutes of mixed calls under load; results in docs/reliability.md
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

failover: $(VENV)/.installed  ## Redis killed, and web and workers restarted one by one, under chat load (FAILOVER_ARGS=--partition, as root: also cut off); results in docs/reliability.md
	$(BIN)/python -m bench.failover $(FAILOVER_ARGS)

compose-check: $(VENV)/.installed  ## build the image, run docker-compose.yml with docker or podman and check it (minutes)
	$(BIN)/python -m deploy.compose_check --project $(COMPOSE_CHECK_PROJECT)

monitor-check: $(VENV)/.installed  ## promtool on the alert rules, then a real Prometheus scrapes the running make run (or URL=...)
	@command -v prometheus >/dev/null || $(MAKE) --no-print-directory prometheus
	$(BIN)/python -m deploy.monitor_check $(if $(URL),--url $(URL))

prometheus:  ## install Prometheus and promtool (Debian's package) when running as root
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq prometheus; \
	else \
		echo "make monitor-check needs Prometheus: sudo apt-get install prometheus (or your system's package)"; exit 1; \
	fi

chromium:  ## install the browser that tests /docs (Debian's package) when running as root
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium || echo "make: chromium not installed: the test of /docs in a browser is skipped"; \
	else \
		echo "make: no chromium, so the test of /docs in a browser is skipped: sudo apt-get install chromium"; \
	fi

wrk:  ## install the load generator (Debian's package) when running as root
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq wrk; \
	else \
		echo "make bench needs wrk: sudo apt-get install wrk (or your system's package)"; exit 1; \
	fi

install: $(VENV)/.installed  ## only create .venv with everything: the service, make run's tools, pytest, ruff, mypy

lint: $(VENV)/.installed  ## apply ruff's fixes and its formatting, then fail if ruff still finds an error
	$(BIN)/ruff check --fix --exit-zero --silent .
	$(BIN)/ruff format .
	$(BIN)/ruff check .

$(VENV)/.installed-local: requirements.txt requirements-local.txt
	@test -x $(BIN)/python || { echo "make: creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing what make run needs into $(VENV) (the first time takes a minute or two)"
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-local.txt
	touch $@

$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt
	@test -x $(BIN)/python || { echo "make: creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing the test and lint tools into $(VENV) (the first time takes a minute or two)"
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed-local

clean:  ## remove the virtual environment and the local Redis data
	rm -rf $(VENV) $(RQ_NEXT_VENV) .flowhook .pytest_cache .mypy_cache .ruff_cache
