"""`python -m recognizer`: build the default model and classify files from the shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Iterator, TextIO

from recognizer import errors
from recognizer.manifest import QUERY_DOMAINS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
BATCH = 16


def iter_files(paths: list[str]) -> Iterator[Path]:
    """Files as given, and the image files inside folders (recursively, sorted)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def classify_files(engine, files: list[Path], *, top_k: int, domain: str | None, progress: bool):
    """Yield (file, Answer or error message) in order; one bad file never stops the rest."""
    from tqdm import tqdm

    from recognizer.engine import predict_files

    with tqdm(total=len(files), disable=not progress, file=sys.stderr, unit="img") as bar:
        for path, answer in predict_files(engine, files, batch_size=BATCH, top_k=top_k, domain=domain):
            yield path, str(answer.error) if answer.error else answer
            bar.update(1)


def write_result(out: TextIO, path: Path, result, as_json: bool) -> None:
    if isinstance(result, str):
        from tqdm import tqdm

        tqdm.write(f"error: {path}: {result}", file=sys.stderr)  # on a line of its own, even under a progress bar
        return
    verdict = result.verdict.to_dict() if result.verdict else None
    if as_json:
        shown = {"file": str(path), "verdict": verdict, "predictions": [p.to_dict() for p in result.predictions]}
        if result.note:
            shown["domain_note"] = result.note
        out.write(json.dumps(shown) + "\n")
        return
    ranked = ", ".join(f"{p.label} ({p.domain}) {p.probability:.1%}{_share(p)}" for p in result.predictions)
    out.write(f"{path}: {verdict['explanation'] if verdict else ''} Top: {ranked}\n")


def _share(prediction) -> str:
    share = prediction.probability_in_domain
    return "" if share is None else f" ({share:.1%} within {prediction.domain}s)"


def cmd_classify(args) -> int:
    from recognizer.default_model import default_artifact_path
    from recognizer.engine import Engine

    model_path = Path(args.model) if args.model else default_artifact_path()
    if model_path.suffix != ".h5":  # the manifest, say: it was read as a model and failed its checksum
        print(f"error: {model_path.name} is not an .h5 file: give the model's .h5 (its manifest is the .json of the "
              "same name beside it).", file=sys.stderr)
        return 2
    if not model_path.exists():
        hint = "" if args.model else "; run `python -m recognizer build-default` first"  # a path chosen is just missing
        print(f"error: no model at {model_path}{hint}.", file=sys.stderr)
        return 2
    engine = Engine.from_path(model_path)
    files = list(iter_files(args.paths))
    if not files:
        print("error: no image files found in the given paths.", file=sys.stderr)
        return 2
    progress = len(files) > 1 and (sys.stderr.isatty() or args.csv is not None)  # a bar in a log file is only noise
    results = classify_files(engine, files, top_k=args.top_k, domain=args.domain, progress=progress)
    failures = write_results(results, sys.stdout, csv_path=args.csv, as_json=args.json, top_k=args.top_k)
    return 1 if failures else 0  # a script must see that some files were not classified


def write_results(results, out: TextIO, *, csv_path: Path | None, as_json: bool, top_k: int) -> int:
    """Every (file, result) to `out`, or as rows of the CSV file at csv_path; returns how many files failed."""
    from recognizer.reports import CsvReport

    failures = 0
    with open(csv_path, "w", encoding="utf-8", newline="") if csv_path else _nothing() as handle:
        report = CsvReport(handle, top_k) if csv_path else None
        for path, result in results:
            failures += isinstance(result, str)
            if report is not None:
                report.write(path, result)
            else:
                write_result(out, path, result, as_json)
    return failures


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def cmd_build_default(args) -> int:
    from recognizer.default_model import build_default

    path = build_default(args.backbone, out=Path(args.out) if args.out else None, force=args.force)
    print(path)
    return 0


def top_k_arg(value: str) -> int:
    from recognizer.engine import MAX_TOP_K

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if not 1 <= number <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOP_K}")
    return number


def csv_out_arg(value: str) -> Path:
    """A CSV file to write, checked before any photo is classified: a wrong path fails at once, in one line."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a folder; name a file in it, e.g. {str(path / 'results.csv')!r}")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"there is no folder {str(folder)!r} to write {path.name!r} in")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{value!r} cannot be written (permission denied)")
    return path


def h5_arg(value: str) -> str:
    # Checked here: save_artifact would refuse it only after the model was built.
    if not value.endswith(".h5"):
        raise argparse.ArgumentTypeError(f"must name a .h5 file, not {value!r}")
    return value


def parser() -> argparse.ArgumentParser:
    from recognizer.backbones import NAMES

    root = argparse.ArgumentParser(prog="python -m recognizer", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="also show TensorFlow's own log lines")
    sub = root.add_subparsers(dest="command", required=True)
    build = sub.add_parser(
        "build-default", parents=[common], help="write the default ImageNet model artifact under models/"
    )
    build.add_argument("--backbone", choices=NAMES, help="default: RECOGNIZER_DEFAULT_BACKBONE or efficientnet_lite0")
    build.add_argument("--out", type=h5_arg, help="path of the .h5 to write (the manifest goes beside it)")
    build.add_argument("--force", action="store_true", help="rebuild even if the artifact exists")
    build.set_defaults(func=cmd_build_default)
    classify = sub.add_parser("classify", parents=[common], help="classify image files and folders")
    classify.add_argument("paths", nargs="+", metavar="PATH")
    classify.add_argument("--top-k", type=top_k_arg, default=5)
    classify.add_argument("--domain", choices=QUERY_DOMAINS)
    classify.add_argument("--model", help="an artifact .h5 (default: the default model)")
    classify.add_argument("--json", action="store_true", help="one JSON object per image")
    classify.add_argument("--csv", type=csv_out_arg, metavar="OUT.csv", help="write one row per photo (verdict, top-k) to this file")
    classify.set_defaults(func=cmd_classify)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # --verbose acts in __main__, before anything can load TensorFlow
    try:
        return args.func(args)
    except errors.RecognizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
