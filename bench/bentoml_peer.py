"""The BentoML peer of bench/http_bench.py: the endpoint a user would write with BentoML 1.4 for the same model.

Two workers with one intra-op thread each (as the service runs), a sync
`@bentoml.api` that opens the upload with Pillow (draft mode, resize, crop,
normalize through the project's one preprocessing function, so the answers
compare top-5 for top-5) and runs the very copy the service serves, on the same
runtime with the same settings (PEER_KIND: onnxruntime, onnxruntime-int8,
openvino, openvino-int8 or openvino-bf16; recognizer.runtimes opens it). It runs
in its own virtualenv, made by bench/http_bench.py; the project never imports it.

    PEER_MODEL=models/x.onnx PEER_KIND=onnxruntime PEER_MANIFEST=models/x.json \
        bentoml serve bentoml_peer:Recognizer --port 8200
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bentoml
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recognizer.manifest import read_manifest  # noqa: E402  (numpy and Pillow only)
from recognizer.preprocessing import open_image, to_batch  # noqa: E402
from recognizer.runtimes import open_runner, probabilities_of  # noqa: E402  (the runtime, imported when opened)


@bentoml.service(workers=2, traffic={"timeout": 60, "max_concurrency": 16})
class Recognizer:
    def __init__(self) -> None:
        kind = os.environ.get("PEER_KIND", "onnxruntime")
        runtime = kind.removesuffix("-int8").removesuffix("-bf16")
        self.manifest = read_manifest(os.environ["PEER_MANIFEST"])
        threads = int(os.environ.get("PEER_THREADS", "1"))
        self.run = open_runner(Path(os.environ["PEER_MODEL"]), runtime, threads, reduced=kind != runtime)

    @bentoml.api
    def predict(self, image: Path) -> dict:
        batch = to_batch(open_image(image), self.manifest.input)
        probabilities = probabilities_of(self.run(batch))[0]
        top = np.argsort(-probabilities)[:5]
        classes = self.manifest.classes
        return {"predictions": [{"label": classes[i].label, "probability": float(probabilities[i])} for i in top]}
