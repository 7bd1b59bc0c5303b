"""Keeps TensorFlow's C++ log lines out of a command's output, unless the command is run with --verbose.

TensorFlow writes them straight to file descriptor 2, partly before any of its
settings are read: TF_CPP_MIN_LOG_LEVEL does not stop the oneDNN notice at
import, nor grappler's "E0000 ... NodeDef" lines while training. So they are
held back at the descriptor itself: it becomes a pipe whose lines a thread
passes on to the real stderr, all but TensorFlow's. Python's own sys.stderr is
pointed at the real stderr directly, so a terminal stays a terminal (progress
bars) and nothing Python writes waits on the thread.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl's format: severity, MMDD, time, thread id, file:line] message; and absl's notice before it is set up.
NATIVE_LINE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] |WARNING: All log messages before absl::)")
_installed: dict = {}


def silence_tensorflow() -> None:
    """From now on, drop TensorFlow's C++ log lines from this process's stderr; call it before TensorFlow loads."""
    if _installed:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # what the setting can still stop, it stops
    sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding=encoding, errors="backslashreplace")
    pump = threading.Thread(target=_pass_on, args=(read, real), name="native-stderr", daemon=True)
    pump.start()
    _installed.update(real=real, pump=pump)
    atexit.register(_restore)


def _pass_on(read: int, real: int) -> None:
    pending = b""
    with open(read, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NATIVE_LINE.match(line))
            if kept:
                os.write(real, kept)
    if pending and not NATIVE_LINE.match(pending):
        os.write(real, pending)


def _restore() -> None:
    """At exit: give descriptor 2 back, so the pipe closes and the last lines are passed on."""
    sys.stderr.flush()
    os.dup2(_installed["real"], 2)
    _installed["pump"].join(timeout=2)
