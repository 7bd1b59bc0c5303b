# Two commands from a fresh machine: `make run` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test setup setup-dev migrate default-model bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

default-model: migrate
	$(BIN)/python manage.py ensure_default_model

setup: default-model
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

setup-dev: $(VENV)/.dev setup

# The job worker (training jobs) runs beside gunicorn and stops with it; kept photos past retention are purged at start.
run: setup
	$(BIN)/python manage.py purge_uploads
	$(BIN)/python manage.py task_worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/gunicorn -c gunicorn.conf.py

test: setup-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup-dev
	$(BIN)/python bench/domain_accuracy.py
	$(BIN)/python bench/perf.py
	$(BIN)/python bench/http_bench.py
	$(BIN)/python bench/int8_bench.py

clean:
	rm -rf var models/*.h5 models/*.json

# ---- security: decoding bombs against a real gunicorn, peak RSS per worker ----
.PHONY: bench-decode-bomb
bench-decode-bomb: setup-dev
	$(BIN)/python bench/decode_bomb.py
