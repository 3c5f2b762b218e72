PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint install bench clean

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
	$(BIN)/python -m pytest -n 4 tests

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/append.py
	$(BIN)/python bench/create_tasks.py
	$(BIN)/python bench/execution.py
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) data
