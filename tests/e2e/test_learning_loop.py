"""The learning loop end to end: a real gunicorn and the real job worker (`manage.py task_worker`).

Predict photos, send feedback, accept it in the admin, export a dataset, start a training job from the
admin, watch it finish, read the gate's figures, activate, and get the new version's answer; then the same
job on RQ with Debian's redis-server, and a training process that crashes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import TINY_NAME
from tests.e2e.conftest import BIN, REPO_ROOT, free_port
from tests.synthetic import picture, write_dataset
from tests.webapp.helpers import encode

pytestmark = pytest.mark.e2e

PASSWORD = "loop-test-password"
KINDS = {"red-stripes": ("Red stripes", "animal"), "blue-circle": ("Blue circle", "plant")}
JOB_SECONDS = 300


class Worker:
    """`manage.py task_worker` with a server's environment, stopped with its process group."""

    def __init__(self, server, *args: str, env: dict | None = None):
        self.log = server.root / f"worker-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "python"), "manage.py", "task_worker", *args], cwd=REPO_ROOT, env={**server.env, **(env or {})},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            return  # the whole group has ended already
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def workers():
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def admin_session(server) -> requests.Session:
    server.manage("shell", "-c", (
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('admin', 'admin@example.org', {PASSWORD!r})"
    ))
    session = requests.Session()
    session.get(server.url("/admin/login/"), timeout=10)
    reply = session.post(server.url("/admin/login/?next=/admin/"), timeout=10, data={
        "username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"],
    })
    assert reply.url.endswith("/admin/"), reply.text[:2000]
    return session


def admin_post(session: requests.Session, url: str, data: dict) -> requests.Response:
    reply = session.post(url, data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=30)
    assert reply.status_code == 200, reply.text[:2000]
    return reply


def shell(server, code: str) -> str:
    return server.manage("shell", "-c", code).strip().splitlines()[-1]


def wait_for_job(session, server, job_id: int, worker: Worker, on_running=None) -> tuple[dict, list[str]]:
    """Poll the admin's progress view as the page does, until the job ends; returns it and what was shown."""
    seen, deadline = [], time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        try:
            job = session.get(server.url(f"/admin/webapp/trainingjob/{job_id}/progress/"), timeout=10).json()
        except (requests.RequestException, ValueError):  # the web workers are restarting
            time.sleep(0.5)
            continue
        seen.append(job["text"])
        if job["status"] == "running" and on_running is not None:
            on_running()
            on_running = None
        if job["status"] not in ("queued", "running"):
            return job, seen
        time.sleep(0.5)
    pytest.fail(f"the job did not finish in {JOB_SECONDS}s: {seen[-3:]}\n{worker.output()}")


def loop_photos() -> dict[str, list[bytes]]:
    return {kind: [encode(picture(kind, seed=500 + i), "JPEG", quality=92) for i in range(4)] for kind in KINDS}


def send_feedback(server, photos: dict[str, list[bytes]]) -> list[int]:
    ids = []
    for kind, items in photos.items():
        label, domain = KINDS[kind]
        for data in items:
            reply = requests.post(server.url("/api/v1/predict"), files={"image": ("p.jpg", data, "image/jpeg")}, timeout=10)
            assert reply.status_code == 200 and reply.json()["model"]["version"] == 1, reply.text
            said = requests.post(server.url(f"/api/v1/predictions/{reply.json()['id']}/feedback"), timeout=10,
                                 json={"correct": False, "label": label, "domain": domain})
            assert said.status_code == 201, said.text
            ids.append(said.json()["id"])
    return ids


def test_the_whole_loop_with_a_real_gunicorn_and_the_real_job_worker(make_server, tiny_artifact, workers, tmp_path):
    server, _ = make_server(tiny_artifact)
    workers.append(Worker(server))
    photos = loop_photos()
    feedback_ids = send_feedback(server, photos)
    session = admin_session(server)

    queue = admin_post(session, server.url("/admin/webapp/feedback/"), {"action": "accept_as_said", "_selected_action": feedback_ids})
    assert queue.text.count("Accepted feedback") == 8, queue.text[:3000]

    printed = server.manage("export_dataset", "--out", str(tmp_path / "data"))
    dataset_id = int(re.search(r"dataset (\d+): 8 images in 2 classes \(8 from feedback\)", printed).group(1))
    golden = write_dataset(tmp_path / "golden", {kind: 3 for kind in KINDS}, seed=9)
    shell(server, f"from webapp.models import GoldenSet; print(GoldenSet.objects.create(model_name={TINY_NAME!r}, path={str(golden)!r}).pk)")

    started = admin_post(session, server.url("/admin/webapp/trainingjob/start/"), {
        "dataset": dataset_id, "model_name": TINY_NAME, "backbone": "efficientnet_lite0", "epochs": 20, "fine_tune_layers": 0,
    })
    job_id = int(re.search(r"/trainingjob/(\d+)/change/", started.url).group(1))
    restarted = []

    def restart_web_workers():  # the job runs in the job worker: a restart of gunicorn's workers does not touch it
        restarted.extend(server.worker_pids())
        os.kill(server.process.pid, signal.SIGHUP)

    job, seen = wait_for_job(session, server, job_id, workers[0], on_running=restart_web_workers)
    assert restarted and not set(restarted) & server.worker_pids()
    assert job["status"] == "succeeded", (job, workers[0].output())
    assert any(re.match(r"head epoch \d+/20 · loss [\d.]+ · accuracy [\d.]+", text) for text in seen) or job["progress"]["epoch"] >= 1
    version_id = job["version"]["id"]
    assert job["version"]["name"] == f"{TINY_NAME} v2"

    page = session.get(server.url(f"/admin/webapp/modelversion/{version_id}/change/"), timeout=10).text
    figures = re.search(r'id="gate-figures".*?<td>6 photos, [^<]*</td><td>([\d.]+)%</td><td>v1: ([\d.]+)%</td>', page, re.S)
    assert figures, job["log_tail"]
    candidate, active = (float(x) for x in figures.groups())
    assert candidate >= 80 and active == 0.0  # v1 knows none of the golden set's classes
    assert f"dataset {dataset_id}" in page  # the version names the data it was trained on

    activated = admin_post(session, server.url("/admin/webapp/modelversion/"), {"action": "activate_selected", "_selected_action": [version_id]})
    assert "is now active" in activated.text

    same_photo = photos["red-stripes"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = requests.post(server.url("/api/v1/predict"), files={"image": ("p.jpg", same_photo, "image/jpeg")}, timeout=10).json()
        if body["model"]["version"] == 2:
            break
        time.sleep(0.5)
    assert body["model"] == {"name": TINY_NAME, "version": 2}
    assert body["predictions"][0]["label"] == "Red stripes"


def test_a_training_process_that_crashes_leaves_the_job_failed_with_its_log(make_server, tiny_artifact, workers, tmp_path):
    server, job_id = _long_job(make_server, tiny_artifact, tmp_path, "crash")
    workers.append(Worker(server))
    child = _wait_for_child(workers[0])
    progress = "from webapp.models import TrainingJob; print(bool(TrainingJob.objects.get(pk=%d).progress))" % job_id
    deadline = time.monotonic() + 120
    while shell(server, progress) != "True" and time.monotonic() < deadline:  # crash it mid-training
        time.sleep(0.5)
    os.kill(child, signal.SIGKILL)  # as the kernel's OOM killer would
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = json.loads(shell(server, (
            "import json; from webapp.models import TrainingJob; j = TrainingJob.objects.get(pk=%d); "
            "print(json.dumps({'status': j.status, 'error': j.error, 'log': j.log}))" % job_id
        )))
        if job["status"] != "running":
            break
        time.sleep(0.5)
    assert job["status"] == "failed", job
    assert "exited with status -9" in job["error"]
    assert "computing features" in job["log"]  # the child's output up to the crash
    assert workers[0].process.poll() is None  # the worker itself lives on


def test_a_job_whose_worker_dies_keeps_its_slot_and_ends_as_its_training_process_says(make_server, tiny_artifact, workers, tmp_path):
    """Killing the worker alone leaves its training child running: the job is not called failed (nor the slot
    given to another job) while the child trains, and the child records how the job ended."""
    server, job_id = _long_job(make_server, tiny_artifact, tmp_path, "orphan")
    workers.append(Worker(server))
    child = _wait_for_child(workers[0])
    os.kill(workers[0].process.pid, signal.SIGKILL)  # the worker only, not its child
    workers[0].process.wait(timeout=10)
    reaped = "from webapp import training_jobs; from webapp.models import TrainingJob; n = training_jobs.training_jobs_reap(); "
    assert shell(server, reaped + "print(n, TrainingJob.objects.get(pk=%d).status)" % job_id) == "0 running"
    shell(server, "from webapp import training_jobs; from webapp.models import TrainingJob; "
                  "training_jobs.training_job_cancel(job=TrainingJob.objects.get(pk=%d))" % job_id)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        time.sleep(0.5)
    ended = "from webapp.models import ModelVersion, TrainingJob; print(TrainingJob.objects.get(pk=%d).status, ModelVersion.objects.filter(name='orphan').count())"
    assert shell(server, ended % job_id) == "cancelled 0"


def _long_job(make_server, tiny_artifact, tmp_path, model_name: str):
    """A server and a queued 500-epoch job on a small exported dataset: long enough to interrupt."""
    server, _ = make_server(tiny_artifact, env={"TRAINING_THREADS": "1"})
    base = write_dataset(tmp_path / "base", {kind: 3 for kind in KINDS})
    (base / "classes.csv").write_text("folder,label,domain\nred-stripes,Red stripes,animal\nblue-circle,Blue circle,plant\n")
    server.manage("export_dataset", "--out", str(tmp_path / "data"), "--include-base", str(base))
    job_id = int(shell(server, (
        "from webapp import training_jobs; from webapp.models import Dataset; "
        f"print(training_jobs.training_job_start(dataset=Dataset.objects.get(), model_name={model_name!r}, backbone='efficientnet_lite0', epochs=500).pk)"
    )))
    return server, job_id


def _wait_for_child(worker: Worker, seconds: float = 60) -> int:
    """The pid of the worker's `run_training_job` child, once it has started training."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                stat = (proc / "stat").read_text().split()
            except OSError:
                continue
            if b"run_training_job" in cmdline and os.getpgid(int(proc.name)) == worker.process.pid:
                assert int(stat[18]) == 10  # niced below the web workers
                environ = (proc / "environ").read_bytes().split(b"\0")
                assert b"RECOGNIZER_INTRA_THREADS=1" in environ and b"OMP_NUM_THREADS=1" in environ  # TRAINING_THREADS
                return int(proc.name)
        time.sleep(0.2)
    pytest.fail(f"no training child appeared:\n{worker.output()}")


@pytest.fixture
def redis_url(tmp_path):
    """Debian's redis-server on a free loopback port, with its own folder, stopped afterwards."""
    if not shutil.which("redis-server"):
        pytest.skip("needs Debian's redis-server (apt-get install redis-server; .ci/run installs it)")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import redis

            redis.Redis(port=port).ping()
            break
        except Exception:  # not listening yet
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def test_with_a_broker_url_the_job_runs_on_an_rq_worker(make_server, tiny_artifact, redis_url, workers, tmp_path):
    server, _ = make_server(tiny_artifact, env={"TASKS_BROKER_URL": redis_url})
    base = write_dataset(tmp_path / "base", {kind: 3 for kind in KINDS})
    (base / "classes.csv").write_text("folder,label,domain\nred-stripes,Red stripes,animal\nblue-circle,Blue circle,plant\n")
    server.manage("export_dataset", "--out", str(tmp_path / "data"), "--include-base", str(base))
    job_id = shell(server, (
        "from webapp import training_jobs; from webapp.models import Dataset; "
        "print(training_jobs.training_job_start(dataset=Dataset.objects.get(), model_name='on-rq', backbone='efficientnet_lite0', epochs=5).pk)"
    ))
    import redis

    assert redis.Redis.from_url(redis_url).llen("rq:queue:default") == 1  # on Redis, not in the database
    server.manage("task_worker", "--batch", timeout=JOB_SECONDS)
    status = shell(server, f"from webapp.models import TrainingJob; j = TrainingJob.objects.get(pk={job_id}); print(j.status, j.version)")
    assert status == "succeeded on-rq v1"
