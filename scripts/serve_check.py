"""Check a running service as a client would: /readyz answers 200, then a real photo is classified.

    python3 scripts/serve_check.py --url http://127.0.0.1:PORT --photo PATH [--label tiger]
        [--engine onnxruntime] [--wait 900] [--pid PID]

Standard library only, so that it runs before any virtualenv exists. Waits up
to --wait seconds for /readyz (stopping early when process --pid is gone),
posts --photo to /api/v1/predict, and checks the top label and that the
model's active version is served by --engine (GET /api/v1/models). Prints what
it saw; exits 1 with a one-line reason when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path


class CheckFailed(Exception):
    pass


def get(url: str, timeout: float = 10) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def wait_ready(url: str, seconds: float, pid: int | None) -> float:
    """Seconds until /readyz answered 200."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if pid and not Path(f"/proc/{pid}").exists():
            raise CheckFailed(f"the server process {pid} ended before /readyz answered 200")
        try:
            if get(f"{url}/readyz", timeout=5)[0] == 200:
                return time.monotonic() - started
        except (OSError, ValueError):
            pass  # not listening yet
        time.sleep(2)
    raise CheckFailed(f"/readyz did not answer 200 within {seconds:.0f} s")


def predict(url: str, photo: Path) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{photo.name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode() + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/api/v1/predict", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"POST /api/v1/predict answered {exc.code}: {exc.read()[:300]!r}") from None


def serving_engine(url: str, name: str, version: int) -> str:
    status, versions = get(f"{url}/api/v1/models")
    if status != 200:
        raise CheckFailed(f"GET /api/v1/models answered {status}")
    found = [v for v in versions if v["name"] == name and v["version"] == version]
    if not found:
        raise CheckFailed(f"GET /api/v1/models does not list {name} v{version}")
    return found[0]["engine"]


def check(args) -> None:
    ready = wait_ready(args.url, args.wait, args.pid)
    print(f"/readyz answered 200 after {ready:.0f} s")
    reply = predict(args.url, args.photo)
    model, top = reply["model"], reply["predictions"][0]
    print(f"{args.photo.name}: {top['label']} {top['probability']:.1%} from {model['name']} v{model['version']}")
    if args.label and top["label"] != args.label:
        raise CheckFailed(f"the top label is {top['label']!r}, not {args.label!r}")
    engine = serving_engine(args.url, model["name"], model["version"])
    print(f"engine: {engine}")
    if args.engine and engine != args.engine:
        raise CheckFailed(f"{model['name']} v{model['version']} is served by {engine}, not {args.engine}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--label", help="the top label the photo must get")
    parser.add_argument("--engine", help="the engine that must serve the model (e.g. onnxruntime)")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for /readyz")
    parser.add_argument("--pid", type=int, help="stop waiting when this process has ended")
    args = parser.parse_args(argv)
    try:
        check(args)
    except CheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
