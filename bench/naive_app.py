"""The naive baseline for bench/http_bench.py: how most Django + Keras services serve a model.

One module-level Keras model (loaded once per process), one view, `model.predict`
per request, default sync gunicorn workers. It uses the project's preprocessing so
that its answers can be compared with the real service's, top-5 for top-5.

    NAIVE_MODEL=models/x.h5 gunicorn bench.naive_app:application -w 2 -b 127.0.0.1:8100
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="bench-only",
    DATA_UPLOAD_MAX_MEMORY_SIZE=50 * 1024 * 1024,
)
django.setup()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from recognizer.manifest import manifest_path, read_manifest  # noqa: E402
from recognizer.preprocessing import load_batch  # noqa: E402

MODEL_PATH = Path(os.environ["NAIVE_MODEL"])
MANIFEST = read_manifest(manifest_path(MODEL_PATH))
MODEL = keras.models.load_model(MODEL_PATH, compile=False)


@csrf_exempt
def predict(request):
    batch = load_batch(request.FILES["image"].read(), MANIFEST.input)
    probabilities = MODEL.predict(batch, verbose=0)[0]
    top = np.argsort(-probabilities)[:5]
    return JsonResponse(
        {"predictions": [{"label": MANIFEST.classes[i].label, "probability": float(probabilities[i])} for i in top]}
    )


def ready(request):
    return JsonResponse({"status": "ready"})


urlpatterns = [path("api/v1/predict", predict), path("readyz", ready)]
application = get_wsgi_application()
