"""WordNet groups of the ImageNet classes: the committed table is the script's output, and groups are chosen right."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from recognizer.groups import best_group, groups_for, imagenet_groups
from recognizer.labels import imagenet_classes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_wordnet_groups.py"
TABLE = ROOT / "recognizer" / "data" / "imagenet_groups.csv"
WORDNET = Path("/usr/share/wordnet")
RED_FOX, KIT_FOX, ARCTIC_FOX, GREY_FOX = 277, 278, 279, 280


def by_id(group_id: str):
    return next(g for g in imagenet_groups() if g.id == group_id)


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="apt-get install wordnet-base")
def test_the_committed_table_is_what_the_script_builds_from_wordnet(tmp_path):
    spec = importlib.util.spec_from_file_location("build_wordnet_groups", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--wordnet", str(WORDNET), "--out", str(tmp_path / "groups.csv")]) == 0
    assert (tmp_path / "groups.csv").read_bytes() == TABLE.read_bytes()


def test_the_genus_vulpes_holds_red_and_kit_fox_and_reads_as_a_fox():
    vulpes = by_id("genus:Vulpes")
    assert vulpes.members == (RED_FOX, KIT_FOX)
    assert vulpes.display() == "a fox (genus Vulpes)"


def test_the_fox_hypernym_holds_all_four_foxes_without_a_single_genus():
    fox = by_id("n02118333")
    assert fox.members == (RED_FOX, KIT_FOX, ARCTIC_FOX, GREY_FOX)
    assert fox.display() == "a fox"


def test_every_group_has_two_or_more_known_classes_of_one_named_domain_or_mixed():
    for group in imagenet_groups():
        assert 2 <= len(group.members) <= 150
        assert all(0 <= i < 1000 for i in group.members)
        assert group.domain in ("animal", "bird", "plant", "other", "mixed")
        assert group.name


def test_it_picks_the_smallest_group_whose_sum_reaches_the_threshold():
    p = np.zeros(1000)
    p[[RED_FOX, KIT_FOX, ARCTIC_FOX]] = [0.35, 0.35, 0.2]
    group, total = best_group(p, imagenet_groups(), domain="animal", threshold=0.6)
    assert (group.id, round(total, 6)) == ("genus:Vulpes", 0.7)
    group, total = best_group(p, imagenet_groups(), domain="animal", threshold=0.8)
    assert (group.id, round(total, 6)) == ("n02118333", 0.9)


def test_it_finds_no_group_outside_the_domain_or_below_the_threshold():
    p = np.zeros(1000)
    p[[RED_FOX, KIT_FOX]] = 0.3
    assert best_group(p, imagenet_groups(), domain="bird", threshold=0.5) == (None, 0.0)
    assert best_group(p, imagenet_groups(), domain="animal", threshold=0.7)[0] is None


def test_of_groups_of_one_size_the_larger_sum_wins_then_the_one_listed_first():
    from recognizer.groups import Group

    groups = (Group("a", "a", "", "animal", (0, 1)), Group("b", "b", "", "animal", (2, 3)),
              Group("c", "c", "", "animal", (4, 5)), Group("d", "d", "", "animal", (0, 1, 2)))
    p = np.array([0.2, 0.2, 0.3, 0.2, 0.05, 0.05])
    assert best_group(p, groups, domain="animal", threshold=0.4)[0].id == "b"  # 0.5 over a's 0.4
    p = np.array([0.25, 0.25, 0.25, 0.25, 0.0, 0.0])
    assert best_group(p, groups, domain="animal", threshold=0.4)[0].id == "a"
    assert best_group(p, groups, domain="animal", threshold=0.6)[0].id == "d"  # no pair reaches it


def test_only_imagenet_models_get_the_groups(tmp_path):
    from tests.conftest import TINY_CLASSES

    assert groups_for(imagenet_classes()) == imagenet_groups()
    assert groups_for(TINY_CLASSES) == ()


def test_every_group_has_a_chinese_name_in_chinese_characters():
    unnamed = [g.id for g in imagenet_groups() if not re.search(r"[\u4e00-\u9fff]", g.name_zh)]
    assert unnamed == []


def test_the_genus_vulpes_reads_as_a_fox_in_chinese_with_its_latin_genus():
    assert by_id("genus:Vulpes").display_in("zh-hans") == "狐（Vulpes 属）"
    assert by_id("genus:Vulpes").display_in("en") == "a fox (genus Vulpes)"
