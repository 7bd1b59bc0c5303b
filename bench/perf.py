"""CPU performance of the recognizer: model-only speed per engine, image decoding, and peak memory.

    python bench/perf.py [--quick] [--sections prepare,model,decode,memory] [--engines onnxruntime,openvino]
                         [--threads 1,2] [--work DIR]

Sections (each prints a plain-text table; nothing is asserted):

  prepare  build the default model and a random-weight ResNet50 as artifacts in --work, compile them for each
           engine (cached; rebuilt when the artifact changes) and report the parity check against Keras
  model    batch-1 latency (median of N runs after warm-up) and batch-8/32 throughput, per model and intra-op
           thread count: Keras model.predict, Keras model(x) under tf.function (the Engine), each optimized engine
  decode   open + decode + preprocess of a 12 MP and a 1 MP JPEG (quality 90), with and without draft decoding
  memory   peak RSS of a fresh process that loads the default model with each engine and classifies a photo

TensorFlow's thread pools are fixed when it starts, so every measurement that needs TensorFlow runs in its
own subprocess (this file, re-run with --worker). A new section is a function added to SECTIONS.
The machine may be shared: the load average is printed with each table, and numbers under load are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from recognizer.photos import photo_paths, role_dir  # noqa: E402  (imports no TensorFlow)

DEFAULT_WORK = REPO_ROOT / "var" / "bench"
MODELS = {"default": "imagenet-efficientnet_lite0-v1.h5", "resnet50": "resnet50-random-v1.h5"}
ENGINES = ("onnxruntime", "openvino")
FULL = {"b1": 12, "b8": 3, "b32": 2, "decode": 7}
QUICK = {"b1": 5, "b8": 1, "b32": 1, "decode": 3}
SOURCE_PHOTO = "animal/giraffe.jpg"


# ---- workers: run in subprocesses -------------------------------------------------------------

def start_tensorflow(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def ensure_artifacts(work: Path) -> dict[str, Path]:
    """The default model and a seeded random-weight ResNet50, saved as artifacts (built once)."""
    from recognizer.default_model import build_default

    paths = {name: work / file for name, file in MODELS.items()}
    build_default(out=paths["default"])
    if not paths["resnet50"].exists():
        import keras

        from recognizer.artifacts import save_artifact
        from recognizer.backbones.resnet50 import INPUT_SPEC, build_resnet50
        from recognizer.labels import imagenet_classes
        from recognizer.manifest import Manifest

        keras.utils.set_random_seed(0)
        manifest = Manifest(name="resnet50-random", backbone="resnet50", input=INPUT_SPEC, classes=imagenet_classes())
        save_artifact(build_resnet50(weights=None), manifest, paths["resnet50"])
    return paths


def is_compiled(h5: Path, kind: str) -> bool:
    from recognizer import optimized
    from recognizer.manifest import manifest_path, read_manifest

    record = optimized.parity_record_path(h5, kind)
    if not (record.is_file() and optimized.compiled_path(h5, kind).is_file()):
        return False
    return json.loads(record.read_text())["artifact_sha256"] == read_manifest(manifest_path(h5)).sha256


def worker_prepare(args) -> list[dict]:
    start_tensorflow(2)
    from recognizer.engine import Engine
    from recognizer.optimized import optimize_artifact, parity_images, parity_record_path

    rows = []
    for model, h5 in ensure_artifacts(args.work).items():
        keras_engine = None
        for kind in args.engines:
            started, cached = time.perf_counter(), is_compiled(h5, kind)
            if not cached:
                keras_engine = keras_engine or Engine.from_path(h5)
                optimize_artifact(keras_engine, kind, parity_images())
            record = json.loads(parity_record_path(h5, kind).read_text())
            seconds = "cached" if cached else f"{time.perf_counter() - started:.1f}"
            parity = record["parity"] or {}
            rows.append([model, kind, seconds, "yes" if record["passed"] else "NO",
                         f"{parity.get('max_abs_diff', float('nan')):.1e}", record["reason"][:90]])
    return rows


def photo_batch(spec, size: int):
    import numpy as np

    from recognizer.preprocessing import load_batch

    photos = [load_batch(path, spec) for path in photo_paths("parity")]
    return np.concatenate([photos[i % len(photos)] for i in range(size)])


def runners(h5: Path, engines, threads: int) -> dict:
    from recognizer.artifacts import load_artifact
    from recognizer.engine import Engine
    from recognizer.optimized import compiled_engine, compiled_path

    artifact = load_artifact(h5)
    model, keras_engine = artifact.model, Engine.keras(artifact)
    found = {
        "keras model.predict": lambda x: model.predict(x, batch_size=len(x), verbose=0),
        "keras tf.function (Engine)": keras_engine.probabilities,
    }
    for kind in engines:  # built directly: a failed parity must not turn this row into Keras
        engine = compiled_engine(artifact, compiled_path(h5, kind), kind, threads=threads)
        found[f"{kind} (compiled Engine)"] = engine.probabilities
    return found


def timed(run, batch) -> float:
    started = time.perf_counter()
    run(batch)
    return time.perf_counter() - started


def worker_model(args) -> list[dict]:
    """Interleave the runners, so that a change in the machine's load hits them all alike."""
    start_tensorflow(args.threads)
    h5 = args.work / MODELS[args.model]
    found = runners(h5, args.engines, args.threads)
    from recognizer.manifest import manifest_path, read_manifest

    spec = read_manifest(manifest_path(h5)).input
    batches = {size: photo_batch(spec, size) for size in (1, 8, 32)}
    times = {name: {1: [], 8: [], 32: []} for name in found}
    for name, run in found.items():  # warm-up: tracing, allocation, first-call costs
        for size in (1, 1, 8):
            run(batches[size])
    for size, repeats in ((1, args.iters["b1"]), (8, args.iters["b8"]), (32, args.iters["b32"])):
        for _ in range(repeats):
            for name, run in found.items():
                times[name][size].append(timed(run, batches[size]))
    return [
        {"runner": name, "b1_ms": 1000 * statistics.median(t[1]), "b1_p90_ms": 1000 * _p90(t[1]),
         "b8": 8 / statistics.median(t[8]), "b32": 32 / statistics.median(t[32])}
        for name, t in times.items()
    ]


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def worker_memory(args) -> dict:
    import resource

    if args.engine == "keras":
        start_tensorflow(args.threads)
    from recognizer import optimized

    engine = optimized.load_engine(args.work / MODELS["default"], args.engine)
    engine.warm_up()
    top = engine.classify([photo_paths("parity")[0]], top_k=1)[0][0]
    return {
        "engine": engine.kind,
        # Linux reports KiB, and carries the spawning parent's peak over exec: the parent stays small.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vm_hwm_mb": _vm_hwm_kib() / 1024,
        "tensorflow": "tensorflow" in sys.modules,
        "top1": top.label,
    }





# ---- sections: run in the parent -------------------------------------------------------------

def spawn(args, worker: str, **extra):
    """Run a worker in a fresh interpreter and return what it printed as JSON on its last line."""
    command = [sys.executable, __file__, "--worker", worker, "--work", str(args.work),
               "--engines", ",".join(args.engines), "--iters", json.dumps(args.iters)]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"worker {worker} {extra} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{title}  (load average {load}, {os.cpu_count()} CPUs)")
    for n, row in enumerate(cells):
        aligned = [c.rjust(w) if i and c[:1].isdigit() else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(aligned).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def section_prepare(args) -> None:
    rows = spawn(args, "prepare")
    table("Compiled models and parity with Keras (8 real photos, top-5 + max |diff| < 1e-3)",
          ["model", "engine", "compile s", "parity", "max diff", "reason"], rows)


def section_model(args) -> None:
    rows = []
    for model in MODELS:
        for threads in args.threads:
            for r in spawn(args, "model", model=model, threads=threads):
                rows.append([model, threads, r["runner"], f"{r['b1_ms']:.1f}", f"{r['b1_p90_ms']:.1f}",
                             f"{r['b8']:.1f}", f"{r['b32']:.1f}"])
    table(f"Model only: batch-1 latency (median/p90 of {args.iters['b1']}) and throughput "
          f"(median of {args.iters['b8']} x batch 8, {args.iters['b32']} x batch 32)",
          ["model", "threads", "runner", "b1 ms", "b1 p90 ms", "b8 img/s", "b32 img/s"], rows)


def test_jpegs(work: Path) -> dict[str, bytes]:
    """A 12 MP and a 1 MP JPEG (quality 90): a real photo upscaled, with sensor-like noise so it compresses like one."""
    import numpy as np
    from PIL import Image

    found = {}
    for label, size in (("12 MP", (4000, 3000)), ("1 MP", (1155, 866))):
        path = work / f"photo-{size[0]}x{size[1]}.jpg"
        if not path.exists():
            base = Image.open(role_dir("parity") / SOURCE_PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC)
            noise = np.random.default_rng(0).normal(0, 10, (size[1], size[0], 3))
            pixels = np.clip(np.asarray(base, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
            work.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, "JPEG", quality=90)
        found[label] = path.read_bytes()
    return found


def worker_decode(args) -> list[list]:
    from recognizer.backbones.efficientnet_lite import input_spec
    from recognizer.preprocessing import open_image, to_batch

    spec = input_spec("efficientnet_lite0")

    def without_draft(data: bytes):
        image = open_image(data)
        image.load()  # decoded at full size: the draft request in to_batch comes too late to matter
        return to_batch(image, spec)

    rows = []
    for label, data in test_jpegs(args.work).items():
        for mode, run in (("draft (to_batch)", lambda d: to_batch(open_image(d), spec)), ("full decode", without_draft)):
            run(data)
            samples = [timed(run, data) for _ in range(args.iters["decode"])]
            rows.append([label, f"{len(data) / 1e6:.2f}", mode, f"{1000 * statistics.median(samples):.1f}",
                         f"{1000 * min(samples):.1f}"])
    return rows


def section_decode(args) -> None:
    # In a worker too: a 12 MP picture would raise this process's peak RSS, which every later child inherits.
    table(f"Decode + preprocess to a 224x224 batch (median/min of {args.iters['decode']})",
          ["image", "MB", "mode", "median ms", "min ms"], spawn(args, "decode"))


def section_memory(args) -> None:
    rows = []
    for engine in ("keras", *args.engines):
        r = spawn(args, "memory", engine=engine, threads=1)
        rows.append([engine, r["engine"], f"{r['peak_rss_mb']:.0f}", f"{r['vm_hwm_mb']:.0f}",
                     "yes" if r["tensorflow"] else "no", r["top1"]])
    table("Peak RSS of a process that loads the default model and classifies one photo",
          ["asked", "served by", "ru_maxrss MB", "VmHWM MB", "TF imported", "top-1"], rows)


def _vm_hwm_kib() -> float:
    """This process's own peak RSS (/proc VmHWM), a cross-check of ru_maxrss; NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


WORKERS = {
    "prepare": worker_prepare, "model": worker_model, "decode": worker_decode, "memory": worker_memory,
}
SECTIONS = {"prepare": section_prepare, "model": section_model, "decode": section_decode, "memory": section_memory}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (about a minute less)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--threads", default="1,2", help="intra-op thread counts to compare")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where artifacts and test JPEGs are kept")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--iters", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.engines = [e for e in args.engines.split(",") if e]
    args.threads = [int(t) for t in str(args.threads).split(",")]
    args.iters = json.loads(args.iters) if args.iters else (QUICK if args.quick else FULL)
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.worker:
        args.threads = args.threads[0]
        print(json.dumps(WORKERS[args.worker](args)))
        return
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        sys.exit(f"Unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}.")
    sections = args.sections.split(",")
    if {"model", "memory"} & set(sections) and "prepare" not in sections:
        sections.insert(0, "prepare")  # they run the compiled models; cached ones are only checked
    started = time.perf_counter()
    for name in sections:
        SECTIONS[name](args)
    print(f"\n{'quick' if args.quick else 'full'} run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
