# Two commands do all the set-up (see README):
#   make demo   - create .venv, install, run `nnaudio-data run` on the bundled data
#   make test   - create .venv, install with the test extras, run ruff, mypy and pytest
# PYTHON picks the interpreter (3.10+); TORCH picks the torch build installed first (the CPU
# wheel here; `make TORCH=torch test` lets pip choose, e.g. a CUDA build). constraints.txt keeps
# that torch while the test extras install (edit it with TORCH).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	# openai-whisper (a front-end reference of the tests) without its dependencies: it names
	# triton, which would pull a CUDA torch; what `import whisper` needs is in the test extra.
	$(BIN)/python -m pip install --quiet --no-deps "openai-whisper==20250625"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/nnaudio-data run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
