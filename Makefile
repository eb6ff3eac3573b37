# Two commands set up and test everything: `make setup`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-fast lint typecheck unit bench-quick sample soak

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,serve,ray,tesseract,bench]'
	$(BIN)/ocrpool doctor --fix
	$(BIN)/ocrpool doctor --engine tesseract --fix

test: lint typecheck unit

lint:
	$(BIN)/ruff check ocrpool tests benchmarks
	$(BIN)/ruff format --check ocrpool tests benchmarks

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q

# Under a minute: every test but the slow ones (about 1.5 s or more, by --durations: chaos
# episodes, Ray, the services, ocrpool run stopped and resumed...) and the real-engine
# ones; `make test` and CI run them all.
test-fast:
	$(BIN)/pytest -q -m "not slow and not aspose and not tesseract"

sample:
	$(BIN)/ocrpool run examples/images --out results.jsonl

# The consolidated comparison's smoke run (the fake workloads, 2 short rounds), into build/.
bench-quick:
	$(BIN)/python -m benchmarks --quick --out build/bench-quick

# The long reliability runs behind the README's Reliability figures (about an hour on 2 cores).
soak:
	$(BIN)/python -m tests.reliability soak
	$(BIN)/python -m tests.reliability run-chaos
	$(BIN)/python -m tests.reliability aspose
	$(BIN)/python -m tests.reliability tesseract
