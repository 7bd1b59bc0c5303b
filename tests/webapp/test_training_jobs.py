"""Training jobs: started from the admin, queued, run with progress, cancelled between batches, failures recorded.

The job worker and its child process are exercised end to end in tests/e2e/test_learning_loop.py; here the
child's work (`training_job_execute`) runs in this process on a tiny generated dataset.
"""

from __future__ import annotations

import pytest

from tests.conftest import TINY_NAME
from tests.synthetic import write_dataset
from webapp import exports, training_jobs
from webapp.models import Dataset, GateCheck, GoldenSet, ModelVersion, TrainingJob

NAME = "tiny-job"


@pytest.fixture
def dataset(db, tmp_path, settings) -> Dataset:
    settings.MODELS_DIR, settings.VAR_DIR = tmp_path / "models", tmp_path / "var"
    data = write_dataset(tmp_path / "data", {"red-stripes": 4, "blue-circle": 4})
    (data / "classes.csv").write_text("folder,label,domain\nred-stripes,Red stripes,animal\nblue-circle,Blue circle,plant\n")
    files = exports._files(data)
    return Dataset.objects.create(path=str(data), images=8, from_feedback=0, counts={"red-stripes": 4, "blue-circle": 4},
                                  files=files, digest="d" * 64)


def job_for(dataset, **fields) -> TrainingJob:
    values = {"dataset": dataset, "model_name": NAME, "backbone": "efficientnet_lite0", "epochs": 5, **fields}
    return TrainingJob.objects.create(**values)


def test_starting_from_the_admin_queues_a_job_for_the_worker(admin_client, dataset, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    with django_capture_on_commit_callbacks(execute=True):
        reply = admin_client.post("/admin/webapp/trainingjob/start/", {
            "dataset": dataset.pk, "model_name": NAME, "backbone": "efficientnet_lite0", "epochs": 7, "fine_tune_layers": 2,
        })
    job = TrainingJob.objects.get()
    assert reply.status_code == 302 and reply["Location"].endswith(f"/trainingjob/{job.pk}/change/")
    assert (job.status, job.epochs, job.fine_tune_layers, job.created_by.username) == ("queued", 7, 2, "admin")
    queued = DBTaskResult.objects.get()
    assert queued.args_kwargs["args"] == [job.pk] and queued.task_path == "webapp.tasks.training_job_run"


@pytest.mark.parametrize("fields, message", [
    ({"model_name": "Bad Name!"}, "lowercase letters"),
    ({"backbone": "vgg99"}, "Unknown backbone"),
    ({"epochs": 0}, "at least 1"),
])
def test_a_job_that_cannot_run_is_refused_before_it_is_queued(dataset, fields, message):
    values = {"dataset": dataset, "model_name": NAME, "backbone": "efficientnet_lite0", "epochs": 5, **fields}
    with pytest.raises(training_jobs.JobError, match=message):
        training_jobs.training_job_start(**values)
    assert not TrainingJob.objects.exists()


def test_a_queued_job_cancelled_never_starts(dataset):
    job = training_jobs.training_job_cancel(job=job_for(dataset))
    assert job.status == "cancelled" and job.finished_at is not None
    training_jobs.training_job_supervise(job_id=job.pk)  # what the worker does when it reaches it
    job.refresh_from_db()
    assert job.status == "cancelled" and job.started_at is None
    with pytest.raises(training_jobs.JobError, match="already cancelled"):
        training_jobs.training_job_cancel(job=job)


def test_a_job_whose_dataset_changed_since_export_fails_saying_what_changed(dataset):
    from pathlib import Path

    (Path(dataset.path) / "red-stripes" / "red-stripes-0.png").unlink()
    job = training_jobs.training_job_execute(job_id=job_for(dataset).pk, log=lambda line: None)
    assert job.status == "failed" and "1 removed (e.g. red-stripes/red-stripes-0.png)" in job.error
    assert not ModelVersion.objects.exists()


def test_a_job_on_a_dataset_changed_since_export_is_refused_before_it_is_queued(dataset):
    from pathlib import Path

    (Path(dataset.path) / "red-stripes" / "red-stripes-0.png").unlink()
    with pytest.raises(training_jobs.JobError, match=r"changed since it was exported \(1 removed \(e.g. red-stripes/red-stripes-0.png\)\)"):
        training_jobs.training_job_start(dataset=dataset, model_name=NAME, backbone="efficientnet_lite0", epochs=5)
    assert not TrainingJob.objects.exists()


def test_a_changed_classes_csv_counts_as_a_changed_dataset_and_the_refusal_is_in_the_admins_language(dataset, admin_client):
    # Deleting or editing classes.csv (labels, domains) went unseen: the job was queued and failed in the worker.
    from pathlib import Path

    from django.utils import translation

    listed = Path(dataset.path) / "classes.csv"
    dataset.classes_sha256 = exports._classes_sha256(Path(dataset.path))
    dataset.save()
    assert exports.dataset_changes(dataset) == ""
    listed.write_text("folder,label,domain\nred-stripes,Red stripes,bird\nblue-circle,Blue circle,plant\n")
    assert exports.dataset_changes(dataset) == "classes.csv changed"
    (Path(dataset.path) / "blue-circle" / "blue-circle-0.png").unlink()
    with translation.override("zh-hans"):
        assert exports.dataset_changes(dataset) == "删除 1 个（例如 blue-circle/blue-circle-0.png）; classes.csv 已更改"
    with pytest.raises(training_jobs.JobError, match="classes.csv changed"):
        training_jobs.training_job_start(dataset=dataset, model_name=NAME, backbone="efficientnet_lite0", epochs=5)


def test_a_dead_workers_running_job_is_marked_failed_once_the_slot_is_free(dataset):
    import socket

    job = job_for(dataset, status="running", host=socket.gethostname())
    with training_jobs.machine_lock():
        assert training_jobs.training_jobs_reap() == 0  # the slot is held: the job is alive
    assert training_jobs.training_jobs_reap() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "worker stopped" in job.error


@pytest.mark.slow
def test_a_job_under_an_existing_name_with_other_classes_says_how_they_differ_in_its_log(dataset, active_tiny):
    lines = []
    job = training_jobs.training_job_execute(job_id=job_for(dataset, model_name=TINY_NAME, epochs=1).pk, log=lines.append)
    assert job.status == "succeeded", job.error
    assert any(line.startswith(f"warning: {TINY_NAME} v2 has 2 classes where v1 (active) has 4: 2 new") for line in lines), lines


def test_the_start_page_suggests_the_name_trained_last_never_the_default_models(admin_client, dataset, settings):
    settings.DEFAULT_MODEL_NAME = "imagenet-efficientnet_lite0"
    start = "/admin/webapp/trainingjob/start/"
    assert admin_client.get(start).context["form"]["model_name"].value() in ("", None)
    job_for(dataset, model_name="wildlife-feedback")
    assert admin_client.get(start).context["form"]["model_name"].value() == "wildlife-feedback"


def test_a_job_trains_registers_a_version_naming_its_dataset_and_reports_progress(dataset):
    reports = []
    original = training_jobs._Reporter.report

    def spy(self, fields):
        reports.append(dict(fields))
        original(self, fields)

    GoldenSet.objects.create(model_name=NAME, path=dataset.path)  # the very photos it trains on
    training_jobs._Reporter.report = spy
    try:
        job = training_jobs.training_job_execute(job_id=job_for(dataset).pk, log=lambda line: None)
    finally:
        training_jobs._Reporter.report = original
    assert job.status == "succeeded", job.error
    assert job.version.name == NAME and not job.version.is_active
    assert f"dataset {dataset.pk} (digest dddddddddddd)" in job.version.notes
    assert GateCheck.objects.get(candidate=job.version).trained_on_golden == 8  # the gate knew which job made it
    head = [r for r in reports if r["phase"] == "head"]
    assert head and set(head[-1]) >= {"epoch", "epochs", "loss", "accuracy", "seconds_left"} and head[-1]["epochs"] == 5
    assert job.progress["phase"] == "head" and job.progress["epoch"] == head[-1]["epoch"]


@pytest.mark.slow
def test_cancelling_a_running_job_stops_it_between_batches_and_registers_nothing(dataset, monkeypatch):
    job = job_for(dataset, status="running", epochs=200)
    original = training_jobs._Reporter.report

    def cancel_after_first_epoch(self, fields):
        original(self, fields)
        if fields.get("phase") == "head" and fields["epoch"] == 1:
            training_jobs.training_job_cancel(job=TrainingJob.objects.get(pk=job.pk))
            self.last_check = 0.0  # check the flag at the next batch, not REPORT_EVERY later

    monkeypatch.setattr(training_jobs._Reporter, "report", cancel_after_first_epoch)
    monkeypatch.setattr(training_jobs, "REPORT_EVERY", 0.0)
    job = training_jobs.training_job_execute(job_id=job.pk, log=lambda line: None)
    assert job.status == "cancelled" and job.cancel_requested
    assert job.progress["epoch"] < 200
    assert not ModelVersion.objects.exists()


def test_the_progress_view_says_epoch_loss_accuracy_and_time_left(admin_client, dataset):
    job = job_for(dataset, status="running", progress={
        "phase": "head", "epoch": 3, "epochs": 40, "loss": 0.5, "accuracy": 0.75, "val_accuracy": None, "seconds_left": 12.0,
    })
    body = admin_client.get(f"/admin/webapp/trainingjob/{job.pk}/progress/").json()
    assert body["status"] == "running"
    assert body["text"] == "head epoch 3/40 · loss 0.500 · accuracy 0.750 · about 12 s left in this phase"
    page = admin_client.get(f"/admin/webapp/trainingjob/{job.pk}/change/").content.decode()
    assert 'id="cancel-job"' in page and f"/trainingjob/{job.pk}/progress/" in page
    admin_client.post(f"/admin/webapp/trainingjob/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.cancel_requested and job.status == "running"  # the loop stops it at its next batch


def test_one_training_slot_per_machine(dataset, settings, tmp_path):
    with training_jobs.machine_lock() as first:
        assert first
        with training_jobs.machine_lock(wait=False) as second:  # a second job on this machine waits for the slot
            assert not second
    with training_jobs.machine_lock(wait=False) as after:
        assert after


def test_the_start_page_and_a_refused_job_speak_the_admin_s_language(admin_client, dataset):
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}
    page = admin_client.get("/admin/webapp/trainingjob/start/", **zh).content.decode()
    assert "开始训练" in page and "训练轮数" in page and "任务在任务进程中运行" in page
    job = job_for(dataset)
    training_jobs.training_job_cancel(job=job)
    reply = admin_client.post(f"/admin/webapp/trainingjob/{job.pk}/cancel/", follow=True, **zh)
    assert f"任务 {job.pk} 已经是 cancelled 状态。" in reply.content.decode()
    assert "Start training" in admin_client.get("/admin/webapp/trainingjob/start/").content.decode()


def test_starting_a_job_needs_the_right_to_register_versions_too(dataset, django_user_model):
    from django.contrib.auth.models import Permission
    from django.test import Client

    user = django_user_model.objects.create_user("trainer", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["add_trainingjob", "view_trainingjob", "view_dataset"]))
    trainer = Client()
    trainer.force_login(user)
    fields = {"dataset": dataset.pk, "model_name": NAME, "backbone": "efficientnet_lite0", "epochs": 1, "fine_tune_layers": 0}
    assert trainer.post("/admin/webapp/trainingjob/start/", fields).status_code == 403
    assert not TrainingJob.objects.exists()
    user.user_permissions.add(Permission.objects.get(codename="add_modelversion"))
    trainer = Client()
    trainer.force_login(user)
    assert trainer.post("/admin/webapp/trainingjob/start/", fields).status_code == 302


def test_cancelling_says_what_happened_and_a_second_cancel_of_a_running_job_says_it_was_asked_already(admin_client, dataset):
    queued = job_for(dataset)
    reply = admin_client.post(f"/admin/webapp/trainingjob/{queued.pk}/cancel/", follow=True).content.decode()
    assert f"Cancelled job {queued.pk} before it started." in reply
    running = job_for(dataset, status="running")
    reply = admin_client.post(f"/admin/webapp/trainingjob/{running.pk}/cancel/", follow=True).content.decode()
    assert f"Asked job {running.pk} to stop" in reply
    reply = admin_client.post(f"/admin/webapp/trainingjob/{running.pk}/cancel/", follow=True).content.decode()
    assert f"Job {running.pk} was already asked to stop" in reply

