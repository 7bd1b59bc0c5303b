#!/usr/bin/env bash
# A clone of this repository in an empty temporary folder, with nothing beside it, as a new user gets it:
#   1. `make run` on a free loopback port until /readyz answers 200, a real photo of the repository is classified
#      by the onnxruntime engine (scripts/serve_check.py), and gunicorn then stops cleanly on SIGTERM;
#   2. `make test` there (its setup-dev chain from nothing) on the tests about what a clone carries: its photos, its
#      default model, and nothing reached beside it. The whole suite runs in CI's own clean clone, where
#      tests/conftest.py refuses any test's access to the development data beside the clone while it runs.
# It clones the committed HEAD: commit first. The clone's make builds its own .venv (pip's cache keeps it short).
# Usage: scripts/bare_clone_check.sh [--keep]   (--keep leaves the temporary folder for a look afterwards)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/bare-clone.XXXXXX")"
server=""
keep="${1:-}"

stop_server() {
  [ -n "$server" ] || return 0
  if [ -s "$work/gunicorn.pid" ]; then kill -TERM "$(cat "$work/gunicorn.pid")" 2>/dev/null || true; fi
  local status=0
  wait "$server" || status=$?
  server=""
  return "$status"
}
cleanup() {
  if [ -n "$server" ]; then kill -TERM -- "-$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ "$keep" = "--keep" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

git clone --quiet "$repo" "$work/clone"
cd "$work/clone"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
echo "bare clone at $work/clone (commit $(git rev-parse --short HEAD)); make run on 127.0.0.1:$port"

# Its own session, so that cleanup can end make and gunicorn together if a check fails.
GUNICORN_CMD_ARGS="--pid $work/gunicorn.pid" setsid make run HOST=127.0.0.1 PORT="$port" >"$work/run.log" 2>&1 &
server=$!
if ! python3 "$repo/scripts/serve_check.py" --url "http://127.0.0.1:$port" --pid "$server" --wait 1200 \
    --photo recognizer/data/photos/golden/animal/tiger.jpg --label tiger --engine onnxruntime; then
  echo "--- last lines of make run:"; tail -n 40 "$work/run.log"; exit 1
fi
if ! stop_server; then
  echo "error: make run did not stop cleanly on SIGTERM to gunicorn"; tail -n 20 "$work/run.log"; exit 1
fi
echo "make run stopped cleanly"

make test PYTEST_ARGS='tests/test_self_contained.py tests/recognizer/test_photos.py tests/recognizer/test_parity_photos.py tests/recognizer/test_default_model.py -m "not slow and not e2e and not browser" -p no:cacheprovider -q'
