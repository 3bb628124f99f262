# The two commands a newcomer needs (see README.md):
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run the whole test suite (what CI runs)
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: lab test install install-test build grade-demo

install:
	$(PIP) install -e .

install-test:
	$(PIP) install -e ".[test]"

lab: install
	$(PYTHON) -m jupyter lab notebooks/

test: install-test
	$(PYTHON) -m pytest

build:
	$(PYTHON) -m autograder build
