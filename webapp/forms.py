"""Forms of the admin."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from webapp import selectors, services
from webapp.models import AllowedClassList, GoldenSet


def artifact_choices() -> list[tuple[str, str]]:
    """The .h5 files under MODELS_DIR that have a manifest beside them."""
    root = Path(settings.MODELS_DIR)
    found = sorted(p for p in root.rglob("*.h5") if p.with_suffix(".json").is_file()) if root.is_dir() else []
    return [("", "---")] + [(str(p.relative_to(root)), str(p.relative_to(root))) for p in found]


class RegisterModelForm(forms.Form):
    h5_file = forms.FileField(required=False, label=_("H5 file"), help_text=_("Upload the model and its manifest together..."))
    manifest_file = forms.FileField(required=False, label=_("Manifest JSON"))
    artifact = forms.ChoiceField(required=False, label=_("Artifact"), help_text=_("...or pick an artifact already under models/."))
    notes = forms.CharField(required=False, label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}))
    activate = forms.BooleanField(required=False, label=_("Activate"), help_text=_("Serve it as soon as it is registered."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["artifact"].choices = artifact_choices()

    def clean(self):
        data = super().clean()
        uploaded = bool(data.get("h5_file")) or bool(data.get("manifest_file"))
        if uploaded == bool(data.get("artifact")):
            raise forms.ValidationError(_("Either upload an H5 and its manifest, or pick an artifact under models/."))
        if uploaded and not (data.get("h5_file") and data.get("manifest_file")):
            raise forms.ValidationError(_("Upload both the H5 file and its manifest JSON."))
        return data

    def register(self, *, by):
        """Register (and activate, when asked) through the one service path; raises its errors."""
        data = self.cleaned_data
        common = {"notes": data["notes"], "by": by, "activate": bool(data.get("activate"))}
        if data.get("artifact"):
            return services.model_version_register(artifact_path=Path(settings.MODELS_DIR) / data["artifact"], **common)
        return services.model_version_register_upload(h5_file=data["h5_file"], manifest_file=data["manifest_file"], **common)


class AllowedClassListForm(forms.ModelForm):
    """The admin's allowed-class list: the model is picked among registered names, the lines checked by the service."""

    model_name = forms.ChoiceField(label=_("Model"))

    class Meta:
        model = AllowedClassList
        fields = ("model_name", "classes", "enabled")
        widgets = {"classes": forms.Textarea(attrs={"rows": 12})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = sorted({*selectors.model_names_active(), *([self.instance.model_name] if self.instance.pk else [])})
        self.fields["model_name"].choices = [(n, n) for n in names]
        # A list is its model's: saving it under another name would make a second list and leave this one applied.
        self.fields["model_name"].disabled = bool(self.instance.pk)

    def clean(self):
        data = super().clean()
        if data.get("model_name") and data.get("classes") is not None:
            try:
                services.allowed_class_list_check(model_name=data["model_name"], classes=data["classes"])
            except services.AllowedListError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data


class GoldenSetForm(forms.ModelForm):
    """A golden set is checked when saved: a bad one would refuse every activation of its model until removed."""

    # A folder is read on the server (every photo under it hashed), so only a superuser names one; other staff choose
    # an exported dataset, which the service itself wrote. Else its refusals would map the server's folders for them.
    folders_allowed = True  # set per request by the admin

    class Meta:
        model = GoldenSet
        fields = ("model_name", "path", "dataset")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["path"].required = False  # an exported dataset will do instead

    def clean(self):
        from webapp import promotion

        data = super().clean()
        name = data.get("model_name")
        if name and not selectors.model_name_exists(name=name):
            self.add_error("model_name", _("No model named %(name)r is registered.") % {"name": name})
        path, dataset = (data.get("path") or "").strip(), data.get("dataset")
        if path and not self.folders_allowed:  # an unchanged folder too: each save reads the whole tree again
            raise forms.ValidationError(_("Only a superuser may name a folder on the server; choose an exported dataset."))
        if not path and dataset is None:
            raise forms.ValidationError(_("Give the folder of the golden set, or choose an exported dataset."))
        problem = promotion.golden_folder_problem(Path(dataset.path if dataset is not None else path), name)
        if problem:
            raise forms.ValidationError(problem)
        data["path"] = path
        return data
