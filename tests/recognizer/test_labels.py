"""The shipped ImageNet-1k label table: Keras' order, WordNet ids, domains, and that the build script makes it."""

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from recognizer.labels import imagenet_classes
from recognizer.manifest import DOMAINS, ClassInfo

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_imagenet_labels.py"
TABLE = ROOT / "recognizer" / "data" / "imagenet1k.csv"
BIRD_INDEXES = set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))


def load_build_script():
    spec = importlib.util.spec_from_file_location("build_imagenet_labels", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_index(index: int) -> ClassInfo:
    return imagenet_classes()[index]


def test_it_lists_1000_classes_in_output_order():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert [c.index for c in classes] == list(range(1000))


def test_ids_are_unique_wordnet_ids_sorted_ascending():
    ids = [c.id for c in imagenet_classes()]
    assert len(set(ids)) == 1000
    assert ids == sorted(ids)
    assert all(len(i) == 9 and i[0] == "n" and i[1:].isdigit() for i in ids)
    assert (ids[0], ids[999]) == ("n01440764", "n15075141")


@pytest.mark.parametrize(
    "index, wnid, label, domain",
    [
        (0, "n01440764", "tench", "animal"),
        (1, "n01443537", "goldfish", "animal"),
        (7, "n01514668", "rooster", "bird"),  # Keras calls it "cock"; the package's clean name is "rooster"
        (130, "n02007558", "flamingo", "bird"),
        (292, "n02129604", "tiger", "animal"),
        (409, "n02708093", "analog clock", "other"),
        (935, "n07711569", "mashed potatoes", "other"),
        (947, "n07734744", "mushroom", "plant"),
        (954, "n07753592", "banana", "plant"),
        (985, "n11939491", "daisy", "plant"),
        (988, "n12267677", "acorn", "plant"),
        (991, "n12985857", "coral fungus", "plant"),
        (999, "n15075141", "toilet paper", "other"),
    ],
)
def test_known_classes_have_their_id_label_and_domain(index, wnid, label, domain):
    assert by_index(index) == ClassInfo(index=index, id=wnid, label=label, domain=domain)


def test_every_domain_is_one_the_manifest_accepts():
    assert {c.domain for c in imagenet_classes()} == set(DOMAINS)


def test_birds_inside_the_animal_range_are_tagged_bird():
    birds = {c.index for c in imagenet_classes() if c.domain == "bird"}
    assert birds == BIRD_INDEXES


def test_every_other_class_of_the_animal_block_is_an_animal_and_none_outside_it():
    animals = {c.index for c in imagenet_classes() if c.domain == "animal"}
    assert animals == set(range(398)) - BIRD_INDEXES


def test_fruit_vegetables_and_fungi_are_plants_but_dishes_are_not():
    plants = {c.index for c in imagenet_classes() if c.domain == "plant"}
    assert plants == set(range(936, 958)) | set(range(984, 999))
    assert {by_index(i).domain for i in (924, 935, 958, 963)} == {"other"}  # guacamole, mashed potato, hay, pizza


def test_domain_counts_are_the_documented_ones():
    counts = Counter(c.domain for c in imagenet_classes())
    assert counts == {"animal": 339, "bird": 59, "plant": 37, "other": 565}


def test_labels_are_unique_and_short():
    labels = [c.label for c in imagenet_classes()]
    assert len(set(labels)) == 1000
    assert all(0 < len(label) <= 40 and label == label.strip() for label in labels)


def test_it_reads_the_table_once():
    assert imagenet_classes() is imagenet_classes()


def test_the_shipped_csv_is_what_the_build_script_generates():
    script = load_build_script()
    with open(TABLE, encoding="utf-8", newline="") as handle:
        shipped = handle.read()
    assert shipped == script.render_csv(script.build_rows())


def test_the_loader_returns_the_rows_the_script_builds():
    rows = load_build_script().build_rows()
    assert imagenet_classes() == tuple(ClassInfo(**row) for row in rows)


def test_the_build_script_refuses_ids_out_of_sorted_order():
    script = load_build_script()
    wnids = [c.id for c in imagenet_classes()]
    wnids[0], wnids[1] = wnids[1], wnids[0]
    with pytest.raises(ValueError, match="sorted WordNet order"):
        script.check_order(wnids)
