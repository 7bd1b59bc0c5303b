"""How often the default ImageNet model puts photos in the right domain (animal, bird, plant, other).

    python bench/domain_accuracy.py [--data DIR] [--model X.h5] [--examples N]

The photos are the repository's golden set (recognizer/data/photos/golden);
--data points at any folder with animal/, bird/, plant/ and other/ subfolders
instead (some may be missing), e.g. a larger development set.

The model is built first (recognizer.default_model.build_default) when it is
missing. Three ways to read a domain off the 1000 ImageNet probabilities:

  top-1        the domain of the most probable class
  any top-5    at least one of the five most probable classes is in the domain
  summed       the domain whose classes' probabilities add up to the most
               (argmax over animal, bird, plant, other)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from recognizer import errors  # noqa: E402
from recognizer.manifest import DOMAINS  # noqa: E402
from recognizer.photos import role_dir  # noqa: E402

DEFAULT_DATA = role_dir("golden")
FOLDERS = DOMAINS
BATCH = 32
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


@dataclass
class Result:
    path: Path
    domain: str  # the folder it came from
    probabilities: np.ndarray  # (classes,)


def images(data: Path) -> list[tuple[Path, str]]:
    """(file, folder domain) for every image of the animal/, bird/, plant/ and other/ folders, sorted."""
    found = []
    for domain in FOLDERS:
        folder = data / domain
        if folder.is_dir():
            found += [(p, domain) for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES]
    return found


def run(engine, files: list[tuple[Path, str]]) -> list[Result]:
    """Probabilities for every readable file; unreadable ones are reported and skipped."""
    results = []
    for start in range(0, len(files), BATCH):
        prepared = []
        for path, domain in files[start : start + BATCH]:
            try:
                prepared.append((path, domain, engine.prepare(path)))
            except errors.ImageError as exc:
                print(f"skipped {path}: {exc}", file=sys.stderr)
        if prepared:
            rows = engine.probabilities(np.concatenate([batch for _, _, batch in prepared]))
            results += [Result(p, d, row) for (p, d, _), row in zip(prepared, rows)]
    return results


def domain_of_each_class(manifest) -> np.ndarray:
    return np.array([c.domain for c in manifest.classes])


def scores(result: Result, class_domains: np.ndarray) -> tuple[bool, bool, bool]:
    """(top-1 in domain, any of top-5 in domain, summed-probability domain right) for one image."""
    order = np.argsort(-result.probabilities, kind="stable")
    top1 = class_domains[order[0]] == result.domain
    top5 = bool(np.any(class_domains[order[:5]] == result.domain))
    sums = [result.probabilities[class_domains == d].sum() for d in DOMAINS]
    summed = DOMAINS[int(np.argmax(sums))] == result.domain
    return bool(top1), top5, bool(summed)


def table(rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percent(hits: int, total: int) -> str:
    return f"{hits}/{total} {100 * hits / total:5.1f}%" if total else "-"


def accuracy_table(results: list[Result], class_domains: np.ndarray) -> str:
    header = ["domain", "images", "top-1 domain", "any top-5 in domain", "summed probability"]
    rows = [header]
    groups = [(d, [r for r in results if r.domain == d]) for d in FOLDERS] + [("total", results)]
    for name, group in groups:
        marks = np.array([scores(r, class_domains) for r in group], dtype=bool).reshape(-1, 3)
        rows.append([name, str(len(group))] + [percent(int(marks[:, i].sum()), len(group)) for i in range(3)])
    return table(rows)


def describe(result: Result, manifest, k: int = 5) -> str:
    order = np.argsort(-result.probabilities, kind="stable")[:k]
    shown = ", ".join(
        f"{manifest.classes[i].label} ({manifest.classes[i].domain}) {result.probabilities[i]:.0%}" for i in order
    )
    return f"  {result.path.parent.name}/{result.path.name}: {shown}"


def report(results: list[Result], manifest, examples: int) -> str:
    class_domains = domain_of_each_class(manifest)
    title = f"model {manifest.name} ({manifest.backbone}), {len(results)} images"
    parts = [title, "", accuracy_table(results, class_domains)]
    for domain in FOLDERS:
        group = [r for r in results if r.domain == domain]
        parts += ["", f"top-5 of the first {min(examples, len(group))} {domain} images:"]
        parts += [describe(r, manifest) for r in group[:examples]]
    misses = [r for r in results if not scores(r, class_domains)[0]]
    parts += ["", f"top-1 domain wrong ({len(misses)}):"] + [describe(r, manifest, k=3) for r in misses]
    return "\n".join(parts)


def load_engine(model: Path | None):
    from recognizer.default_model import build_default, default_artifact_path
    from recognizer.engine import Engine

    path = model or default_artifact_path()
    if model is None and not (path.exists() and path.with_suffix(".json").exists()):
        print(f"building the default model at {path} ...", file=sys.stderr)
        path = build_default()
    return Engine.from_path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"default: {DEFAULT_DATA}")
    parser.add_argument("--model", type=Path, help="an artifact .h5 (default: the default model, built if missing)")
    parser.add_argument("--examples", type=int, default=3, help="images per domain whose top-5 is printed")
    args = parser.parse_args(argv)
    files = images(args.data)
    if not files:
        print(f"error: no images under {args.data}/{{{','.join(FOLDERS)}}}/", file=sys.stderr)
        return 2
    try:
        engine = load_engine(args.model)
    except errors.RecognizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = run(engine, files)
    elapsed = time.perf_counter() - started
    print(report(results, engine.manifest, args.examples))
    print(f"\n{len(results)} images in {elapsed:.1f} s ({1000 * elapsed / max(1, len(results)):.0f} ms per image)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
