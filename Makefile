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

setup: default-model compile-messages
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

setup-dev: $(VENV)/.dev setup axe-core

# The job worker (training jobs) runs beside gunicorn and stops with it; kept photos past retention are purged at start.
run: setup
	$(BIN)/python manage.py purge_uploads
	$(BIN)/python manage.py task_worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/gunicorn -c gunicorn.conf.py

# Two pytest workers (pytest-xdist), one test file each at a time: most tests keep one core busy, the rest wait on
# servers and browsers. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: setup-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: setup-dev
	$(BIN)/python bench/domain_accuracy.py
	$(BIN)/python bench/verdict_quality.py
	$(BIN)/python bench/perf.py
	$(BIN)/python bench/http_bench.py --precision auto
	$(BIN)/python bench/int8_bench.py

clean:
	rm -rf var models/*.h5 models/*.json

# ---- security: decoding bombs against a real gunicorn, peak RSS per worker ----
.PHONY: bench-decode-bomb
bench-decode-bomb: setup-dev
	$(BIN)/python bench/decode_bomb.py

# ---- languages and accessibility ---------------------------------------------------------------
# The .po catalogs under locale/ are the source; the .mo files are built here, not committed (they are build
# output and would go stale). They are compiled with Babel (scripts/compile_messages.py), so `make run` needs no
# GNU gettext; `make messages` (xgettext) and the catalog test (msgcmp) do: Debian's `gettext` package.
# axe-core (npm, MPL-2.0) is installed from tests/browser/package-lock.json, pinned and integrity-checked.
MSG_IGNORE := --ignore='$(VENV)/*' --ignore='var/*' --ignore='tests/*' --ignore='bench/*' --ignore='scripts/*' --ignore='models/*' --ignore='test-artifacts/*'
AXE := tests/browser/node_modules/axe-core/axe.min.js
.PHONY: compile-messages messages axe-core

compile-messages: $(VENV)/.runtime
	$(BIN)/python scripts/compile_messages.py

messages: $(VENV)/.runtime  # after changing a user-facing string: update the catalogs, then translate what is new
	$(BIN)/python manage.py makemessages --locale zh_Hans --add-location file --no-obsolete $(MSG_IGNORE)
	$(BIN)/python manage.py makemessages --domain djangojs --locale zh_Hans --add-location file --no-obsolete $(MSG_IGNORE)

axe-core: $(AXE)
$(AXE): tests/browser/package-lock.json
	@command -v npm >/dev/null || { echo "the accessibility tests need npm for axe-core: apt-get install npm" >&2; exit 1; }
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@
