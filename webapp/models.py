"""What the service records: model versions, who activated them, predictions served, API tokens."""

from __future__ import annotations

import contextlib
import hashlib
import threading

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.db.models import Q

_maintenance = threading.local()


class HistoryIsAppendOnly(Exception):
    """Predictions and activations are never changed or deleted, except by the history maintenance command."""


@contextlib.contextmanager
def history_maintenance():
    """Allow deleting history rows in this thread (the superuser's prune_history command only)."""
    _maintenance.active = True
    try:
        yield
    finally:
        _maintenance.active = False


def _refuse_outside_maintenance(what: str) -> None:
    if not getattr(_maintenance, "active", False):
        raise HistoryIsAppendOnly(f"{what} is history: it is never changed or deleted (see manage.py prune_history).")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        _refuse_outside_maintenance(self.model._meta.verbose_name_plural.capitalize())
        return super().update(**kwargs)

    def delete(self):
        _refuse_outside_maintenance(self.model._meta.verbose_name_plural.capitalize())
        return super().delete()


class AppendOnly(models.Model):
    """A row that is written once: saving it again or deleting it is refused."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            _refuse_outside_maintenance(f"{self._meta.verbose_name.capitalize()} {self.pk}")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        _refuse_outside_maintenance(f"{self._meta.verbose_name.capitalize()} {self.pk}")
        return super().delete(*args, **kwargs)


class ModelVersion(models.Model):
    """One registered artifact (H5 + manifest) of a model name; at most one version per name is active."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    artifact_path = models.CharField(max_length=500, help_text=_("The .h5 file; its manifest is the .json beside it."))
    sha256 = models.CharField(max_length=64)
    backbone = models.CharField(max_length=50)
    manifest = models.JSONField()
    engine = models.CharField(max_length=30, default="keras", help_text=_("The runtime that serves this version."))
    engine_note = models.TextField(blank=True, help_text=_("Why the optimized engine is not used, if it is not."))
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="unique_model_version"),
            models.UniqueConstraint(fields=["name"], condition=Q(is_active=True), name="one_active_version_per_model"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def metrics(self) -> dict | None:
        return self.manifest.get("metrics")

    @property
    def num_classes(self) -> int:
        return len(self.manifest.get("classes", []))


class Activation(AppendOnly):
    """Audit trail: every change of the active version of a model name. Deleting a version or user it names is refused."""

    ACTIVATE, ROLLBACK = "activate", "rollback"
    model_name = models.CharField(max_length=100)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    kind = models.CharField(max_length=10, choices=[(ACTIVATE, "activate"), (ROLLBACK, "roll back")])
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        before = f"v{self.from_version.version}" if self.from_version else "none"
        return f"{self.model_name}: {before} -> v{self.to_version.version} ({self.kind})"


class Prediction(AppendOnly):
    """One classified image: which version answered, what it said, and a fingerprint of the input."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    top = models.JSONField(help_text=_("The predictions returned, best first."))
    verdict = models.JSONField(null=True, blank=True, help_text=_("The verdict returned (in English), the answer feedback confirms."))
    domain = models.CharField(max_length=10, blank=True, help_text=_("The domain the predictions were filtered to, if any."))
    input_sha256 = models.CharField(max_length=64)
    input_bytes = models.PositiveIntegerField()
    latency_ms = models.FloatField()
    source = models.CharField(max_length=10, default="api")
    image = models.FileField(upload_to="uploads/%Y/%m/%d", blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        best = self.top[0]["label"] if self.top else "-"
        return f"{self.model_version}: {best}"


class ApiToken(models.Model):
    """A secret for programs calling the API; only its sha256 is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text=_("First characters of the token, to recognise it."))
    key_sha256 = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()


class WorkerHeartbeat(models.Model):
    """What one worker process serves, as it last reported (every MODEL_POLL_SECONDS): one row per model name."""

    instance = models.CharField(max_length=255, help_text=_("INSTANCE_NAME of the host (its hostname by default)."))
    pid = models.PositiveIntegerField()
    model_name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    engine = models.CharField(max_length=30, help_text=_("The runtime that really runs the forward pass."))
    wanted_engine = models.CharField(max_length=30, help_text=_("The engine the version was compiled for."))
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["model_name", "instance", "pid"]
        constraints = [models.UniqueConstraint(fields=["instance", "pid", "model_name"], name="one_heartbeat_per_worker_model")]

    def __str__(self) -> str:
        return f"{self.instance}:{self.pid} {self.model_name} v{self.version} ({self.engine})"


class AllowedClassList(models.Model):
    """The classes a deployment can meet (a reserve, a farm), per model name: answers rank only among them."""

    model_name = models.CharField(max_length=100, unique=True)
    classes = models.TextField(
        help_text=_("One class per line: its label (red fox), WordNet id (n02119022) or index (277). "
        "Lines starting with # are comments.")
    )
    enabled = models.BooleanField(default=True, help_text=_("Untick to answer over all classes again, keeping the list."))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["model_name"]
        verbose_name = "allowed-class list"

    def __str__(self) -> str:
        return f"allowed classes of {self.model_name}"

    @property
    def lines(self) -> list[str]:
        return self.classes.splitlines()


# The learning loop's models live in their own module; importing them here registers them with the app.
from webapp.learning_models import (  # noqa: E402,F401
    Dataset, Feedback, FeedbackReview, GateCheck, GateOverride, GoldenSet, KeptPhoto, Shadow, ShadowResult, TrainingJob,
)
