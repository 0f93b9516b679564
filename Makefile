# The README's two commands. Both work on a machine that has only Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -c constraints.txt

.PHONY: demo test test-quick test-long install install-all clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# torch and torchvision first, alone, so the pins in constraints.txt are taken before any package asks for torch.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) torch torchvision
	$(PIP) -e .
	touch $@

$(VENV)/.installed-all: $(VENV)/.installed
	$(PIP) -e '.[all]'
	touch $@

install: $(VENV)/.installed
install-all: $(VENV)/.installed-all

demo: install
	$(BIN)/edgeprune demo

test: install-all
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 -m "not long"

# The inner loop: everything but the end-to-end tests marked slow (under 3 minutes).
test-quick: install-all
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not long"

test-long: install-all
	$(BIN)/python -m pytest -q -m long

clean:
	rm -rf $(VENV) build src/*.egg-info
