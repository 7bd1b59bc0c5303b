"""Datasets and training jobs in the admin: start a job, watch its progress live, cancel it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from recognizer.backbones import NAMES
from webapp import training_jobs
from webapp.errors import translated
from webapp.models import Dataset, TrainingJob


def progress_text(job: TrainingJob) -> str:
    """The job's last report as one line, or how it ended."""
    if job.status != TrainingJob.RUNNING or not job.progress:
        return job.error or job.status
    return training_jobs.progress_line(job.progress)


class StartForm(forms.Form):
    dataset = forms.ModelChoiceField(label=gettext_lazy("Dataset"), queryset=Dataset.objects.all())
    model_name = forms.CharField(
        label=gettext_lazy("Model name"), max_length=100,
        help_text=gettext_lazy("A new name starts a model of its own; an existing model's name trains its next version, "
                               "which answers among the dataset's classes only."),
    )
    backbone = forms.ChoiceField(label=gettext_lazy("Backbone"), choices=[(n, n) for n in NAMES], initial="efficientnet_lite0")
    epochs = forms.IntegerField(label=gettext_lazy("Epochs"), min_value=1, max_value=1000, initial=40)
    fine_tune_layers = forms.IntegerField(label=gettext_lazy("Fine-tune layers"), min_value=0, max_value=500, initial=0)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "images", "from_feedback", "classes", "short_digest", "path", "train_link")
    readonly_fields = ("path", "created_at", "created_by", "since", "base_path", "images", "from_feedback", "counts", "digest")
    exclude = ("files", "feedback")

    @admin.display(description=gettext_lazy("classes"))
    def classes(self, obj):
        return len(obj.counts)

    @admin.display(description=gettext_lazy("digest"))
    def short_digest(self, obj):
        return obj.digest[:12]

    @admin.display(description="")
    def train_link(self, obj):
        url = reverse("admin:webapp_trainingjob_start") + f"?dataset={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("train a new version"))

    def has_add_permission(self, request):
        return False  # made by `manage.py export_dataset`

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "model_name", "dataset", "backbone", "status", "progress_line", "version", "created_by", "created_at")
    list_filter = ("status", "model_name")
    readonly_fields = [f.name for f in TrainingJob._meta.fields]
    change_form_template = "admin/webapp/trainingjob/change_form.html"

    @admin.display(description=gettext_lazy("progress"))
    def progress_line(self, obj):
        return progress_text(obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name="webapp_trainingjob_start"),
            path("<int:pk>/progress/", wrap(self.progress_view), name="webapp_trainingjob_progress"),
            path("<int:pk>/cancel/", wrap(require_POST(self.cancel_view)), name="webapp_trainingjob_cancel"),
        ] + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:webapp_trainingjob_start"))

    def changelist_view(self, request, extra_context=None):
        training_jobs.training_jobs_reap()  # a job whose worker died shows as failed, not running forever
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        # A job registers the version it trains: starting one needs the right to register versions too.
        return super().has_add_permission(request) and request.user.has_perm("webapp.add_modelversion")

    def start_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        # The name trained last, never the default model's: a version trained on a few classes would replace it.
        last = TrainingJob.objects.order_by("-created_at").values_list("model_name", flat=True).first()
        initial = {"dataset": request.GET.get("dataset"), "model_name": last or ""}
        form = StartForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                job = training_jobs.training_job_start(**form.cleaned_data, by=request.user)
            except training_jobs.JobError as exc:
                messages.error(request, translated(exc))
            else:
                messages.success(request, _("Queued %(job)s; this page follows its progress.") % {"job": job})
                return HttpResponseRedirect(reverse("admin:webapp_trainingjob_change", args=[job.pk]))
        context = {**self.admin_site.each_context(request), "form": form, "title": _("Train a new version"), "opts": self.model._meta}
        return render(request, "admin/webapp/trainingjob/start.html", context)

    def progress_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(TrainingJob, pk=pk)
        version = {"id": job.version_id, "name": str(job.version)} if job.version_id else None
        return JsonResponse({
            "status": job.status, "progress": job.progress, "text": progress_text(job), "error": job.error,
            "cancel_requested": job.cancel_requested, "version": version, "log_tail": job.log[-2000:],
        })

    def cancel_view(self, request, pk: int):
        if not self.has_change_permission(request):
            raise PermissionDenied
        try:
            job = training_jobs.training_job_cancel(job=get_object_or_404(TrainingJob, pk=pk))
        except training_jobs.JobError as exc:
            messages.error(request, translated(exc))
        else:
            if job.status == TrainingJob.CANCELLED:
                messages.success(request, _("Cancelled job %(id)s before it started.") % {"id": job.pk})
            else:
                messages.success(request, _("Asked job %(id)s to stop; it stops between two batches.") % {"id": job.pk})
        return HttpResponseRedirect(reverse("admin:webapp_trainingjob_change", args=[pk]))
