# Two commands for a new user: `make run` (ingest samples/ into ./nianbao.db and print a
# summary) and `make test`. Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint eval bench

# The C extension builds at install, in place: a changed source needs a new install too.
$(BIN)/nianbao: pyproject.toml $(wildcard parsers/*.c)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/nianbao
	$(BIN)/nianbao ingest samples/

test: $(BIN)/nianbao
	$(BIN)/pytest -q

lint: $(BIN)/nianbao
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

eval: $(BIN)/nianbao
	$(BIN)/nianbao eval samples/

bench: $(BIN)/nianbao
	$(BIN)/python bench/bench_parse.py
