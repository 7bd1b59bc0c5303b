"""Regenerate recognizer/data/imagenet_groups.csv: groups of ImageNet-1k classes from WordNet 3.0.

    .venv/bin/python scripts/build_wordnet_groups.py [--wordnet /usr/share/wordnet]

Every ImageNet class is a WordNet noun synset (its id is "n" + the synset's
offset in data.noun, the file Debian's wordnet-base package installs). A group
is a synset that two or more classes reach by walking up hypernyms ("fox"
holds red fox, kit fox, grey fox and Arctic fox), or a genus they belong to by
member holonymy ("Vulpes" holds red fox and kit fox). A group gets a name a
person reads ("fox") and, where all its classes belong to one genus, that
genus ("Vulpes"). Groups above MAX_MEMBERS classes, or holding half the
classes of their domain or more ("bird"), say little more than the domain and
are left out; a genus with the same members as a hypernym group merges into it. The output is deterministic: running this again writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recognizer.labels import imagenet_classes  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "recognizer" / "data" / "imagenet_groups.csv"
FIELDS = ("id", "name", "genus", "domain", "size", "members", "name_zh")
MAX_MEMBERS = 150  # "dog" (118 breeds) is an answer; "mammal" (200+) is not much more than the domain


def read_synsets(wordnet: Path) -> dict[str, dict]:
    """offset -> {"lemmas", "hypernyms", "genera"} for every noun synset in data.noun."""
    synsets = {}
    with open(wordnet / "data.noun", encoding="latin-1") as handle:
        for line in handle:
            if line.startswith(" "):  # the licence header
                continue
            fields = line.split(" | ")[0].split()
            offset, words = fields[0], int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(words)]
            at = 4 + 2 * words
            pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
            synsets[offset] = {
                "lemmas": lemmas,
                "hypernyms": [p[1] for p in pointers if p[0] in ("@", "@i") and p[2] == "n"],
                "holonyms": [p[1] for p in pointers if p[0] == "#m" and p[2] == "n"],
            }
    return synsets


def genus_of(synsets: dict, offset: str) -> str:
    """'Vulpes' when the synset is a member of a genus, else ''."""
    for holonym in synsets[offset]["holonyms"]:
        for lemma in synsets[holonym]["lemmas"]:
            if lemma.startswith("genus "):
                return lemma[len("genus ") :]
    return ""


def ancestors(synsets: dict, offset: str) -> set[str]:
    """Every hypernym above a synset, through every path."""
    seen, todo = set(), list(synsets[offset]["hypernyms"])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(synsets[current]["hypernyms"])
    return seen


def collect(synsets: dict) -> list[dict]:
    """The groups: hypernym groups first, then genera not already a hypernym group, each with >= 2 members."""
    classes = imagenet_classes()
    members: dict[tuple[str, str], set[int]] = defaultdict(set)
    for c in classes:
        offset = c.id[1:]
        for parent in ancestors(synsets, offset):
            members[("hypernym", parent)].add(c.index)
        genus = genus_of(synsets, offset)
        if genus:
            members[("genus", genus)].add(c.index)
    groups, seen = [], set()
    for (kind, key), indexes in sorted(members.items(), key=lambda item: (item[0][0] != "hypernym", item[0][1])):
        frozen = frozenset(indexes)
        if not 2 <= len(indexes) <= MAX_MEMBERS or frozen in seen:
            continue
        seen.add(frozen)
        groups.append(_row(synsets, classes, kind, key, sorted(indexes)))
    per_domain = Counter(c.domain for c in classes)
    groups = [g for g in groups if g["domain"] == "mixed" or 2 * int(g["size"]) < per_domain[g["domain"]]]
    return sorted(groups, key=lambda g: (int(g["size"]), g["id"]))


def _row(synsets: dict, classes, kind: str, key: str, indexes: list[int]) -> dict:
    genera = {genus_of(synsets, classes[i].id[1:]) for i in indexes}
    if kind == "genus":
        name = _common_name(synsets, [classes[i].id[1:] for i in indexes])
        genus, gid = key, f"genus:{key}"
    else:
        name = synsets[key]["lemmas"][0]
        genus = genus_of(synsets, key) or (genera.pop() if len(genera) == 1 and "" not in genera else "")
        gid = f"n{key}"
    domains = {classes[i].domain for i in indexes}
    domain = domains.pop() if len(domains) == 1 else "mixed"
    return {"id": gid, "name": name, "genus": genus, "domain": domain, "size": str(len(indexes)),
            "members": " ".join(map(str, indexes))}


def _common_name(synsets: dict, offsets: list[str]) -> str:
    """The lowest hypernym the synsets share, by its first lemma ("fox" for red fox and kit fox)."""
    shared = set.intersection(*(ancestors(synsets, o) | {o} for o in offsets))
    lowest = max(shared, key=lambda o: (len(ancestors(synsets, o)), o))
    return synsets[lowest]["lemmas"][0]


def chinese_names(table: Path) -> dict[str, str]:
    """Group id -> Chinese name, from a table this script wrote before: WordNet has no Chinese, so names are kept."""
    if not table.is_file():
        return {}
    with table.open(encoding="utf-8", newline="") as rows:
        return {row["id"]: row.get("name_zh") or "" for row in csv.DictReader(rows)}


def render(groups: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(groups)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--names-from", type=Path, default=OUTPUT, help="table whose name_zh column is kept, by group id")
    args = parser.parse_args(argv)
    if not (args.wordnet / "data.noun").is_file():
        sys.exit(f"No WordNet database at {args.wordnet}; install it with: apt-get install wordnet-base")
    synsets = read_synsets(args.wordnet)
    missing = [c.id for c in imagenet_classes() if c.id[1:] not in synsets]
    if missing:
        sys.exit(f"{len(missing)} ImageNet ids are not WordNet 3.0 noun synsets, e.g. {missing[:3]}.")
    names = chinese_names(args.names_from)
    groups = [{**group, "name_zh": names.get(group["id"], "")} for group in collect(synsets)]
    unnamed = sum(1 for group in groups if not group["name_zh"])
    if unnamed:
        print(f"{unnamed} groups have no Chinese name yet: add them to the name_zh column of {args.out}")
    args.out.write_text(render(groups), encoding="utf-8")
    print(f"{len(groups)} groups written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
