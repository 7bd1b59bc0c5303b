"""export_dataset: accepted feedback photos as an image folder that `train` reads, and the Dataset record."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from recognizer.datasets import scan_dataset
from tests.synthetic import picture, write_dataset
from tests.webapp.helpers import encode
from tests.webapp.learning import feedback_on, keeping  # noqa: F401
from webapp import feedback, review
from webapp.models import Dataset, Feedback


def jpeg(kind: str, seed: int) -> bytes:
    return encode(picture(kind, seed=seed), "JPEG", quality=90)


@pytest.fixture
def accept(client, keeping, admin_user):
    """accept(photo bytes, label, domain) -> the accepted Feedback."""

    def make(data: bytes, label: str, domain: str = "animal") -> Feedback:
        prediction_id = feedback_on(client, data, label=label, domain=domain)
        item = Feedback.objects.get(prediction_id=prediction_id)
        return review.feedback_accept(feedback=item, label=label, domain=domain, by=admin_user)

    return make


def export(out: Path, *args: str) -> str:
    stdout = io.StringIO()
    call_command("export_dataset", "--out", str(out), *args, stdout=stdout)
    return stdout.getvalue()


def classes_csv(folder: Path) -> list[dict]:
    with open(folder / "classes.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_accepted_photos_become_an_image_folder_that_train_reads(accept, client, tmp_path):
    fox = [accept(jpeg("red-stripes", i), "Red fox") for i in range(2)]
    accept(jpeg("blue-circle", 10), "Fern", "plant")
    rejected = feedback_on(client, jpeg("green-blocks", 20), label="kettle")  # pending: never exported
    out = tmp_path / "data"
    printed = export(out)
    assert "3 images in 2 classes (3 from feedback)" in printed
    assert sorted(p.name for p in out.iterdir()) == ["classes.csv", "fern", "red-fox"]
    assert Dataset.objects.get().classes_sha256 == hashlib.sha256((out / "classes.csv").read_bytes()).hexdigest()
    for item in fox:
        data = item.prediction.kept_photo.image.read()
        assert (out / "red-fox" / f"{hashlib.sha256(data).hexdigest()}.jpg").read_bytes() == data
    # "Fern" names the answering model's class fern: accepted as that class (red fox is no class of the tiny model)
    assert classes_csv(out) == [{"folder": "fern", "label": "fern", "domain": "plant", "label_zh": ""},
                                {"folder": "red-fox", "label": "Red fox", "domain": "animal", "label_zh": ""}]
    scanned = scan_dataset(out)
    assert [(c.id, c.label, c.domain) for c in scanned.classes] == [("fern", "fern", "plant"), ("red-fox", "Red fox", "animal")]
    assert scanned.counts() == [1, 2] and not scanned.skipped
    assert not Dataset.objects.get().feedback.filter(prediction_id=rejected).exists()
    # people's photos, whatever the umask of the shell that exported them: the service's user and group only
    assert {(p.is_dir(), p.stat().st_mode & 0o777) for p in [out, *out.rglob("*")]} == {(True, 0o750), (False, 0o640)}


def test_classes_too_thin_to_train_on_are_named_when_exported_and_refuse_a_job_before_the_queue(accept, tmp_path):
    from webapp import training_jobs

    accept(jpeg("red-stripes", 1), "Red fox")
    accept(jpeg("red-stripes", 2), "Red fox")
    accept(jpeg("blue-circle", 3), "Fern", "plant")
    stderr = io.StringIO()
    call_command("export_dataset", "--out", str(tmp_path / "data"), stdout=io.StringIO(), stderr=stderr)
    assert stderr.getvalue().strip() == "warning: a training job refuses classes with fewer than 2 photos: fern (1)."
    with pytest.raises(training_jobs.JobError, match=r"too few in: fern \(1\)"):
        training_jobs.training_job_start(dataset=Dataset.objects.get(), model_name="wildlife-feedback",
                                         backbone="efficientnet_lite0", epochs=5)


def test_the_dataset_record_keeps_the_counts_and_the_hash_of_every_file(accept, tmp_path):
    items = [accept(jpeg("red-stripes", 1), "Red fox"), accept(jpeg("blue-circle", 2), "Fern", "plant")]
    export(tmp_path / "data")
    dataset = Dataset.objects.get()
    assert dataset.counts == {"fern": 1, "red-fox": 1} and dataset.images == 2 and dataset.from_feedback == 2
    for relative, digest in dataset.files:
        assert hashlib.sha256((tmp_path / "data" / relative).read_bytes()).hexdigest() == digest
    assert set(dataset.feedback.all()) == set(items)
    export(tmp_path / "again")
    assert Dataset.objects.latest("pk").digest == dataset.digest  # same data, same digest


def test_labels_are_made_safe_as_folder_names(accept, tmp_path):
    accept(jpeg("red-stripes", 1), "../../etc/passwd")
    accept(jpeg("red-stripes", 2), "Renard roux / évier")
    accept(jpeg("red-stripes", 3), "renard-roux-évier")  # another label with the same safe name
    out = tmp_path / "data"
    export(out)
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders[0] == "etcpasswd" and folders[1] == "renard-roux-évier"
    assert folders[2].startswith("renard-roux-évier-") and len(folders) == 3
    assert all((out / f).resolve().parent == out.resolve() for f in folders)
    assert {row["label"] for row in classes_csv(out)} == {"../../etc/passwd", "Renard roux / évier", "renard-roux-évier"}


def test_a_non_empty_folder_is_refused_unless_append(accept, tmp_path):
    accept(jpeg("red-stripes", 1), "Red fox")
    out = tmp_path / "data"
    export(out)
    with pytest.raises(CommandError, match="not empty.*--append"):
        export(out)
    accept(jpeg("blue-circle", 2), "Fern", "plant")
    export(out, "--append")
    assert Dataset.objects.latest("pk").counts == {"fern": 1, "red-fox": 1}
    assert len(classes_csv(out)) == 2


def test_append_leaves_out_photos_whose_feedback_was_rejected_since_the_last_export(accept, tmp_path, admin_user):
    fox = accept(jpeg("red-stripes", 1), "Red fox")
    fern = accept(jpeg("blue-circle", 2), "Fern", "plant")
    out = tmp_path / "data"
    export(out)
    review.feedback_reject(feedback=fern, by=admin_user)
    review.feedback_reject(feedback=fox, by=admin_user)
    accept(jpeg("red-stripes", 3), "Red fox")
    printed = export(out, "--append")
    assert "1 image in 1 class (1 from feedback)" in printed
    assert Dataset.objects.latest("pk").counts == {"red-fox": 1}
    assert [row["folder"] for row in classes_csv(out)] == ["red-fox"] and not (out / "fern").exists()


def test_include_base_merges_an_existing_dataset_and_matches_its_labels(accept, tmp_path):
    base = write_dataset(tmp_path / "base", {"red-stripes": 2, "blue-circle": 2})
    (base / "classes.csv").write_text("folder,label,domain\nred-stripes,Red fox,animal\nblue-circle,Fern,plant\n")
    accept(jpeg("red-stripes", 50), "red FOX")  # the base's class, whatever the case
    accept(jpeg("green-blocks", 51), "Moss", "plant")
    out = tmp_path / "data"
    export(out, "--include-base", str(base))
    dataset = Dataset.objects.get()
    assert dataset.counts == {"blue-circle": 2, "moss": 1, "red-stripes": 3}
    assert dataset.base_path == str(base.resolve()) and dataset.from_feedback == 2
    assert {r["folder"]: r["label"] for r in classes_csv(out)} == {"blue-circle": "Fern", "moss": "Moss", "red-stripes": "Red fox"}


def test_since_keeps_only_later_feedback(accept, tmp_path):
    old = accept(jpeg("red-stripes", 1), "Red fox")
    Feedback.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    accept(jpeg("blue-circle", 2), "Fern", "plant")
    export(tmp_path / "data", "--since", (timezone.now() - timedelta(days=2)).date().isoformat())
    assert Dataset.objects.get().counts == {"fern": 1}


def test_since_past_all_accepted_feedback_says_so_rather_than_that_there_is_none(accept, tmp_path):
    accept(jpeg("red-stripes", 1), "Red fox")
    later = (timezone.now() + timedelta(days=2)).date().isoformat()
    with pytest.raises(CommandError, match=f"No feedback accepted since {later}"):
        export(tmp_path / "data", "--since", later)
    assert not Dataset.objects.exists()

def test_deleted_photos_are_left_out(accept, tmp_path):
    gone = accept(jpeg("red-stripes", 1), "Red fox")
    accept(jpeg("blue-circle", 2), "Fern", "plant")
    feedback.photos_erase(since=gone.prediction.kept_photo.created_at, until=gone.prediction.kept_photo.created_at + timedelta(microseconds=1))
    export(tmp_path / "data")
    assert Dataset.objects.get().counts == {"fern": 1}


@pytest.mark.parametrize("setup, args, message", [
    ("nothing", (), "no accepted feedback"),
    ("file", (), "is a file"),
    ("nothing", ("--since", "last week"), "YYYY-MM-DD"),
    ("nothing", ("--include-base", "/nonexistent/base"), "is not a folder"),
])
def test_unclear_exports_stop_with_a_message_and_record_nothing(db, tmp_path, setup, args, message):
    out = tmp_path / "data"
    if setup == "file":
        out.write_text("not a folder")
    with pytest.raises(CommandError, match=message):
        export(out, *args)
    assert not Dataset.objects.exists()


def test_a_label_accepted_in_two_domains_is_refused_before_anything_is_written(accept, tmp_path):
    accept(jpeg("red-stripes", 1), "Daisy", "plant")
    accept(jpeg("blue-circle", 2), "daisy", "bird")
    with pytest.raises(CommandError, match="already has 'Daisy' in plant: review one of them again"):
        export(tmp_path / "data")
    assert not (tmp_path / "data").exists() and not Dataset.objects.exists()


def test_one_photo_accepted_under_two_labels_is_refused_before_anything_is_written(accept, tmp_path, admin_user):
    # Sent twice, a photo is kept once: accepted as a tiger and as a zebra, it went into both folders.
    photo = jpeg("red-stripes", 1)
    tiger, zebra = accept(photo, "tiger"), accept(photo, "zebra")
    assert tiger.prediction.kept_photo.image.name == zebra.prediction.kept_photo.image.name
    expected = f"One photo is accepted as 'tiger' \\(feedback {tiger.pk}\\) and as 'zebra' \\(feedback {zebra.pk}\\)"
    with pytest.raises(CommandError, match=expected):
        export(tmp_path / "data")
    assert not (tmp_path / "data").exists() and not Dataset.objects.exists()
    review.feedback_reject(feedback=Feedback.objects.get(pk=zebra.pk), by=admin_user)
    accept(photo, "Tiger")  # the same label again, in another case: no conflict
    export(tmp_path / "data")
    assert [p.parent.name for p in (tmp_path / "data").rglob("*.jpg")] == ["tiger"]


def test_an_accepted_photo_missing_from_storage_stops_the_export_naming_it(accept, tmp_path):
    item = accept(jpeg("red-stripes", 1), "Red fox")
    Path(item.prediction.kept_photo.image.path).unlink()
    with pytest.raises(CommandError, match=f"missing from storage \\(feedback {item.pk}\\)"):
        export(tmp_path / "data")
    assert not (tmp_path / "data").exists() and not Dataset.objects.exists()


def test_an_output_folder_that_cannot_be_made_is_a_one_line_error(accept, tmp_path):
    accept(jpeg("red-stripes", 1), "Red fox")
    (tmp_path / "README.md").write_text("a file")
    with pytest.raises(CommandError, match="Could not write the dataset to .*README.md/sub: Not a directory"):
        export(tmp_path / "README.md" / "sub")
    assert not Dataset.objects.exists()


def test_including_the_output_folder_itself_as_the_base_is_refused(accept, tmp_path):
    accept(jpeg("red-stripes", 1), "Red fox")
    export(tmp_path / "data")
    with pytest.raises(CommandError, match="--include-base is the output folder"):
        export(tmp_path / "data", "--append", "--include-base", str(tmp_path / "data"))
    assert Dataset.objects.count() == 1

