"""The shipped Chinese names of the ImageNet-1k classes, and how a manifest's labels are chosen per language."""

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from recognizer import errors
from recognizer.labels import display_label, imagenet_chinese, imagenet_classes
from recognizer.manifest import ClassInfo, Manifest
from tests.conftest import TINY_SPEC

TABLE = Path(__file__).resolve().parents[2] / "recognizer" / "data" / "imagenet1k_zh.csv"
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def table_rows() -> list[dict]:
    with open(TABLE, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def imagenet_manifest(**changes) -> Manifest:
    return Manifest(name="imagenet", backbone="efficientnet_lite0", input=TINY_SPEC, classes=imagenet_classes(), **changes)


def test_every_class_has_one_row_with_the_english_table_s_index_id_and_label():
    rows = table_rows()
    assert [(int(r["index"]), r["id"], r["label"]) for r in rows] == [(c.index, c.id, c.label) for c in imagenet_classes()]


def test_no_chinese_name_is_empty_or_still_english():
    names = [r["label_zh"] for r in table_rows()]
    assert all(name == name.strip() and name for name in names)
    still_english = [name for name in names if not HAN.search(name)]
    assert still_english == []


def test_no_two_classes_share_a_chinese_name():
    counts = Counter(r["label_zh"] for r in table_rows())
    assert [name for name, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("index, name", [(282, "虎斑猫"), (258, "萨摩耶"), (292, "老虎"), (130, "火烈鸟"), (985, "雏菊"), (947, "蘑菇")])
def test_well_known_classes_have_their_common_chinese_name(index, name):
    assert display_label(imagenet_manifest(), index, "zh-hans") == name


def test_an_imagenet_manifest_without_labels_speaks_chinese_from_the_shipped_table():
    manifest = imagenet_manifest()
    assert display_label(manifest, 258, "en") == "Samoyed"
    assert imagenet_chinese()["n02111889"] == ("Samoyed", "萨摩耶")


def test_a_manifest_s_own_labels_come_first():
    classes = (ClassInfo(0, "cat", "cat", "animal"), ClassInfo(1, "fern", "fern", "plant"))
    manifest = Manifest(name="m", backbone="tiny", input=TINY_SPEC, classes=classes, labels={"zh-hans": ["猫", "蕨"]})
    assert [display_label(manifest, i, "zh-hans") for i in (0, 1)] == ["猫", "蕨"]
    assert display_label(manifest, 1, "en") == "fern"


def test_a_class_that_only_borrows_an_imagenet_id_keeps_its_own_label():
    classes = (ClassInfo(0, "n02111889", "our white dog", "animal"),)
    manifest = Manifest(name="m", backbone="tiny", input=TINY_SPEC, classes=classes)
    assert display_label(manifest, 0, "zh-hans") == "our white dog"


def test_manifest_labels_survive_a_round_trip_and_old_manifests_still_load():
    manifest = imagenet_manifest(labels={"zh-hans": [r["label_zh"] for r in table_rows()]})
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    old = manifest.to_dict()
    del old["labels"]
    assert Manifest.from_dict(old).labels == {}


@pytest.mark.parametrize("labels", [{"zh-hans": ["猫"]}, {"zh-hans": "猫"}, ["猫"], {"zh-hans": ["猫", " "]}])
def test_a_manifest_with_malformed_labels_is_refused(labels):
    classes = (ClassInfo(0, "cat", "cat", "animal"), ClassInfo(1, "fern", "fern", "plant"))
    data = Manifest(name="m", backbone="tiny", input=TINY_SPEC, classes=classes).to_dict()
    data["labels"] = labels
    with pytest.raises(errors.ManifestError, match="labels"):
        Manifest.from_dict(data)
