"""Train the default model's domain head (animal / bird / plant / other) and write it under recognizer/data/.

    .venv/bin/python scripts/build_domain_head.py DATA_DIR [DATA_DIR ...] [--views 6] [--seed 0]

Each DATA_DIR holds folders named after domains (animal/, bird/, plant/,
other/) of photos. Every photo is seen as it is and as `--views` scene
versions (recognizer.scenes: its cut-out on a synthetic backdrop, cropped), all
through one pass of the default model, which gives the pooled features and
the ImageNet probabilities. 5-fold cross-validation by photo (all views of a
photo in one fold, so no photo is ever scored by a head that saw it) compares
the ImageNet probability mass per domain, a head on the features alone, the
head's logits plus the log mass at a few weights, and heads fitted with that
mass term already in their logits (the shipped way); the out-of-fold answers
also fit the temperature and the confidence threshold. The photos mapped by
hand to ImageNet classes (bench/dev_photo_classes.csv) give the ImageNet
head's temperature and the label and group thresholds. Photos that are also in the repository's
golden set (recognizer/data/photos/golden) are left out of all of it. Then the head is fitted on everything and
written, with a JSON report, to recognizer/data/. Same photos and seed, same
bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recognizer import calibration, domain_head  # noqa: E402
from recognizer.default_model import EARLIER_HEADS  # noqa: E402
from recognizer.manifest import DOMAINS  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "recognizer" / "data"
FOLDS = 5
DOMAIN_PRECISION = 0.95  # a domain answer called confident must be right this often, out of fold
MASS_WEIGHTS = (0.3, 0.5, 1.0)  # compared by cross-validation
MASS_WEIGHT = 1.0  # the one shipped, fitted with the head: best wildlife figure without losing "other" (JSON report)
LABEL_PRECISION = 0.95  # and so must a class or group answer
CLASS_MAP = Path(__file__).resolve().parent.parent / "bench" / "dev_photo_classes.csv"


def held_out(items: list[tuple[Path, int]], golden: Path) -> np.ndarray:
    """True for photos that are also in the repository's golden set (same domain and name): never trained on."""
    names = {f"{p.parent.name}/{p.name}" for p in golden.glob("*/*.jpg")}
    return np.array([f"{p.parent.name}/{p.name}" in names for p, _ in items])


def photos(roots: list[Path]) -> list[tuple[Path, int]]:
    """(path, domain index) of every photo under <root>/<domain>/, sorted so the order never depends on the disk."""
    found = []
    for root in roots:
        for d, domain in enumerate(DOMAINS):
            found += [(p, d) for p in sorted((root / domain).glob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if not found:
        sys.exit(f"No photos under {', '.join(map(str, roots))} in folders named {', '.join(DOMAINS)}.")
    return found


def views(path: Path, count: int, seed: int):
    """The photo itself, then `count` scene versions drawn from a seed tied to its bytes."""
    from PIL import Image

    from recognizer.scenes import in_scene

    image = Image.open(path).convert("RGB")
    key = int.from_bytes(hashlib.sha256(path.read_bytes()).digest()[:4], "big")
    return [image] + [in_scene(image, np.random.default_rng([seed, key, k])) for k in range(count)]


def extract(items: list[tuple[Path, int]], count: int, seed: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(photos, views, features) pooled features and (photos, views, classes) ImageNet probabilities, cached."""
    key = hashlib.sha256(repr((count, seed, [p.read_bytes() for p, _ in items])).encode()).hexdigest()[:16]
    cached = cache / f"domain-head-{key}.npz"
    if cached.is_file():
        with np.load(cached) as data:
            return data["features"], data["probabilities"]
    features, probabilities = _extract(items, count, seed)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cached, features=features, probabilities=probabilities)
    return features, probabilities


def _extract(items: list[tuple[Path, int]], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from tqdm import tqdm

    from recognizer.artifacts import load_artifact
    from recognizer.default_model import build_default
    from recognizer.feature_maps import pooled, with_feature_map
    from recognizer.preprocessing import to_batch

    artifact = load_artifact(build_default())
    model = with_feature_map(artifact.model)
    features, probabilities = [], []
    for path, _ in tqdm(items, desc="photos", unit="photo", file=sys.stderr):
        batch = np.concatenate([to_batch(v, artifact.manifest.input) for v in views(path, count, seed)])
        probs, fmap = model(batch, training=False)
        features.append(pooled(np.asarray(fmap)))
        probabilities.append(np.asarray(probs, dtype=np.float64))
    return np.stack(features), np.stack(probabilities)


def folds_of(labels: np.ndarray, seed: int) -> np.ndarray:
    """Fold number per photo, each domain dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    for d in np.unique(labels):
        idx = np.flatnonzero(labels == d)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % FOLDS
    return fold


def out_of_fold(inputs: np.ndarray, labels: np.ndarray, fold: np.ndarray, seed: int,
                offset: np.ndarray | None = None) -> np.ndarray:
    """(photos, views, 4) logits of the head alone, each photo's from the head trained on the other folds' views
    (with `offset`, the (photos, views, 4) other expert's logits, in its logits while it learns)."""
    n, v, _ = inputs.shape
    logits = np.zeros((n, v, len(DOMAINS)))
    for k in range(FOLDS):
        train, held = fold != k, fold == k
        given = None if offset is None else offset[train].reshape(-1, len(DOMAINS))
        head = domain_head.fit(inputs[train].reshape(-1, inputs.shape[2]), np.repeat(labels[train], v), offset=given, seed=seed)
        logits[held] = head.logits(inputs[held].reshape(-1, inputs.shape[2])).reshape(-1, v, len(DOMAINS))
    return logits


def scores(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Share right per domain, and the two figures the service is held to."""
    right = predicted == labels
    per = {d: float(right[labels == i].mean()) for i, d in enumerate(DOMAINS) if (labels == i).any()}
    wildlife = labels != DOMAINS.index("other")
    return {"wildlife_right": float(right[wildlife].mean()), "other_right": per.get("other", float("nan")), "per_domain": per}


def compare(features, probabilities, labels, classes, fold, seed) -> tuple[dict, np.ndarray]:
    """Cross-validated figures of each way to decide the domain; returns them and the chosen way's logits.

    "head_plus_W_mass" adds the weighted log mass to a head fitted alone; "head_with_W_mass" fits the head with
    that term already in its logits (the shipped way, at MASS_WEIGHT).
    """
    n, v = labels.shape[0], features.shape[1]
    mass = domain_head.log_mass(probabilities.reshape(n * v, -1), classes).reshape(n, v, -1)
    head = out_of_fold(features, labels, fold, seed)
    logits = {"imagenet_mass": mass, "head_on_features": head}
    logits.update({f"head_plus_{w}_mass": head + w * mass for w in MASS_WEIGHTS})
    logits.update({f"head_with_{w}_mass": out_of_fold(features, labels, fold, seed, w * mass) + w * mass
                   for w in MASS_WEIGHTS})
    report = {
        name: {"photos_as_given": scores(l[:, 0].argmax(-1), labels), "scene_views": scores(
            l[:, 1:].argmax(-1).ravel(), np.repeat(labels, v - 1))}
        for name, l in logits.items()
    }
    return report, logits[f"head_with_{MASS_WEIGHT}_mass"]


def calibrate(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Temperature, ECE before/after and the confident threshold, from out-of-fold answers on every view."""
    flat, truth = logits.reshape(-1, len(DOMAINS)), np.repeat(labels, logits.shape[1])
    temperature = calibration.fit_temperature(flat, truth)
    before, after = calibration.scaled(flat, 1.0), calibration.scaled(flat, temperature)
    threshold = calibration.threshold_for_precision(after.max(1), after.argmax(1) == truth, precision=DOMAIN_PRECISION)
    return {
        "temperature": temperature,
        "ece_before": calibration.expected_calibration_error(before, truth),
        "ece_after": calibration.expected_calibration_error(after, truth),
        "confident_threshold": threshold,
        "confident_precision_target": DOMAIN_PRECISION,
    }


def imagenet_truth(items: list[tuple[Path, int]], table: Path) -> np.ndarray:
    """The ImageNet class each photo shows, from the hand-made table; -1 where ImageNet has no such class."""
    import csv

    with open(table, encoding="utf-8", newline="") as handle:
        known = {(row["dataset"], row["path"]): row["index"] for row in csv.DictReader(handle)}
    keys = [(p.parent.parent.name, f"{p.parent.name}/{p.name}") for p, _ in items]
    return np.array([int(known[k]) if known.get(k) else -1 for k in keys])


def calibrate_classes(probabilities: np.ndarray, truth: np.ndarray, classes) -> dict:
    """Temperature of the ImageNet head and the label and group thresholds, on every view of the mapped photos."""
    from recognizer.groups import groups_for

    mapped = truth >= 0
    v = probabilities.shape[1]
    logits = calibration.as_logits(probabilities[mapped].reshape(-1, probabilities.shape[2]))
    labels = np.repeat(truth[mapped], v)
    temperature = calibration.fit_temperature(logits, labels)
    after = calibration.scaled(logits, temperature)
    label = calibration.threshold_for_precision(after.max(1), after.argmax(1) == labels, precision=LABEL_PRECISION)
    group = calibration.group_threshold(after, labels, classes, groups_for(classes), label_threshold=label,
                                        precision=LABEL_PRECISION)
    return {
        "temperature": temperature, "photos": int(mapped.sum()),
        "ece_before": calibration.expected_calibration_error(calibration.scaled(logits, 1.0), labels),
        "ece_after": calibration.expected_calibration_error(after, labels),
        "label_threshold": label, "group_threshold": group, "precision_target": LABEL_PRECISION,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--views", type=int, default=6, help="scene versions per photo (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--golden", type=Path, default=DATA / "photos" / "golden", help="photos never trained on")
    parser.add_argument("--classes", type=Path, default=CLASS_MAP, help="photo -> ImageNet class table")
    parser.add_argument("--cache", type=Path, default=DATA.parent.parent / "var" / "feature-cache")
    parser.add_argument("--out", type=Path, default=DATA / "domain_head-efficientnet_lite0.npz")
    args = parser.parse_args(argv)

    from recognizer.labels import imagenet_classes

    items = photos(args.data)
    features, probabilities = extract(items, args.views, args.seed, args.cache)
    keep = ~held_out(items, args.golden)  # the golden photos evaluate the service, so nothing learns from them
    items, features, probabilities = [i for i, k in zip(items, keep) if k], features[keep], probabilities[keep]
    labels = np.array([d for _, d in items])
    classes = imagenet_classes()
    report, logits = compare(features, probabilities, labels, classes, folds_of(labels, args.seed), args.seed)
    calibrated = calibrate(logits, labels)
    class_calibration = calibrate_classes(probabilities, imagenet_truth(items, args.classes), classes)
    n, v = probabilities.shape[:2]
    mass = MASS_WEIGHT * domain_head.log_mass(probabilities.reshape(n * v, -1), classes)
    head = domain_head.fit(features.reshape(n * v, -1), np.repeat(labels, v), offset=mass, seed=args.seed)
    head = domain_head.DomainHead(head.weights, head.bias, calibrated["temperature"], "efficientnet_lite0", MASS_WEIGHT)
    replaced = args.out.read_bytes() if args.out.is_file() else b""
    replaced_sha256 = hashlib.sha256(replaced).hexdigest()
    sha256 = head.save(args.out)
    if replaced and replaced_sha256 != sha256:
        # Versions registered with the replaced head still name it by its sha256: keep it for them.
        EARLIER_HEADS.mkdir(exist_ok=True)
        (EARLIER_HEADS / f"{replaced_sha256}.npz").write_bytes(replaced)
    summary = {
        "file": args.out.name, "sha256": sha256, "photos": int(n), "views_per_photo": int(v), "seed": args.seed,
        "left_out_as_golden": int((~keep).sum()), "folds": FOLDS, "cross_validation": report, "calibration": calibrated, "class_calibration": class_calibration,
        "photos_per_domain": {d: int((labels == i).sum()) for i, d in enumerate(DOMAINS)},
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
