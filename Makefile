# The two commands a newcomer needs (see README.md):
#   make lab    set everything up and open the course in JupyterLab (a student's interface)
#   make test   set everything up and run the whole test suite (what CI runs)
# and for instructors and authors:
#   make instructor-lab   JupyterLab with nbgrader's full interface (Formgrader, Create Assignment)
#   make build            regenerate notebooks/ and solutions/ from source/
#   make verify NB=03     check one notebook as CI does (python -m autograder verify)
#   make seeds NB=03      its hidden tests under 100 grading seeds (SEEDS=500 for more)
#   make docs             the API reference from the docstrings (pdoc) into docs/api/
#
# Which Python: inside an active virtual or conda environment (VIRTUAL_ENV / CONDA_PREFIX set)
# and on CI (CI set: the image already holds the packages, a fresh environment would reinstall
# PyTorch and TensorFlow on every run), the course is installed into that environment's python3.
# Everywhere else into a project-local .venv, created on first use and reinstalled only when
# pyproject.toml is newer than its stamp. PYTHON=/path/to/python chooses an interpreter outright.
# Extra JupyterLab flags: make lab LAB_ARGS="--port 8899 --no-browser".
VENV := .venv
BOOTSTRAP_PYTHON ?= python3
ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)$(CI)),)
PYTHON ?= python3
endif
PYTHON ?= $(VENV)/bin/python
LAB_ARGS ?=

# JupyterLab refuses to start as root (Docker, CI images) unless told to.
ifeq ($(shell id -u 2>/dev/null),0)
ROOT_FLAG := --allow-root
endif
# The student's lab: nbgrader's Validate button only. jupyter/student/ disables the instructor
# plugins (Formgrader, Create Assignment, Assignments and Courses panels); their server parts are
# switched off here so that nothing lists the masters, looks for an exchange or writes a gradebook.
STUDENT_CONFIG := JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter/student$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))"
STUDENT_FLAGS := $(foreach ext,formgrader assignment_list course_list,--ServerApp.jpserver_extensions=nbgrader.server_extensions.$(ext)=False)

ifeq ($(PYTHON),$(VENV)/bin/python)
# The .venv: installs happen when a stamp is missing or older than pyproject.toml.
INSTALL_LAB := $(VENV)/.installed-course
INSTALL_TEST := $(VENV)/.installed-course-test
AUTHOR_SETUP := $(INSTALL_TEST)
else
INSTALL_LAB := install
INSTALL_TEST := install-test
# verify and seeds use the active environment as it is (no reinstall on every check)
AUTHOR_SETUP :=
endif

.PHONY: lab instructor-lab test install install-test build verify seeds docs

lab: $(INSTALL_LAB)
	$(STUDENT_CONFIG) $(PYTHON) -m jupyter lab $(ROOT_FLAG) $(STUDENT_FLAGS) notebooks/ $(LAB_ARGS)

instructor-lab: $(INSTALL_LAB)
	$(PYTHON) -m jupyter lab $(ROOT_FLAG) $(LAB_ARGS)

test: $(INSTALL_TEST)
	$(PYTHON) -m pytest

install:
	$(PYTHON) -m pip install -e ".[course]"

install-test:
	$(PYTHON) -m pip install -e ".[course,test]"

$(VENV)/bin/python:
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)

$(VENV)/.installed-course: pyproject.toml | $(VENV)/bin/python
	$(PYTHON) -m pip install -e ".[course]"
	touch $@

$(VENV)/.installed-course-test: pyproject.toml | $(VENV)/bin/python
	$(PYTHON) -m pip install -e ".[course,test]"
	touch $@ $(VENV)/.installed-course

build:
	$(PYTHON) -m autograder build

verify: $(AUTHOR_SETUP)
	@test -n "$(NB)" || { echo "which notebook? make verify NB=03_weight_penalties (or NB=03)"; exit 2; }
	$(PYTHON) -m autograder verify $(NB)

seeds: $(AUTHOR_SETUP)
	@test -n "$(NB)" || { echo "which notebook? make seeds NB=03_weight_penalties (or NB=03)"; exit 2; }
	$(PYTHON) -m autograder seed-sweep $(NB) --seeds $(or $(SEEDS),100)

docs: $(AUTHOR_SETUP)
	$(PYTHON) scripts/build_api_docs.py docs/api
