# signattn_driver developer entry points. Quick start: `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# DDS stays on this machine; each test picks its own ROS_DOMAIN_ID (test/conftest.py).
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= 17
export FASTDDS_BUILTIN_TRANSPORTS ?= LARGE_DATA
# `pip install .` puts launch/ and config/ under the venv's share/: let ament find them there.
export AMENT_PREFIX_PATH := $(abspath $(VENV))$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH))
PYTEST_ARGS ?=

.PHONY: venv install test demo reproduce bench lint clean

$(BIN)/.deps-stamp: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade -r requirements.txt -c constraints.txt
	touch $@

venv: $(BIN)/.deps-stamp

install: venv
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation .

test: install
	$(BIN)/python -m pytest test $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo 'pytest collected no tests'; exit 0; fi; exit $$rc

demo: install
	$(BIN)/signattn demo

bench: install
	$(BIN)/signattn benchmark predictor --out docs/results/predictor_cpu.json

clean:
	rm -rf $(VENV) build *.egg-info outputs
