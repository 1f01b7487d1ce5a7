# Two commands do all set-up:  `make quickstart`  (the CPU quickstart, end to end, with a report)
#                              `make test`        (the test suite, incl. a micro end-to-end smoke run)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test quickstart study clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: a looser requirement would pull a multi-GB CUDA build (GPU users: install yours first)
	$(BIN)/pip install -q torch==2.13.0 || $(BIN)/python -c "import torch"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

quickstart: $(STAMP)
	$(BIN)/skillfactory run recipes/quickstart.yaml

study: $(STAMP)   # the 3-seed toy study behind docs/results/study (about an hour on 2 cores)
	$(BIN)/skillfactory run recipes/study.yaml

clean:
	rm -rf $(VENV) runs
