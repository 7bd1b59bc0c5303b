"""How far the default model's verdicts can be trusted: domains, confident labels, calibration, heat-map cost.

    python bench/verdict_quality.py [--dev DIR DIR]

Without --dev it scores the shipped verdict on the repository's golden photos
(recognizer/data/photos/golden; the domain head never saw them) and prints the
calibration errors and cross-validation figures recorded when the head was
built (recognizer/data/domain_head-efficientnet_lite0.json). With --dev (the
wildlife-dev and everyday-dev folders) it redoes the 5-fold cross-validation
over those photos, golden ones included: the domain head, the temperatures and
the label threshold are fitted on four folds and the verdicts of the fifth are
scored, so no photo is scored by anything fitted on it. Confident class-level
precision counts only photos mapped by hand to an ImageNet class
(bench/dev_photo_classes.csv).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from recognizer.manifest import DOMAINS  # noqa: E402
from recognizer.photos import photos  # noqa: E402

MAPPING = REPO_ROOT / "bench" / "dev_photo_classes.csv"
REPORT = REPO_ROOT / "recognizer" / "data" / "domain_head-efficientnet_lite0.json"


def mapped_classes() -> dict[str, int]:
    """'<domain>/<name>' -> the ImageNet class the photo shows, for the photos mapped by hand."""
    with open(MAPPING, encoding="utf-8", newline="") as handle:
        return {row["path"]: int(row["index"]) for row in csv.DictReader(handle) if row["index"]}


def table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    for row in rows:
        print("  " + " | ".join([f"{row[0]:<34}", *(f"{cell:>9}" for cell in row[1:])]))


def golden(engine) -> None:
    """The shipped verdict on the golden photos: domain right per domain, confident class precision, heat-map cost."""
    from recognizer.heatmap import kernel_of, overlay_png

    shots = photos("golden")
    truth = mapped_classes()
    started = time.perf_counter()
    answers = engine.predict([p.path for p in shots]).items
    per_photo_ms = (time.perf_counter() - started) * 1000 / len(shots)
    rows = []
    for domain in DOMAINS:
        mine = [a.verdict.domain == p.domain for p, a in zip(shots, answers) if p.domain == domain]
        rows.append((domain, f"{sum(mine)}/{len(mine)}", f"{np.mean(mine):.1%}"))
    table("Golden photos (never trained on): verdict domain right", rows)
    confident = [(a.verdict.index, truth[f"{p.domain}/{p.path.name}"]) for p, a in zip(shots, answers)
                 if a.verdict.level == "class" and f"{p.domain}/{p.path.name}" in truth]
    right = sum(given == true for given, true in confident)
    table("Golden photos with an ImageNet class: confident class-level verdicts",
          [("right / given", f"{right}/{len(confident)}", f"{right / max(len(confident), 1):.1%}")])
    if answers[0].feature_map is not None:
        kernel = kernel_of(engine.artifact.path)
        costs = []
        for p, a in zip(shots, answers):
            t = time.perf_counter()
            overlay_png(p.path.read_bytes(), engine.manifest.input, a.feature_map, kernel, a.predictions[0].index)
            costs.append((time.perf_counter() - t) * 1000)
        table("Cost per photo (ms, batch of all golden photos)", [
            ("predict with verdict", f"{per_photo_ms:.1f}", ""),
            ("heat map PNG, only when asked", f"{statistics.median(costs):.1f}", "median"),
        ])


def recorded() -> None:
    """The figures written when the shipped head was built."""
    report = json.loads(REPORT.read_text(encoding="utf-8"))
    cal, cls = report["calibration"], report["class_calibration"]
    table("Expected calibration error (15 bins), before -> after temperature scaling", [
        ("domain head (out-of-fold)", f"{cal['ece_before']:.3f}", f"{cal['ece_after']:.3f}", f"T={cal['temperature']:.2f}"),
        ("ImageNet head (mapped dev photos)", f"{cls['ece_before']:.3f}", f"{cls['ece_after']:.3f}", f"T={cls['temperature']:.2f}"),
    ])
    rows = [(name, f"{v['photos_as_given']['wildlife_right']:.1%}", f"{v['photos_as_given']['other_right']:.1%}",
             f"{v['scene_views']['wildlife_right']:.1%}") for name, v in report["cross_validation"].items()]
    table(f"Build-time 5-fold CV on {report['photos']} dev photos (golden left out): wildlife right, other right, "
          "wildlife right on scene views", rows)


def cross_validate(dev: list[Path]) -> None:
    """5-fold CV of the whole verdict over the dev photos: domain per domain and confident class precision."""
    spec = importlib.util.spec_from_file_location("build_domain_head", REPO_ROOT / "scripts" / "build_domain_head.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    from recognizer import calibration
    from recognizer.domain_head import log_mass
    from recognizer.groups import groups_for
    from recognizer.labels import imagenet_classes
    from recognizer.verdict import Thresholds, decide

    items = build.photos(dev)
    labels = np.array([d for _, d in items])
    features, probabilities = build.extract(items, 6, 0, REPO_ROOT / "var" / "feature-cache")
    classes, fold = imagenet_classes(), build.folds_of(labels, 0)
    truth = build.imagenet_truth(items, MAPPING)
    mass = build.MASS_WEIGHT * log_mass(
        probabilities.reshape(-1, probabilities.shape[2]), classes).reshape(*probabilities.shape[:2], -1)
    logits = build.out_of_fold(features, labels, fold, 0, mass) + mass
    domains = np.zeros(len(items), dtype=int)
    given, right = 0, 0
    for k in range(5):
        train, held = fold != k, fold == k
        d_t = calibration.fit_temperature(logits[train].reshape(-1, 4), np.repeat(labels[train], logits.shape[1]))
        c = build.calibrate_classes(probabilities[train], truth[train], classes)
        thresholds = Thresholds(domain=0.5, label=c["label_threshold"], group=c["group_threshold"])
        for n in np.flatnonzero(held):
            p = calibration.scaled(calibration.as_logits(probabilities[n, :1]), c["temperature"])[0]
            v = decide(p, calibration.scaled(logits[n, :1], d_t)[0], classes, groups_for(classes), thresholds)
            domains[n] = DOMAINS.index(v.domain)
            if v.level == "class" and truth[n] >= 0:
                given, right = given + 1, right + (v.index == truth[n])
    table(f"Dev photos, 5-fold CV of the whole verdict ({len(items)} photos): domain right", [
        (d, f"{int(((domains == labels) & (labels == i)).sum())}/{int((labels == i).sum())}",
         f"{((domains == labels) & (labels == i)).sum() / max((labels == i).sum(), 1):.1%}") for i, d in enumerate(DOMAINS)
    ] + [("wildlife", "", f"{(domains == labels)[labels != 3].mean():.1%}")])
    table("Dev photos with an ImageNet class: confident class-level verdicts (CV)",
          [("right / given", f"{right}/{given}", f"{right / max(given, 1):.1%}")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", nargs="+", type=Path, help="wildlife-dev and everyday-dev folders: redo the CV")
    args = parser.parse_args(argv)
    from recognizer.default_model import build_default
    from recognizer.optimized import load_engine

    golden(load_engine(build_default()))
    recorded()
    if args.dev:
        cross_validate(args.dev)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
