from django.core.management.base import BaseCommand, CommandError

from recognizer.default_model import build_default, default_model_name
from recognizer.errors import RecognizerError
from webapp import selectors, services


class Command(BaseCommand):
    help = "Build the default model artifact offline and register + activate it as version 1 if no version exists."

    def add_arguments(self, parser):
        parser.add_argument("--backbone", default=None, help="default: RECOGNIZER_DEFAULT_BACKBONE or efficientnet_lite0")

    def handle(self, *args, backbone, **options):
        try:
            path = build_default(backbone)
        except RecognizerError as exc:
            raise CommandError(str(exc)) from None
        if selectors.model_name_exists(name=default_model_name(backbone)):
            self._recompile_if_stale(default_model_name(backbone))
            self.stdout.write(f"default artifact at {path}; already registered")
            return
        try:
            version = services.model_version_register(artifact_path=path, activate=True, notes="default model, built offline")
        except services.RegistrationError as exc:
            raise CommandError(f"not registered: {exc}") from None
        except services.ActivationError as exc:
            raise CommandError(f"registered {exc.version}, but it is not active: {exc}") from None
        self.stdout.write(f"registered and activated {version} from {path} (served by {version.engine})")

    def _recompile_if_stale(self, name: str) -> None:
        """A compiled copy left by an older release or runtime, or a manifest that another database's registration of
        the same file rewrote, is rebuilt here, so `make run` never serves it slower or warns about it."""
        version = selectors.model_version_get(name=name)
        reason = selectors.model_version_stale_reason(version=version) if version else ""
        if not reason:
            return
        self.stdout.write(f"{version}: {reason} Recompiling.")
        try:
            done = services.model_version_recompile(version=version)
        except (services.ActivationError, services.RegistrationError) as exc:
            raise CommandError(f"{version}: not recompiled: {exc}") from None
        self.stdout.write(f"{done}: served by {done.engine}" + (f" ({done.engine_note})" if done.engine_note else ""))
