"""TensorFlow's C++ log lines are held back at file descriptor 2; every other line gets through, in order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recognizer.native_logs import NATIVE_LINE

REPO_ROOT = Path(__file__).resolve().parents[2]
NATIVE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796016115.216284   30380 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1796016115.216284   30380 meta_optimizer.cc:966] layout failed: ... inNodeDef",
    "W1130 05:12:01.000001   123 cpu_feature_guard.cc:210] This TensorFlow binary is optimized",
)
SCRIPT = """
import os, sys
from recognizer.native_logs import silence_tensorflow
silence_tensorflow()
lines = sys.argv[1:]
os.write(2, ("\\n".join(lines[:2] + ["native but ours"] + lines[2:]) + "\\n").encode())
print("from python", file=sys.stderr)
os.write(2, b"last words without a newline")
"""


def test_only_tensorflows_lines_are_dropped_and_a_last_unfinished_line_still_arrives():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *NATIVE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stderr.splitlines()) == ["from python", "last words without a newline", "native but ours"]


def test_the_pattern_is_absls_line_format_not_any_line_with_a_capital_letter():
    assert all(NATIVE_LINE.match(line.encode()) for line in NATIVE)
    for kept in ("error: x.jpg: This file is not an image", "I1 said so", "E0000 no location here", "WARNING: disk"):
        assert not NATIVE_LINE.match(kept.encode()), kept
