"""What the learning loop records: kept photos, feedback and its review, datasets, training jobs, gate checks.

Imported by webapp.models, so Django sees these models as the webapp app's.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from webapp.models import AppendOnly  # defined before webapp.models imports this module


def kept_photo_path(instance, filename: str) -> str:
    # Named by the upload's sha256 (as STORE_UPLOADS does): the same photo sent twice is one file.
    return f"feedback/{instance.sha256[:2]}/{instance.sha256}.jpg"


class KeptPhoto(models.Model):
    """The photo of one prediction, stripped of its metadata, kept for feedback until `kept_until`."""

    prediction = models.OneToOneField("webapp.Prediction", on_delete=models.CASCADE, related_name="kept_photo")
    image = models.FileField(upload_to=kept_photo_path, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    source = models.CharField(max_length=10)
    token = models.ForeignKey("webapp.ApiToken", null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    # Anonymous API use: a digest of the client's address, so only that client may answer for the prediction.
    client_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kept_until = models.DateTimeField(db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"photo of prediction {self.prediction_id}"


class Feedback(models.Model):
    """What a user says of one answer; one per prediction, reviewed by staff before it becomes data."""

    PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
    STATUSES = [(PENDING, "pending"), (ACCEPTED, "accepted"), (REJECTED, "rejected")]

    prediction = models.OneToOneField("webapp.Prediction", on_delete=models.CASCADE, related_name="feedback")
    correct = models.BooleanField()
    label = models.CharField(max_length=200, blank=True, help_text=_("The user's answer (free text or a class)."))
    domain = models.CharField(max_length=10, blank=True)
    comment = models.TextField(blank=True)
    model_label = models.CharField(max_length=200, help_text=_("The answer the model gave (its verdict), in English."))
    source = models.CharField(max_length=10)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING, db_index=True)
    final_label = models.CharField(max_length=200, blank=True)
    final_domain = models.CharField(max_length=10, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "feedback"
        permissions = [("review_feedback", "Can accept, reject or merge feedback")]

    def __str__(self) -> str:
        said = "right" if self.correct else f"wrong, it is {self.label!r}"
        return f"prediction {self.prediction_id}: {said}"


class FeedbackReview(AppendOnly):
    """Audit trail of the review queue: who did what to which feedback, and when (never changed)."""

    ACCEPT, REJECT, MERGE = "accept", "reject", "merge"
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="reviews")
    action = models.CharField(max_length=10, choices=[(ACCEPT, "accept"), (REJECT, "reject"), (MERGE, "merge")])
    label = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=10, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} feedback {self.feedback_id} by {self.by}"


class Dataset(models.Model):
    """One exported image folder: what went in, so a version trained on it can say which data it saw."""

    path = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    since = models.DateField(null=True, blank=True, help_text=_("Only feedback from this day on."))
    base_path = models.CharField(max_length=500, blank=True, help_text=_("The existing dataset merged in, if any."))
    images = models.PositiveIntegerField(help_text=_("Image files in the folder."))
    from_feedback = models.PositiveIntegerField(help_text=_("Of which accepted feedback photos."))
    counts = models.JSONField(help_text=_("Images per class folder."))
    files = models.JSONField(help_text=_("[relative path, sha256] of every image."))
    digest = models.CharField(max_length=64, help_text=_("sha256 over the sorted file list: equal digests, equal data."))
    classes_sha256 = models.CharField(
        max_length=64, blank=True, help_text=_("sha256 of its classes.csv (labels and domains); blank for older exports.")
    )
    feedback = models.ManyToManyField(Feedback, blank=True, related_name="datasets")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"dataset {self.pk}: {self.images} images, {len(self.counts)} classes ({self.path})"


class TrainingJob(models.Model):
    """Train a new version on a dataset, outside the web workers; progress and the log are kept here."""

    QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)]
    FINISHED = (SUCCEEDED, FAILED, CANCELLED)

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_jobs")
    model_name = models.CharField(max_length=100)
    backbone = models.CharField(max_length=50)
    epochs = models.PositiveIntegerField()
    fine_tune_layers = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUSES, default=QUEUED, db_index=True)
    progress = models.JSONField(default=dict, blank=True, help_text=_("The last report: phase, epoch, loss, accuracy, time left."))
    cancel_requested = models.BooleanField(default=False)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    host = models.CharField(max_length=100, blank=True, help_text=_("The machine running it."))
    version = models.ForeignKey("webapp.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"training job {self.pk}: {self.model_name} ({self.status})"


class GoldenSet(models.Model):
    """Photos of a model's own classes, never trained on, that every candidate version is scored on."""

    model_name = models.CharField(max_length=100, unique=True)
    path = models.CharField(max_length=500, help_text=_("A folder with one subfolder per class, named by class id."))
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, help_text=_("Or an exported dataset."))
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"golden set of {self.model_name}"

    @property
    def folder(self) -> str:
        return self.dataset.path if self.dataset_id else self.path


class GateCheck(models.Model):
    """The golden-set top-1 accuracy of a candidate version and of the version active when it was checked."""

    candidate = models.ForeignKey("webapp.ModelVersion", on_delete=models.CASCADE, related_name="gate_checks")
    active = models.ForeignKey("webapp.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    golden_path = models.CharField(max_length=500)
    golden_digest = models.CharField(max_length=64)
    images = models.PositiveIntegerField()
    candidate_top1 = models.FloatField()
    active_top1 = models.FloatField(null=True, blank=True)
    trained_on_golden = models.PositiveIntegerField(default=0, help_text=_("Golden photos found in the candidate's training data."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"gate check of {self.candidate}"


class GateOverride(AppendOnly):
    """Audit: a superuser activated a candidate the gate refused, and why (never changed)."""

    check_run = models.ForeignKey(GateCheck, on_delete=models.CASCADE, related_name="overrides")
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]


class Shadow(models.Model):
    """A registered, inactive version that also classifies a sample of live requests, for comparison only."""

    version = models.ForeignKey("webapp.ModelVersion", on_delete=models.CASCADE, related_name="shadows")
    started_at = models.DateTimeField(auto_now_add=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} in shadow"


class ShadowResult(models.Model):
    """What the shadow answered for one live request, beside what the active version answered."""

    shadow = models.ForeignKey(Shadow, on_delete=models.CASCADE, related_name="results")
    prediction = models.ForeignKey("webapp.Prediction", on_delete=models.CASCADE, related_name="+")
    active_label = models.CharField(max_length=200)
    shadow_label = models.CharField(max_length=200)
    agrees = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
