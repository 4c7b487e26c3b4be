# Flowhook: `make run` serves, `make test` tests. Both create .venv and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKERS ?= 2
SOAK_MINUTES ?= 3
COMPOSE_CHECK_PROJECT ?= flowhook-check

.PHONY: run test lint bench bench-smoke soak compose-check wrk clean

run: $(VENV)/.installed  ## Redis (private unless REDIS_URL is set), web and workers, until Ctrl-C
	$(BIN)/python -m flowhook.local --workers $(WORKERS)

test: $(VENV)/.installed  ## ruff, mypy and the whole pytest suite (private Redis unless REDIS_URL is set)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(VENV)/.installed  ## the benchmarks (minutes); results in docs/benchmarks.md
	@command -v wrk >/dev/null || $(MAKE) --no-print-directory wrk
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.installed  ## seconds-long run of the benchmark harness (also run by the tests)
	$(BIN)/python -m bench --smoke

soak: $(VENV)/.installed  ## minutes of mixed calls under load; results in docs/reliability.md
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

compose-check: $(VENV)/.installed  ## build the image, run docker-compose.yml with docker or podman and check it (minutes)
	$(BIN)/python -m deploy.compose_check --project $(COMPOSE_CHECK_PROJECT)

wrk:  ## install the load generator (Debian's package) when running as root
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq wrk; \
	else \
		echo "make bench needs wrk: sudo apt-get install wrk (or your system's package)"; exit 1; \
	fi

lint: $(VENV)/.installed  ## fix what ruff can fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

clean:  ## remove the virtual environment and the local Redis data
	rm -rf $(VENV) .flowhook .pytest_cache .mypy_cache .ruff_cache
