PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test faults lint install bench clean

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
	$(BIN)/python -m pytest -n 4 tests --ignore=tests/faults

# the fault suite (tests/faults): real processes and servers killed and restarted, one test at a
# time; each test may take 4 minutes at most, the whole suite 10 (SIGINT, so its fixtures still
# kill what it started)
faults: $(STAMP)
	timeout -s INT -k 30 600 $(BIN)/python -m pytest -m faults --timeout 240 tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/append.py
	$(BIN)/python bench/audit_digest.py
	$(BIN)/python bench/create_tasks.py
	$(BIN)/python bench/execution.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/input_limits.py
	$(BIN)/python bench/costs.py
	$(BIN)/python bench/budgets.py

clean:
	rm -rf $(VENV) data
