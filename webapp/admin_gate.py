"""The promotion gate in the admin: golden sets, both figures side by side on the version page, forced activation."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from webapp import promotion, selectors, services, shadow
from webapp.admin import ModelVersionAdmin
from webapp.admin_review import AuditTrailAdmin
from webapp.errors import translated
from webapp.forms import GoldenSetForm
from webapp.models import GateCheck, GateOverride, GoldenSet, ModelVersion, Shadow


class GatedModelVersionAdmin(ModelVersionAdmin):
    """The version admin, with the gate's figures and, for superusers, activation against the gate's advice."""

    actions = ["activate_selected", *ModelVersionAdmin.actions, "shadow_selected"]
    readonly_fields = ModelVersionAdmin.readonly_fields + ("promotion_gate",)
    fields = ModelVersionAdmin.fields + ("promotion_gate",)
    change_form_template = "admin/webapp/modelversion/change_form.html"

    @admin.display(description=gettext_lazy("promotion gate"))
    def promotion_gate(self, obj):
        check = obj.gate_checks.select_related("active").first()
        if check is None:
            has_golden = GoldenSet.objects.filter(model_name=obj.name).exists()
            return _("Not scored yet: use 'Score on the golden set'.") if has_golden else promotion.gate_message(None, name=obj.name)
        if check.active_top1 is not None:
            active = f"v{check.active.version}: {check.active_top1:.1%}"
        else:
            active = _("this version") if check.candidate.is_active else _("none")
        photos = ngettext("%(count)d photo", "%(count)d photos", check.images) % {"count": check.images}
        return format_html(
            '<table id="gate-figures"><tr><th>{}</th><th>{} v{}</th><th>{}</th></tr>'
            "<tr><td>{}, {}</td><td>{}</td><td>{}</td></tr></table><p>{}</p>",
            _("golden set"), _("active") if obj.is_active else _("candidate"), obj.version, _("compared with"),
            photos, check.golden_path, f"{check.candidate_top1:.1%}", active, _verdict(check),
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/gate/", wrap(require_POST(self.score_view)), name="webapp_modelversion_gate"),
            path("<int:pk>/force/", wrap(require_POST(self.force_view)), name="webapp_modelversion_force"),
        ] + super().get_urls()

    def score_view(self, request, pk: int):
        if not self.has_change_permission(request):
            raise PermissionDenied
        version = get_object_or_404(ModelVersion, pk=pk)
        try:
            check = promotion.gate_check_run(candidate=version)
        except promotion.GateRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, promotion.gate_message(check, name=version.name))
        return HttpResponseRedirect(reverse("admin:webapp_modelversion_change", args=[pk]))

    def force_view(self, request, pk: int):
        if not request.user.is_superuser:
            raise PermissionDenied
        version = get_object_or_404(ModelVersion, pk=pk)
        reason = request.POST.get("reason", "").strip()
        if not reason:
            messages.error(request, _("Give the reason for activating against the gate; it is kept in the audit."))
        else:
            self._activate(request, version, force_reason=reason)
        return HttpResponseRedirect(reverse("admin:webapp_modelversion_change", args=[pk]))

    def _activate(self, request, version, force_reason: str = "") -> None:
        changed = selectors.model_version_class_changes(version=version, replacing=True)
        try:
            version = services.model_version_activate(version=version, by=request.user, force_reason=force_reason)
        except services.AlreadyActive:
            messages.info(request, _("%(version)s is already the active version; nothing changed.") % {"version": version})
            return
        except services.ActivationError as exc:
            messages.error(request, translated(exc))
            return
        check = version.gate_checks.first()
        override = promotion.gate_override_last(candidate=version, by=request.user) if force_reason else None
        if override is not None:  # the gate refused it: say that this activation overrode it, and why
            said = _("%(version)s is now active, forced against the gate (reason kept in the audit: %(reason)s); "
                     "every worker switches within a few seconds.")
            messages.warning(request, said % {"version": version, "reason": override.reason})
        else:
            messages.success(request, _("%(version)s is now active; every worker switches within a few seconds.") % {"version": version})
        level = messages.WARNING if check is None else messages.INFO
        messages.add_message(request, level, promotion.gate_message(check, name=version.name))
        if changed:  # a version trained on a few classes under a model of many answers among those few only
            messages.warning(request, changed)

    @admin.action(description=gettext_lazy("Activate the selected version"), permissions=["change"])
    def activate_selected(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, _("Select exactly one version to activate."))
            return
        self._activate(request, queryset.get())

    @admin.action(description=gettext_lazy("Put the selected version in shadow (compare it on live requests)"), permissions=["change"])
    def shadow_selected(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, _("Select exactly one version to put in shadow."))
            return
        try:
            item = shadow.shadow_start(version=queryset.get(), by=request.user)
        except shadow.ShadowError as exc:
            messages.error(request, translated(exc))
            return
        said = _("%(shadow)s: it classifies %(rate)s of live requests in the background; see Shadows.")
        messages.success(request, said % {"shadow": item, "rate": f"{settings.SHADOW_SAMPLE_RATE:.0%}"})


def _verdict(check: GateCheck) -> str:
    if check.candidate.is_active:  # scored on its own: the figure later candidates are compared with
        return _("This is the active version: candidates are compared with this figure.")
    if check.active_top1 is None:
        return _("No active version to compare with: activation is allowed.")
    drop = (check.active_top1 - check.candidate_top1) * 100
    if drop > settings.PROMOTION_MAX_DROP_POINTS:
        said = _("Activation is refused: %(drop)s points lower (at most %(limit)s); a superuser may force it.")
        return said % {"drop": f"{drop:.1f}", "limit": f"{settings.PROMOTION_MAX_DROP_POINTS:g}"}
    return _("Activation is allowed.")


admin.site.unregister(ModelVersion)
admin.site.register(ModelVersion, GatedModelVersionAdmin)


@admin.register(GoldenSet)
class GoldenSetAdmin(admin.ModelAdmin):
    form = GoldenSetForm
    list_display = ("model_name", "path", "dataset", "created_at")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.folders_allowed = request.user.is_superuser
        return form


@admin.register(GateCheck)
class GateCheckAdmin(AuditTrailAdmin):
    list_display = ("created_at", "candidate", "candidate_top1", "active", "active_top1", "images", "trained_on_golden")


@admin.register(GateOverride)
class GateOverrideAdmin(AuditTrailAdmin):
    list_display = ("at", "check_run", "by", "reason")


@admin.register(Shadow)
class ShadowAdmin(AuditTrailAdmin):
    list_display = ("version", "started_at", "stopped_at", "compared", "agreement")
    readonly_fields = ("version", "started_at", "started_by", "stopped_at", "differences")
    actions = ["stop_selected"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        return actions if request.user.has_perm("webapp.change_modelversion") else {}

    @admin.display(description=gettext_lazy("requests compared"))
    def compared(self, obj):
        summary = shadow.shadow_agreement(shadow=obj)
        if not summary["earlier"]:
            return summary["compared"]
        return _("%(compared)d (and %(earlier)d with a version active before, not counted)") % summary

    @admin.display(description=gettext_lazy("agrees with the active version"))
    def agreement(self, obj):
        rate = shadow.shadow_agreement(shadow=obj)["agreement"]
        return "-" if rate is None else f"{rate:.1%}"

    @admin.display(description=gettext_lazy("where it differs (active → shadow)"))
    def differences(self, obj):
        rows = shadow.shadow_agreement(shadow=obj)["differences"]
        if not rows:
            return "-"
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", ((r["active_label"], r["shadow_label"], r["count"]) for r in rows))
        return format_html(
            '<table id="shadow-differences"><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>', _("active"), _("shadow"), _("requests"), body,
        )

    @admin.action(description=gettext_lazy("Stop the selected shadows"))
    def stop_selected(self, request, queryset):
        stopped = sum(shadow.shadow_stop(shadow=item) for item in queryset)
        if stopped:
            messages.success(request, ngettext("Stopped %(count)d shadow.", "Stopped %(count)d shadows.", stopped) % {"count": stopped})
        if stopped < len(queryset):
            messages.info(request, _("The other selected shadows had already stopped; nothing changed for them."))
