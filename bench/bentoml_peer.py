"""The BentoML peer of bench/http_bench.py: the endpoint a user would write with BentoML 1.4 for the same model.

Two workers with one intra-op thread each (as the service runs), a sync
`@bentoml.api` that opens the upload with Pillow (draft mode, resize, crop,
normalize through the project's one preprocessing function, so the answers
compare top-5 for top-5) and runs the same ONNX file with ONNX Runtime. It runs
in its own virtualenv, made by bench/http_bench.py; the project never imports it.

    PEER_MODEL=models/x.onnx PEER_MANIFEST=models/x.json bentoml serve bentoml_peer:Recognizer --port 8200
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


@bentoml.service(workers=2, traffic={"timeout": 60, "max_concurrency": 16})
class Recognizer:
    def __init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("PEER_THREADS", "1"))
        options.inter_op_num_threads = 1
        self.manifest = read_manifest(os.environ["PEER_MANIFEST"])
        self.session = ort.InferenceSession(os.environ["PEER_MODEL"], options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    @bentoml.api
    def predict(self, image: Path) -> dict:
        batch = to_batch(open_image(image), self.manifest.input)
        probabilities = self.session.run(None, {self.input: batch})[0][0]
        top = np.argsort(-probabilities)[:5]
        classes = self.manifest.classes
        return {"predictions": [{"label": classes[i].label, "probability": float(probabilities[i])} for i in top]}
