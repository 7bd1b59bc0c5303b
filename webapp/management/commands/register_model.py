from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from webapp import promotion, selectors, services
from webapp.management.base import Command as ProjectCommand


class Command(ProjectCommand):
    help = "Validate an artifact (H5 + manifest beside it) and register it as the next version of its model."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the .h5 file; its manifest is the .json with the same stem")
        parser.add_argument("--activate", action="store_true", help="serve it right away")
        parser.add_argument("--notes", default="")

    def _say_gate(self, version) -> None:
        check = version.gate_checks.first()  # scored on its name's golden set, if it has one
        if check is not None:
            self.stdout.write(promotion.gate_message(check, name=version.name))

    def _warn_class_changes(self, version) -> None:
        changed = selectors.model_version_class_changes(version=version)
        if changed:
            self.stderr.write(f"warning: {changed}")

    def handle(self, *args, path, activate, notes, **options):
        try:
            version = services.model_version_register(artifact_path=Path(path), notes=notes, activate=activate)
        except services.RegistrationError as exc:
            raise CommandError(f"not registered: {exc}") from None
        except services.ActivationError as exc:
            self._say_gate(exc.version)
            self._warn_class_changes(exc.version)
            raise CommandError(f"registered {exc.version}, but it is not active: {exc}") from None
        state = "active" if version.is_active else "inactive"
        self.stdout.write(f"registered {version} ({state}, sha256 {version.sha256[:12]})")
        self._say_gate(version)
        self._warn_class_changes(version)
        store = Path(settings.MODELS_DIR).resolve()
        if not Path(version.artifact_path).resolve().is_relative_to(store):
            self.stderr.write(
                f"warning: {version.artifact_path} is outside the model store RECOGNIZER_MODELS_DIR ({store}): the file must "
                "stay there, every host must see it at that path, and deploy/backup.sh saves only the store."
            )
