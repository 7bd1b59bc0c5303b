#!/usr/bin/env bash
# The container check: build both images (full and serve) on a Debian base made offline with mmdebstrap, start each
# image's real CMD with production settings, and check /readyz, the HEALTHCHECK and one prediction through the API.
# Everything the run stores (containers, images, the base, build layers, a build cache it created) goes on exit.
#
#   scripts/container_check.sh [PHOTO LABEL]     as root, with podman, buildah and mmdebstrap (Debian packages)
#
# PHOTO, LABEL: a photo to classify and the top-1 label it must get; default the repository's tiger.
# CONTAINER_CHECK_MIRROR: apt sources file or mirror URL for mmdebstrap; default this host's apt sources.
# pip inside the build uses this host's pip settings (index URLs, find-links, CA bundle), passed as build args.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,passwd,ca-certificates
APP_HOST=recognizer.test  # ALLOWED_HOSTS: not a loopback name, so the HEALTHCHECK must send an allowed Host
# What a TLS proxy in front adds; the containers trust one proxy (TRUSTED_PROXY_COUNT=1).
behind_tls=(-H "X-Forwarded-Proto: https" -H "X-Forwarded-For: 127.0.0.1")
READY_SECONDS=${CONTAINER_CHECK_READY_SECONDS:-900}

skip() { echo "container check SKIPPED: $*" >&2; exit 0; }
log() { printf '[container-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ "$(id -u)" = 0 ] || skip "it needs root (podman build --isolation=chroot, mmdebstrap)."
for tool in podman buildah mmdebstrap curl python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install -y podman buildah mmdebstrap curl)."
done
podman info >/dev/null 2>&1 || skip "podman cannot use its storage here: $(podman info 2>&1 | tail -n 1)"

photo=${1:-recognizer/data/photos/golden/animal/tiger.jpg}
label=${2:-tiger}
[ -f "$photo" ] || { echo "container check: no photo at $photo; pass one: $0 PHOTO LABEL" >&2; exit 2; }

run_id=recognizer-check-$$
work=$(mktemp -d /var/tmp/recognizer-container-check.XXXXXX)
base=localhost/$run_id-base:$SUITE
build_cache=/var/tmp/buildah-cache  # where buildah keeps RUN --mount=type=cache folders
[ -e "$build_cache" ] && cache_was_there=1 || cache_was_there=0
images_before=$(podman images --all --quiet --no-trunc | sort -u)
containers_before=$(buildah containers --all --quiet --notruncate | sort -u)
pids=()
times=()

stage() {  # stage NAME COMMAND...: run it and keep its wall time for the summary
  local name=$1 started=$SECONDS
  shift
  log "$name"
  "$@"
  times+=("$(printf '  %-46s %5d s' "$name" $((SECONDS - started)))")
}

cleanup() {
  local status=$? started=$SECONDS
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  comm -13 <(echo "$containers_before") <(buildah containers --all --quiet --notruncate | sort -u) \
    | xargs -r buildah rm >/dev/null 2>&1 || true
  comm -13 <(echo "$images_before") <(podman images --all --quiet --no-trunc | sort -u) \
    | xargs -r podman rmi --force >/dev/null 2>&1 || true
  [ "$cache_was_there" = 1 ] || rm -rf "$build_cache"
  rm -rf "$work"
  times+=("$(printf '  %-46s %5d s' "remove what the run stored" $((SECONDS - started)))")
  echo "container check stage times:" >&2
  printf '%s\n' "${times[@]}" "$(printf '  %-46s %5d s' total $SECONDS)" >&2
  [ "$status" = 0 ] && echo "container check PASSED" >&2 || echo "container check FAILED (exit $status)" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_sources() {  # this host's apt sources for the suite, so mmdebstrap uses the same mirror as apt
  grep -l -s -w "$SUITE" /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list | head -n 1
}

make_base() {
  local mirror=${CONTAINER_CHECK_MIRROR:-$(apt_sources || true)}
  mmdebstrap --quiet --variant=apt --include="$BASE_PACKAGES" "$SUITE" "$work/base.tar" ${mirror:+"$mirror"}
  podman import --quiet "$work/base.tar" "$base" >/dev/null
  rm -f "$work/base.tar"
}

pip_build_args() {  # --build-arg/--volume options, one a line, that give pip in the build this host's index and CA
  local python=.venv/bin/python key var value item path
  [ -x "$python" ] || python=python3
  for key in index-url extra-index-url find-links cert; do
    var=PIP_$(echo "$key" | tr 'a-z-' 'A-Z_')
    value=${!var:-$("$python" -m pip config get "global.$key" 2>/dev/null || true)}
    [ -n "$value" ] || continue
    if [ "$key" = cert ]; then  # a proxy's CA may only be in this host's bundle
      [ -f "$value" ] && printf '%s\n' "--volume=$value:/tmp/pip-ca.pem:ro" "--build-arg=PIP_CERT=/tmp/pip-ca.pem"
      continue
    fi
    echo "--build-arg=$var=$value"
    for item in $value; do
      path=${item#file://}
      [ "$key" = find-links ] || path=$(dirname "$path")  # a local simple index links to files beside it
      case $item in file://* | /*) [ -d "$path" ] && echo "--volume=$path:$path:ro" ;; esac
    done
  done
}

build() {  # build TARGET: the image localhost/$run_id:TARGET
  local pip_args
  mapfile -t pip_args < <(pip_build_args)
  podman build --isolation=chroot --format docker --layers --target "$1" --build-arg "BASE_IMAGE=$base" \
    "${pip_args[@]}" --tag "localhost/$run_id:$1" . >"$work/build-$1.log" 2>&1 \
    || { tail -n 60 "$work/build-$1.log" >&2; return 1; }
}

image_config() {  # image_config IMAGE FIELD: a field of the image's config as JSON (Cmd, Healthcheck)
  podman image inspect --format "{{json .Config.$2}}" "$1"
}

json_words() {  # a JSON list of strings -> NUL-separated words, for mapfile -d ''
  python3 -c 'import json, sys; sys.stdout.write("".join(w + "\0" for w in json.load(sys.stdin)))'
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {  # start TARGET PORT: a container of that image running its own CMD; database and model store shared
  local name=$1 image=localhost/$run_id:$1 port=$2 ctr cmd
  ctr=$(buildah from --quiet --name "$run_id-$name" "$image")
  buildah config --env DJANGO_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    --env ALLOWED_HOSTS="$APP_HOST" --env HOST=127.0.0.1 --env PORT="$port" --env TRUSTED_PROXY_COUNT=1 \
    --env DATABASE_URL=sqlite:////store/db.sqlite3 --env RECOGNIZER_MODELS_DIR=/store/models "$ctr"
  mapfile -d '' -t cmd < <(image_config "$image" Cmd | json_words)
  buildah run --isolation=chroot --volume "$work/store:/store" "$ctr" -- "${cmd[@]}" >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$! ${name}_port=$port"
}

status_of() {  # status_of PORT PATH [curl args]: the HTTP status, over plain HTTP as a probe would ask
  local port=$1 path=$2
  shift 2
  curl --silent --output /dev/null --write-out '%{http_code}' --max-time 60 -H "Host: $APP_HOST" "$@" \
    "http://127.0.0.1:$port$path" || true
}

wait_for() {  # wait_for NAME PATH STATUS: until the container answers so, or fail with its log
  local name=$1 path=$2 want=$3 pid port deadline=$((SECONDS + READY_SECONDS))
  pid=${name}_pid port=${name}_port
  until [ "$(status_of "${!port}" "$path")" = "$want" ]; do
    if ! kill -0 "${!pid}" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
      log "$name never answered $path with $want; its log:"
      tail -n 40 "$work/$name.log" >&2
      return 1
    fi
    sleep 2
  done
}

healthcheck() {  # healthcheck NAME: run the image's HEALTHCHECK command inside that running container
  local name=$1 words
  mapfile -d '' -t words < <(image_config "localhost/$run_id:$name" Healthcheck | python3 -c \
    'import json, sys; t = json.load(sys.stdin)["Test"]; sys.stdout.write("".join(w + "\0" for w in (["sh", "-c", t[1]] if t[0] == "CMD-SHELL" else t[1:])))')
  buildah run --isolation=chroot --volume "$work/store:/store" "$run_id-$name" -- "${words[@]}"
}

expect() {  # expect WHAT GOT WANT
  [ "$2" = "$3" ] || { log "FAILED: $1: got $2, expected $3"; return 1; }
  log "ok: $1 ($2)"
}

create_token() {  # the operator's command; it prints "token ID for NAME: KEY"
  buildah run --isolation=chroot --volume "$work/store:/store" "$run_id-full" -- \
    python manage.py tokens create "container check" 2>/dev/null | awk '/^token / {print $NF}'
}

predict() {  # predict NAME: the top-3 labels for the photo, from POST /api/v1/predict with the token, as behind TLS
  local port=${1}_port body
  body=$(curl --silent --show-error --max-time 120 -H "Host: $APP_HOST" "${behind_tls[@]}" \
    -H "Authorization: Bearer $token" -F "image=@$photo" "http://127.0.0.1:${!port}/api/v1/predict")
  python3 -c 'import json, sys; top = json.loads(sys.argv[1])["predictions"][:3]
print(" / ".join("%s %.3f" % (p["label"], p["probability"]) for p in top))' "$body" \
    || { log "FAILED: $1 did not classify the photo: $body"; return 1; }
}

check_serve_has_no_tensorflow() {
  if buildah run --isolation=chroot "$run_id-serve" -- python -c "import tensorflow" 2>/dev/null; then
    log "FAILED: the serve image can import TensorFlow"
    return 1
  fi
  log "ok: the serve image has no TensorFlow"
}

check_serve_contents() {  # .dockerignore: no artifacts, local state, virtualenv or history from the build context
  local found
  found=$(buildah run --isolation=chroot "$run_id-serve" -- sh -c \
    'ls -d /app/models/* /app/.git /app/.venv /app/var /app/test-artifacts 2>/dev/null | grep -v README.md || true' \
    | tr '\n' ' ')
  expect "artifacts and local state from the build context in the serve image" "${found:-none}" none
}

check_metrics_and_logs() {  # check_metrics_and_logs NAME: after its prediction, /metrics counts it and the log says it in JSON
  local port=${1}_port scrape
  scrape=$(curl --silent --max-time 30 -H "Host: $APP_HOST" "http://127.0.0.1:${!port}/metrics")
  expect "$1 /metrics counts the prediction" \
    "$(grep -q '^recognizer_predictions_total{.*status="ok".*} [1-9]' <<<"$scrape" && echo yes || echo no)" yes
  # One line per worker that serves it.
  expect "$1 /metrics says which model it serves" "$(grep -q '^recognizer_model_loaded{.*} 1' <<<"$scrape" && echo yes || echo no)" yes
  expect "$1 logs the prediction as one JSON object with its request id and model" "$(python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    if isinstance(entry, dict) and entry.get("path") == "/api/v1/predict" and entry.get("status") == 200:
        print("yes" if entry.get("request_id") and entry.get("model") else "no: %s" % line.strip())
        break
else:
    print("no JSON line for the prediction")' "$work/$1.log")" yes
}

disk_in_use() {  # MB in podman's storage and the build cache
  # The cache folder may not exist yet (a fresh machine): du then fails, which must not end the check.
  { du -s -x -B1M "$(podman info --format '{{.Store.GraphRoot}}')" "$build_cache" 2>/dev/null || true; } \
    | awk '{s += $1} END {print s + 0}'
}

# What a full and a serve container share, as hosts would: the database and the model store. /data stays their own.
mkdir -p "$work/store" && chown 10001 "$work/store"  # the images run as uid 10001
log "photo $photo; podman storage driver $(podman info --format '{{.Store.GraphDriverName}}')"
disk_before=$(disk_in_use)
stage "base image ($SUITE, mmdebstrap)" make_base
stage "build --target full" build full
stage "build --target serve" build serve
disk_used=$(( $(disk_in_use) - disk_before ))

# The serve image first, on an empty database: it serves, but is not ready, and its HEALTHCHECK says so.
stage "serve: start" start serve "$(free_port)"
stage "serve: migrate, /healthz 200" wait_for serve /healthz 200
expect "serve /readyz with no model registered" "$(status_of "$serve_port" /readyz)" 503
expect "serve HEALTHCHECK with no model registered" "$(healthcheck serve >/dev/null 2>&1 && echo passes || echo fails)" fails
# The full image registers the default model in the shared database and model store, then both serve it.
stage "full: start" start full "$(free_port)"
stage "full: default model built, registered, ready" wait_for full /readyz 200
stage "serve: /readyz 200 (follows activation)" wait_for serve /readyz 200
expect "full HEALTHCHECK" "$(healthcheck full >/dev/null && echo passes)" passes
expect "serve HEALTHCHECK" "$(healthcheck serve >/dev/null && echo passes)" passes
expect "/api/v1/models over plain HTTP (redirected to HTTPS)" "$(status_of "$full_port" /api/v1/models)" 301
expect "predict without a token" "$(status_of "$full_port" /api/v1/predict "${behind_tls[@]}" -F "image=@$photo")" 401
token=$(create_token)
[ -n "$token" ] || { log "FAILED: manage.py tokens create gave no key"; exit 1; }
full_answer=$(predict full)
serve_answer=$(predict serve)
log "full:  $full_answer"
log "serve: $serve_answer"
expect "serve answers as full" "$serve_answer" "$full_answer"
expect "top-1 label" "${full_answer%% [0-9]*}" "$label"
check_metrics_and_logs full
check_metrics_and_logs serve
check_serve_has_no_tensorflow
check_serve_contents
for target in full serve; do
  log "image size $target: $(( $(podman image inspect --format '{{.Size}}' "localhost/$run_id:$target") / 1000000 )) MB"
done
log "disk taken by the base, the builds and their cache: $disk_used MB"
