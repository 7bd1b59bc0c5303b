"""The photos the repository carries: roles kept apart, every file accounted for with its source and license."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest
from PIL import Image

from recognizer import photos
from recognizer.manifest import DOMAINS

REPO_ROOT = Path(__file__).resolve().parents[2]


def sources() -> list[dict[str, str]]:
    with open(photos.SOURCES, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def build_script():
    spec = importlib.util.spec_from_file_location("build_photos", REPO_ROOT / "scripts" / "build_photos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_photo_on_disk_is_listed_in_sources_and_every_listed_photo_exists():
    on_disk = {p.relative_to(photos.PHOTOS_DIR).as_posix() for p in photos.PHOTOS_DIR.rglob("*.jpg")}
    assert on_disk == {row["file"] for row in sources()}


def test_the_parity_and_golden_roles_share_no_photo_not_even_under_another_name():
    rows = sources()
    by_role = {role: {row["source"] for row in rows if row["role"] == role} for role in photos.ROLES}
    assert by_role["parity"] and by_role["golden"] and not by_role["parity"] & by_role["golden"]
    assert len({row["source"] for row in rows}) == len(rows)
    assert all(row["file"].startswith(f"{row['role']}/{row['domain']}/") for row in rows)


@pytest.mark.parametrize("role, least", [("parity", 2), ("golden", 10)])
def test_each_role_covers_every_domain(role, least):
    counts = {domain: sum(p.domain == domain for p in photos.photos(role)) for domain in DOMAINS}
    assert min(counts.values()) >= least, counts


def test_each_photo_states_its_package_license_and_copyright():
    for row in sources():
        source = r"tuxpaint-stamps-default 2022\.06\.04-1: usr/share/tuxpaint/stamps/\S+\.png"
        assert re.fullmatch(source, row["source"]), row
        assert row["license"] == "GPL-2.0-or-later" and "Bill Kendrick" in row["attribution"], row
    license_text = (photos.PHOTOS_DIR / "GPL-2").read_text(encoding="utf-8").split()
    assert license_text[:6] == ["GNU", "GENERAL", "PUBLIC", "LICENSE", "Version", "2,"]


def test_the_photos_are_small_real_rgb_jpegs():
    files = [p.path for role in photos.ROLES for p in photos.photos(role)]
    assert sum(f.stat().st_size for f in files) < 1_500_000
    for file in files:
        with Image.open(file) as image:
            assert (image.format, image.mode) == ("JPEG", "RGB") and max(image.size) <= 600, file


def test_sources_csv_is_what_the_build_script_selects():
    script = build_script()
    listed = [(row["role"], row["file"], row["description"]) for row in sources()]
    selected = [(r["role"], f"{r['role']}/{r['name']}.jpg", r["description"]) for r in script.selection()]
    assert listed == selected
    assert [row["source"].split(": ")[1] for row in sources()] == [
        f"usr/share/tuxpaint/stamps/{r['stamp']}" for r in script.selection()
    ]


def test_an_unknown_role_is_refused_by_name():
    with pytest.raises(ValueError, match="'calibration' is not a photo role; choose one of parity, golden"):
        photos.photos("calibration")
