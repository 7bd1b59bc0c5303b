"""The review queue in the admin: feedback with its photo, the model's answer and the user's; accept, reject, merge."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from recognizer.manifest import DOMAINS
from webapp import review
from webapp.errors import translated
from webapp.models import Feedback, FeedbackReview


class AuditTrailAdmin(admin.ModelAdmin):
    """Records that are written by services only and never changed by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(label=gettext_lazy("Decision"), choices=[
        ("accept", gettext_lazy("Accept with this label")), ("merge", gettext_lazy("Merge into a class")), ("reject", gettext_lazy("Reject")),
    ])
    label = forms.CharField(label=gettext_lazy("Label"), max_length=200, required=False)
    domain = forms.ChoiceField(label=gettext_lazy("Domain"), choices=[("", "---")] + [(d, d) for d in DOMAINS], required=False)
    class_id = forms.ChoiceField(required=False, label=gettext_lazy("Class of the model"))

    def __init__(self, *args, item: Feedback, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["class_id"].choices = [("", "---")] + review.class_choices(item)
        self.initial.setdefault("label", item.label)
        self.initial.setdefault("domain", item.domain)

    def clean(self):
        data = super().clean()
        if data.get("decision") == "merge" and not data.get("class_id"):
            self.add_error("class_id", _("Choose the class of the model to merge this photo into."))
        return data

    def apply(self, item: Feedback, by) -> Feedback:
        data = self.cleaned_data
        if data["decision"] == "reject":
            return review.feedback_reject(feedback=item, by=by)
        if data["decision"] == "merge":
            return review.feedback_merge(feedback=item, class_id=data["class_id"], by=by)
        return review.feedback_accept(feedback=item, label=data["label"], domain=data["domain"], by=by)


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("created_at", "thumbnail", "model_answer", "user_answer", "status", "final", "reviewed_by", "review_link")
    list_filter = ("status", "correct", "source")
    search_fields = ("label", "final_label", "model_label", "comment")
    actions = ["accept_as_said", "reject_selected"]
    readonly_fields = [f.name for f in Feedback._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("prediction__kept_photo", "prediction__model_version", "reviewed_by")

    def has_add_permission(self, request):
        return False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(review.PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False  # feedback is decided on its review page (and by the actions), never edited as a form

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return super().get_actions(request) if request.user.has_perm(review.PERMISSION) else {}

    @admin.display(description=gettext_lazy("photo"))
    def thumbnail(self, obj):
        url = reverse("admin:webapp_feedback_photo", args=[obj.pk])
        alt = _("photo of prediction %(id)s") % {"id": obj.prediction_id}
        return format_html('<img src="{}" alt="{}" style="max-width:96px;max-height:96px">', url, alt)

    @admin.display(description=gettext_lazy("model said"), ordering="model_label")
    def model_answer(self, obj):
        return obj.model_label

    @admin.display(description=gettext_lazy("user said"), ordering="label")
    def user_answer(self, obj):
        if not obj.correct:
            said = obj.label
        else:  # a confirmation of an answer that named no kind has no label: it agrees with what the model said
            said = _("%(label)s (agrees)") % {"label": obj.label} if obj.label else _("right (the answer as given)")
        return f"{said} [{obj.domain}]" if obj.domain else said

    @admin.display(description=gettext_lazy("final"))
    def final(self, obj):
        return f"{obj.final_label} [{obj.final_domain}]" if obj.final_label else "-"

    @admin.display(description=gettext_lazy("review"))
    def review_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:webapp_feedback_review", args=[obj.pk]), _("review"))

    def get_urls(self):
        extra = [
            path("<int:pk>/photo/", self.admin_site.admin_view(self.photo_view), name="webapp_feedback_photo"),
            path("<int:pk>/review/", self.admin_site.admin_view(self.review_view), name="webapp_feedback_review"),
        ]
        return extra + super().get_urls()

    def photo_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        item = get_object_or_404(Feedback.objects.select_related("prediction__kept_photo"), pk=pk)
        photo = getattr(item.prediction, "kept_photo", None)
        if photo is None or not photo.image:
            raise Http404("The photo was deleted.")
        try:
            handle = photo.image.open("rb")
        except FileNotFoundError:  # its record outlived the file (lost storage, a MEDIA_ROOT not shared by every host)
            raise Http404("The photo's file is missing under MEDIA_ROOT.") from None
        return FileResponse(handle, content_type="image/jpeg")

    def review_view(self, request, pk: int):
        if not self.has_view_or_change_permission(request):  # the user's label and comment are not for every staff member
            raise PermissionDenied
        item = get_object_or_404(self.get_queryset(request), pk=pk)
        can_act = request.user.has_perm(review.PERMISSION)
        if request.method == "POST" and not can_act:
            raise PermissionDenied
        form = ReviewForm(request.POST or None, item=item)
        if request.method == "POST" and form.is_valid():
            try:
                done = form.apply(item, request.user)
            except review.ReviewError as exc:
                messages.error(request, translated(exc))
            else:
                said = _("Feedback %(id)s: %(status)s %(label)s") % {"id": done.pk, "status": done.status, "label": done.final_label}
                messages.success(request, said.strip())
                return HttpResponseRedirect(reverse("admin:webapp_feedback_changelist"))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Review feedback %(id)s") % {"id": item.pk},
            "item": item, "form": form, "can_act": can_act, "history": item.reviews.select_related("by"),
            "photo_url": reverse("admin:webapp_feedback_photo", args=[item.pk]),
        }
        return render(request, "admin/webapp/review_feedback.html", context)

    @admin.action(description=gettext_lazy("Accept with the user's label and domain"))
    def accept_as_said(self, request, queryset):
        for item in queryset:
            try:
                review.feedback_accept(feedback=item, label=item.label, domain=item.domain, by=request.user)
            except review.ReviewError as exc:
                said = _("Feedback %(id)s not accepted: %(reason)s Review it on its own page.")
                messages.error(request, said % {"id": item.pk, "reason": translated(exc)})
            else:
                messages.success(request, _("Accepted feedback %(id)s as %(label)r.") % {"id": item.pk, "label": item.label})

    @admin.action(description=gettext_lazy("Reject the selected feedback"))
    def reject_selected(self, request, queryset):
        for item in queryset:
            review.feedback_reject(feedback=item, by=request.user)
        count = len(queryset)
        messages.success(request, ngettext("Rejected %(count)d item.", "Rejected %(count)d items.", count) % {"count": count})


@admin.register(FeedbackReview)
class FeedbackReviewAdmin(AuditTrailAdmin):
    list_display = ("at", "feedback", "action", "label", "domain", "by")
    list_filter = ("action",)
