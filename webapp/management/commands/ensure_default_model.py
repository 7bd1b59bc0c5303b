from django.conf import settings
from django.core.management.base import CommandError

from recognizer.default_model import build_default, default_model_name
from recognizer.errors import RecognizerError
from recognizer.optimized import base_kind, precision_of
from webapp import selectors, services
from webapp.management.base import Command as ProjectCommand


class Command(ProjectCommand):
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
            self._say_how_to_apply_the_precision(default_model_name(backbone))
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

    def _say_how_to_apply_the_precision(self, name: str) -> None:
        """RECOGNIZER_PRECISION applies as a version is registered: `RECOGNIZER_PRECISION=auto make run` on a default
        model registered in FP32 serves FP32 as before, so say what changes it. Quiet when that precision was tried
        (its engine note says how it fared) or cannot apply to the version's runtime."""
        wanted = settings.RECOGNIZER_PRECISION
        version = selectors.model_version_get(name=name)
        if wanted == "fp32" or version is None or version.engine == "keras" or version.engine_note:
            return
        if precision_of(version.engine) != "fp32" or (wanted == "bf16" and base_kind(version.engine) != "openvino"):
            return
        self.stdout.write(
            f"{version} serves in fp32: RECOGNIZER_PRECISION={wanted} applies to versions as they are registered; "
            f"`python manage.py recompile {name} --precision {wanted}` applies it to the versions of that name (behind "
            "their accuracy gate)."
        )
