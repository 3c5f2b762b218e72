PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test slow faults lint install bench bench-tools clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/taskwarden serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 4 -m "not slow" tests --ignore=tests/faults

# the tests that start servers or processes (serve --workers, the relay, the webhook sender, remote
# and killed workers, a NATS cluster, a Postgres outage) or run for many seconds: a tier of their
# own, so that make test stays well under ten minutes; CI runs it after make test
slow: $(STAMP)
	$(BIN)/python -m pytest -n 4 -m slow tests --ignore=tests/faults

# the fault suite (tests/faults): real processes and servers killed and restarted, one test at a
# time; each test may take 4 minutes at most, the whole suite 10 (SIGINT, so its fixtures still
# kill what it started)
faults: $(STAMP)
	timeout -s INT -k 30 600 $(BIN)/python -m pytest -m faults --timeout 240 tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .

# wrk, the load generator of bench/http_load.py (Debian package; without it the benchmark uses
# its Python client): installed by `make bench` only, CI runs no benchmarks
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q wrk >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q wrk >/dev/null 2>&1; } \
	  || echo "wrk not installed: bench/http_load.py uses its Python client"; }

bench: $(STAMP) bench-tools
	$(BIN)/python bench/append.py
	$(BIN)/python bench/audit_digest.py
	$(BIN)/python bench/create_tasks.py
	$(BIN)/python bench/execution.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/input_limits.py
	$(BIN)/python bench/costs.py
	$(BIN)/python bench/budgets.py
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/listings.py
	$(BIN)/python bench/snapshots.py
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) data
