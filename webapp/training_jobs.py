"""Training jobs: started from the admin, run by the job worker, one at a time per machine, in a child process.

The worker's task (`training_job_supervise`) takes the machine's training lock and runs `manage.py
run_training_job` at a lower CPU priority with a bounded thread count, so the web workers keep answering and
a crash of TensorFlow cannot take the worker down: the job is then marked failed with the tail of its log.
The child (`training_job_execute`) reports progress after each epoch and stops between batches when asked.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recognizer import errors as core
from recognizer.backbones import NAMES
from recognizer.datasets import MIN_IMAGES_PER_CLASS
from recognizer.errors import Translatable, gettext_noop
from recognizer.progress import TrainingHooks
from recognizer.training import TrainConfig
from webapp import exports
from webapp.models import Dataset, TrainingJob

LOG_TAIL = 20_000  # characters of the child's output kept on the job
REPORT_EVERY = 0.5  # seconds between progress writes and cancellation checks


class JobError(Translatable, Exception):
    """The job cannot be started or changed as asked."""


def training_job_start(
    *, dataset: Dataset, model_name: str, backbone: str, epochs: int, fine_tune_layers: int = 0, by=None
) -> TrainingJob:
    """Record a job and put it on the queue (once the transaction commits, so the worker finds the row)."""
    from webapp import tasks
    from recognizer.manifest import MODEL_NAME_PATTERN, MODEL_NAME_RULE

    if not MODEL_NAME_PATTERN.match(model_name):
        raise JobError(gettext_noop("The model name must be %(rule)s."), rule=MODEL_NAME_RULE)
    if backbone not in NAMES:
        raise JobError(gettext_noop("Unknown backbone %(backbone)r; choose one of %(names)s."), backbone=backbone, names=", ".join(NAMES))
    if epochs < 1 or fine_tune_layers < 0:
        raise JobError(gettext_noop("Epochs must be at least 1 and fine-tune layers not negative."))
    thin = exports.dataset_thin_classes(dataset)
    if thin:  # training would refuse them after the queue: say it now
        raise JobError(gettext_noop("Every class needs at least %(minimum)d photos to train on; too few in: %(classes)s. "
                                    "Accept more photos of them, or reject those items, and export again."),
                       minimum=MIN_IMAGES_PER_CLASS, classes=", ".join(thin))
    changed = exports.dataset_changes(dataset)
    if changed:  # the worker would fail it: say it now (it checks again, for a change while the job waits)
        raise JobError(gettext_noop("The dataset folder changed since it was exported (%(changes)s): export it again."),
                       changes=changed)
    job = TrainingJob.objects.create(
        dataset=dataset, model_name=model_name, backbone=backbone, epochs=epochs, fine_tune_layers=fine_tune_layers, created_by=by
    )
    transaction.on_commit(lambda: tasks.training_job_run.enqueue(job.pk))
    return job


def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """A queued job never starts; a running one stops between two batches."""
    if job.status == TrainingJob.QUEUED:
        TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.QUEUED).update(
            status=TrainingJob.CANCELLED, cancel_requested=True, finished_at=timezone.now()
        )
    elif job.status == TrainingJob.RUNNING and job.cancel_requested:
        raise JobError(gettext_noop("Job %(id)s was already asked to stop; it stops between two batches."), id=job.pk)
    elif job.status == TrainingJob.RUNNING:
        TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    else:
        raise JobError(gettext_noop("Job %(id)s has already %(status)s."), id=job.pk, status=job.status)
    job.refresh_from_db()
    return job


def _finish(job_id: int, status: str, **fields) -> None:
    TrainingJob.objects.filter(pk=job_id).exclude(status__in=TrainingJob.FINISHED).update(
        status=status, finished_at=timezone.now(), **fields
    )


# ---- in the worker ------------------------------------------------------------------------------

@contextmanager
def machine_lock(*, wait: bool = True):
    """The one training slot of this machine: an flock, released by the kernel once every process holding it ends.

    Yields the locked file (truthy), or False when `wait` is off and another process holds the slot.
    """
    path = Path(settings.TRAINING_LOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def training_job_supervise(*, job_id: int) -> None:
    """The queue's task: wait for this machine's training slot, run the job in a child process, record the end."""
    with machine_lock() as slot:
        started = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.QUEUED).update(
            status=TrainingJob.RUNNING, host=socket.gethostname(), started_at=timezone.now()
        )
        if not started:
            return  # cancelled while queued
        code, output = _run_child(job_id, slot=slot.fileno())
    if code != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        reason = lines[-1] if lines else "no output"
        _finish(job_id, TrainingJob.FAILED, error=f"the training process exited with status {code}: {reason}")


def _run_child(job_id: int, *, slot: int) -> tuple[int, str]:
    """Train in a child process that shares the machine's slot: if this worker dies, the child still holds it,
    so the job is not called failed (nor a second one started) while it trains; it records its own end."""
    folder = Path(settings.VAR_DIR) / "training-jobs"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"job-{job_id}.log"
    threads = str(settings.TRAINING_THREADS)
    env = {**os.environ, "RECOGNIZER_INTRA_THREADS": threads, "OMP_NUM_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}  # every line in the log at once, even if the process is killed
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_training_job", str(job_id)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=settings.BASE_DIR, pass_fds=(slot,),
            preexec_fn=lambda: os.nice(settings.TRAINING_NICE),  # web workers come first
        )
        while True:  # the admin shows the log as it grows
            try:
                code = child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
            output = log_path.read_text(errors="replace")
            TrainingJob.objects.filter(pk=job_id).update(log=output[-LOG_TAIL:])
            if code is not None:
                return code, output


def training_jobs_reap() -> int:
    """Mark failed the jobs this machine shows as running while nobody holds its training slot (a dead worker)."""
    with machine_lock(wait=False) as free:
        if not free:
            return 0
        return TrainingJob.objects.filter(status=TrainingJob.RUNNING, host=socket.gethostname()).update(
            status=TrainingJob.FAILED, finished_at=timezone.now(), error="The job worker stopped while this job ran."
        )


# ---- in the child process -----------------------------------------------------------------------

def progress_line(p: dict) -> str:
    """One line a person reads: phase, epoch, loss, accuracy, time left."""
    if p.get("phase") == "features":
        return f"computing features: {p.get('done', 0)}/{p.get('total', '?')} images"
    parts = [f"{p.get('phase')} epoch {p.get('epoch')}/{p.get('epochs')}"]
    for key in ("loss", "accuracy", "val_accuracy"):
        if p.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {p[key]:.3f}")
    if p.get("seconds_left") is not None:
        parts.append(f"about {p['seconds_left']:.0f} s left in this phase")
    return " · ".join(parts)


class _Reporter:
    """Progress to the job row (and its log) and the cancel flag from it, each at most every REPORT_EVERY seconds."""

    def __init__(self, job_id: int, log=print):
        self.job_id, self.log, self.last_report, self.last_check, self.cancelled = job_id, log, 0.0, 0.0, False

    def report(self, fields: dict) -> None:
        now = time.monotonic()
        if now - self.last_report >= REPORT_EVERY or fields.get("epoch") == fields.get("epochs"):
            self.last_report = now
            TrainingJob.objects.filter(pk=self.job_id).update(progress=fields)
            self.log(progress_line(fields))

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now - self.last_check >= REPORT_EVERY:
            self.last_check = now
            self.cancelled = TrainingJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self.cancelled


def training_job_execute(*, job_id: int, log=print) -> TrainingJob:
    """Train and register a version from the job's dataset; the job row says how it ended."""
    from webapp import services
    from webapp.exports import dataset_changes
    from webapp.runs import model_version_train

    job = TrainingJob.objects.select_related("dataset", "created_by").get(pk=job_id)
    changed = dataset_changes(job.dataset)
    if changed:
        _finish(job_id, TrainingJob.FAILED, error=f"The dataset folder changed since it was exported: {changed}")
        job.refresh_from_db()
        return job
    reporter = _Reporter(job_id, log)
    config = TrainConfig(
        name=job.model_name, backbone=job.backbone, epochs=job.epochs, fine_tune_layers=job.fine_tune_layers,
        progress=False, hooks=TrainingHooks(report=reporter.report, should_stop=reporter.should_stop),
    )
    try:
        trained = model_version_train(data=Path(job.dataset.path), config=config, by=job.created_by, log=log)
    except core.TrainingCancelled:
        _finish(job_id, TrainingJob.CANCELLED)
    except (core.RecognizerError, services.RegistrationError) as exc:
        _finish(job_id, TrainingJob.FAILED, error=str(exc))
    else:
        version = trained.version
        version.notes = f"trained on dataset {job.dataset.pk} (digest {job.dataset.digest[:12]}) by training job {job_id}"
        version.save(update_fields=["notes"])
        TrainingJob.objects.filter(pk=job_id).update(version=version)  # the gate reads which photos trained it from here
        _score(version, log)  # before the job says it is done, so its figures are there when it does
        _finish(job_id, TrainingJob.SUCCEEDED, version=version)
    job.refresh_from_db()
    return job


def _score(version, log) -> None:
    """The gate's figures while the models are at hand, so the version page shows them when the job ends."""
    from webapp import promotion

    try:
        log(promotion.gate_message(promotion.gate_check_run(candidate=version), name=version.name))
    except promotion.GateRefused as exc:
        log(f"promotion gate: {exc}")
