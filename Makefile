# Two commands set up and test everything: `make setup`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-fast test-min lint typecheck unit docs bench-quick sample soak

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,serve,ray,tesseract,bench,docs]'
	$(BIN)/ocrpool doctor --fix
	$(BIN)/ocrpool doctor --engine tesseract --fix

test: lint typecheck unit docs

lint:
	$(BIN)/ruff check ocrpool tests benchmarks scripts
	$(BIN)/ruff format --check ocrpool tests benchmarks scripts

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q

# The documentation site (site/): fails on a broken link, anchor or API reference.
docs:
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Under a minute: every test but the slow ones (about 1.5 s or more, by --durations: chaos
# episodes, Ray, the services, ocrpool run stopped and resumed...) and the real-engine
# ones; `make test` and CI run them all.
test-fast:
	$(BIN)/pytest -q -m "not slow and not aspose and not tesseract"

# The fast tests and the Ray backend's on the lowest versions pyproject.toml allows (each
# requirement of the package and its serve, ray and tesseract extras pinned to its >= bound;
# the test tools as they come), in a virtual environment of its own.
VENV_MIN ?= .venv-min
test-min:
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/pip install --quiet --upgrade pip
	$(PYTHON) scripts/lower_bounds.py serve ray tesseract > $(VENV_MIN)/lower-bounds.txt
	$(VENV_MIN)/bin/pip install --quiet --constraint $(VENV_MIN)/lower-bounds.txt \
		-e '.[dev,serve,ray,tesseract]'
	$(VENV_MIN)/bin/pip freeze --exclude-editable > $(VENV_MIN)/installed.txt
	$(VENV_MIN)/bin/pytest -q -p no:cacheprovider -m "not slow and not aspose and not tesseract"
	$(VENV_MIN)/bin/pytest -q -p no:cacheprovider tests/test_scaleout.py tests/test_scaleout_nodes.py

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
