# Two commands: `make run` serves the demo, `make test` runs the whole suite against real services.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test services clean

$(BIN)/python:
	PYTHON=$(PYTHON) scripts/make-venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml tests/plugins/sample_plugin/pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	# A third-party plugin, installed as a real distribution, that the tests use end to end.
	$(BIN)/pip install --quiet -e tests/plugins/sample_plugin
	touch $@

# The demo's DEALFLOW_SECRET_KEY (it encrypts stored secrets), made once and kept: a new key
# could not read what the old one encrypted. An exported DEALFLOW_SECRET_KEY wins.
SECRET_FILE := .dealflow-secret-key
$(SECRET_FILE):
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

run: $(VENV)/.installed $(SECRET_FILE)
	export DEALFLOW_SECRET_KEY="$${DEALFLOW_SECRET_KEY:-$$(cat $(SECRET_FILE))}" && \
	$(BIN)/dealflow migrate && \
	$(BIN)/dealflow demo --host $(HOST) --port $(PORT) && \
	exec $(BIN)/dealflow serve --host $(HOST) --port $(PORT)

services:
	scripts/ensure-services

test: $(VENV)/.installed-test services
	$(BIN)/pytest -n 2

clean:
	rm -rf $(VENV) dealflow.db dealflow.db-wal dealflow.db-shm $(SECRET_FILE)
