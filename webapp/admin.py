"""Staff-only management of model versions, their audit trail, predictions and API tokens."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import ngettext

from webapp import fleet, selectors, services
from webapp.admin_review import AuditTrailAdmin
from webapp.errors import translated
from webapp.forms import AllowedClassListForm, RegisterModelForm
from webapp.models import Activation, AllowedClassList, ApiToken, ModelVersion, Prediction

# kind in the URL -> (manifest key, the one file name the train command writes for it)
PICTURES = {
    "curves": ("training_curves_png", "training_curves.png"),
    "confusion": ("confusion_matrix_png", "confusion_matrix.png"),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

admin.site.site_header = gettext_lazy("Wildlife recognizer administration")
admin.site.site_title = gettext_lazy("Wildlife recognizer")
admin.site.index_title = gettext_lazy("Models, feedback and access")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "is_active", "backbone", "engine_in_use", "classes", "served", "created_at")
    list_filter = ("name", "is_active", "backbone")
    actions = ["roll_back_selected", "recompile_selected"]
    readonly_fields = (
        "name", "version", "is_active", "activated_at", "artifact_path", "sha256", "backbone", "engine_in_use", "engine_note",
        "created_at", "created_by", "metrics_table", "pictures", "manifest_json",
    )
    fields = readonly_fields[:11] + ("notes",) + readonly_fields[11:]

    def get_queryset(self, request):
        return selectors.model_version_list()

    @admin.display(description=gettext_lazy("engine"))
    def engine_in_use(self, obj):
        return selectors.model_version_engine(version=obj)

    @admin.display(description=gettext_lazy("classes"))
    def classes(self, obj):
        return obj.num_classes

    @admin.display(description=gettext_lazy("predictions served"), ordering="predictions_served")
    def served(self, obj):
        return obj.predictions_served

    @admin.display(description=gettext_lazy("metrics"))
    def metrics_table(self, obj):
        metrics = obj.metrics or {}
        flat = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float, str))]
        if not flat:
            return "-"
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", ((k, _fmt(v)) for k, v in flat))
        return format_html("<table>{}</table>", rows)

    @admin.display(description=gettext_lazy("training pictures"))
    def pictures(self, obj):
        training = obj.manifest.get("training") or {}
        links = [
            (reverse("admin:webapp_modelversion_picture", args=[obj.pk, kind]), kind)
            for kind, (key, _) in PICTURES.items() if training.get(key)
        ]
        if not links:
            return "-"
        return format_html_join("", '<a href="{0}"><img src="{0}" alt="{1}" style="max-width:420px;margin:4px"></a>', links)

    @admin.display(description=gettext_lazy("manifest"))
    def manifest_json(self, obj):
        shown = {k: v for k, v in obj.manifest.items() if k != "classes"}
        shown["classes"] = f"{obj.num_classes} classes"
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2, sort_keys=True))

    def has_add_permission(self, request):
        return request.user.is_staff and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # predictions point at versions; retire a version by activating another

    def get_urls(self):
        extra = [
            path("register/", self.admin_site.admin_view(self.register_view), name="webapp_modelversion_register"),
            path("<int:pk>/picture/<str:kind>/", self.admin_site.admin_view(self.picture_view), name="webapp_modelversion_picture"),
        ]
        return extra + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        """Versions are added by registering. A form sent here goes on to the register page as it was sent (307 keeps
        the method and the files; a 302 would have the browser fetch an empty form and drop them)."""
        response = HttpResponseRedirect(reverse("admin:webapp_modelversion_register"))
        if request.method == "POST":
            response.status_code = 307
        return response

    def register_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RegisterModelForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                version = form.register(by=request.user)
            except services.RegistrationError as exc:
                messages.error(request, _("Not registered: %(reason)s") % {"reason": exc})
            except services.ActivationError as exc:  # registered: say so, and leave the form so it is not sent twice
                message = _("Registered %(version)s, but it is not active: %(reason)s") % {"version": exc.version, "reason": translated(exc)}
                messages.warning(request, message)
                return HttpResponseRedirect(reverse("admin:webapp_modelversion_change", args=[exc.version.pk]))
            else:
                messages.success(request, (_("Registered %(version)s and activated it.") if version.is_active else _("Registered %(version)s.")) % {"version": version})
                changed = selectors.model_version_class_changes(version=version)
                if changed:
                    messages.warning(request, changed)
                return HttpResponseRedirect(reverse("admin:webapp_modelversion_change", args=[version.pk]))
        context = {**self.admin_site.each_context(request), "form": form, "title": _("Register a model version"), "opts": self.model._meta}
        return render(request, "admin/webapp/register_model.html", context)

    def picture_view(self, request, pk: int, kind: str):
        """A training picture of the version, for staff who may view it; only the PNGs the train command writes."""
        version = get_object_or_404(selectors.model_version_list(), pk=pk)
        if not self.has_view_or_change_permission(request, version):
            raise PermissionDenied
        key, expected = PICTURES.get(kind, ("", ""))
        if not key or (version.manifest.get("training") or {}).get(key) != expected:
            raise Http404
        folder = Path(version.artifact_path).parent
        picture = folder / expected
        if picture.is_symlink() or not picture.is_file() or picture.resolve().parent != folder.resolve():
            raise Http404
        handle = open(picture, "rb")
        if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            handle.close()
            raise Http404
        handle.seek(0)
        return FileResponse(handle, content_type="image/png")

    @admin.action(description=gettext_lazy("Roll back to the previously active version"), permissions=["change"])
    def roll_back_selected(self, request, queryset):
        for name in sorted(set(queryset.values_list("name", flat=True))):
            try:
                version = services.model_version_rollback(name=name, by=request.user)
            except services.ActivationError as exc:
                messages.error(request, translated(exc))
            else:
                messages.success(request, _("Rolled back %(name)s to v%(version)d.") % {"name": name, "version": version.version})

    @admin.action(description=gettext_lazy("Recompile for the optimized engine (after upgrading its runtime)"), permissions=["change"])
    def recompile_selected(self, request, queryset):
        for version in queryset:
            try:
                done = services.model_version_recompile(version=version, by=request.user)
            except (services.ActivationError, services.RegistrationError) as exc:
                said = translated(exc)
                messages.error(request, said if str(version) in said else f"{version}: {said}")
            else:
                served = _("%(version)s is served by %(engine)s.") % {"version": done, "engine": done.engine}
                messages.success(request, f"{served} {done.engine_note}".strip())

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":  # once: an action's POST is followed by this page's GET
            for warning in fleet.engine_fallback_fleet_warnings():  # a silent slowdown is worth a banner
                messages.warning(request, warning)
        return super().changelist_view(request, extra_context)


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else value


@admin.register(Activation)
class ActivationAdmin(AuditTrailAdmin):
    list_display = ("at", "model_name", "from_version", "to_version", "kind", "by")
    list_filter = ("model_name", "kind")


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "model_version", "best", "domain", "input_bytes", "latency_ms", "source")
    list_filter = ("model_version", "source")
    readonly_fields = [f.name for f in Prediction._meta.fields]

    @admin.display(description=gettext_lazy("top-1"))
    def best(self, obj):
        return str(obj.top[0]["label"]) if obj.top else "-"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # history is append-only; see manage.py prune_history


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "is_active", "created_at", "last_used_at")
    fields = ("name", "user", "is_active")
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        # A token is revoked for good: once saved, "active" changes only through revocation, never back on. Its user
        # is fixed too: moving it off a deactivated user would bring a dead token back to life.
        return ("user", "is_active") if obj is not None else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Staff other than superusers make tokens for themselves only: a token in another's name (a superuser's,
        # or none, which outlives its maker's deactivation) would act beyond what they answer for.
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
            kwargs["initial"], kwargs["required"], kwargs["empty_label"] = request.user.pk, True, None
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.action(description=gettext_lazy("Revoke the selected tokens (for good)"), permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = sum(services.api_token_revoke(token=token, by=request.user) for token in queryset)
        if revoked:
            messages.success(request, ngettext(
                "Revoked %(count)d token; requests with it are refused.",
                "Revoked %(count)d tokens; requests with them are refused.", revoked) % {"count": revoked})
        if revoked < len(queryset):
            messages.info(request, _("The other selected tokens were already revoked; nothing changed for them."))

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        token, key = services.api_token_create(name=obj.name, user=obj.user, is_active=obj.is_active)
        obj.pk, obj.prefix, obj.created_at = token.pk, token.prefix, token.created_at  # the history names it by its prefix
        messages.warning(request, _("Token for %(name)s: %(key)s (copy it now; it is not shown again).") % {"name": obj.name, "key": key})


@admin.register(AllowedClassList)
class AllowedClassListAdmin(admin.ModelAdmin):
    """Per model name, the classes a deployment can meet; checked against the active version when saved."""

    form = AllowedClassListForm
    list_display = ("model_name", "enabled", "class_count", "updated_at", "updated_by")
    readonly_fields = ("updated_at", "updated_by")

    @admin.display(description=gettext_lazy("classes"))
    def class_count(self, obj):
        return sum(1 for line in obj.lines if line.strip() and not line.strip().startswith("#"))

    def save_model(self, request, obj, form, change):
        saved = services.allowed_class_list_save(
            model_name=obj.model_name, classes=obj.classes, enabled=obj.enabled, by=request.user
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.allowed_class_list_delete(listed=obj)

    def delete_queryset(self, request, queryset):
        for listed in queryset:
            services.allowed_class_list_delete(listed=listed)


# The learning loop's training jobs and promotion gate live in their own modules.
from webapp import admin_training  # noqa: E402,F401
from webapp import admin_gate  # noqa: E402,F401
