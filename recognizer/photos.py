"""The real photos the repository carries, by role, so that no gate is scored on the photos it was tuned on.

`parity`: the photos compiled engines are compared with Keras on (and that
calibration may use). `golden`: an evaluation set that nothing is tuned on.
Both cover the domains animal, bird, plant and other; SOURCES.csv beside them
says where each one comes from and under which license.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

PHOTOS_DIR = Path(__file__).resolve().parent / "data" / "photos"
SOURCES = PHOTOS_DIR / "SOURCES.csv"
ROLES = ("parity", "golden")


@dataclass(frozen=True)
class Photo:
    """One photo of the repository: its file, role, domain and what it shows."""

    path: Path
    role: str
    domain: str
    description: str


def role_dir(role: str) -> Path:
    """The folder of one role: <role>/<domain>/<name>.jpg below it."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a photo role; choose one of {', '.join(ROLES)}.")
    return PHOTOS_DIR / role


def photos(role: str) -> list[Photo]:
    """Every photo of `role` as SOURCES.csv lists it, in its order."""
    role_dir(role)
    with open(SOURCES, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["role"] == role]
    return [Photo(PHOTOS_DIR / row["file"], role, row["domain"], row["description"]) for row in rows]


def photo_paths(role: str) -> list[Path]:
    """The files of every photo of `role`."""
    return [photo.path for photo in photos(role)]
