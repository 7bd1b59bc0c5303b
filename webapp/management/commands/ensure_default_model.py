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
            self.stdout.write(f"default artifact at {path}; already registered, nothing to do")
            return
        try:
            version = services.model_version_register(artifact_path=path, activate=True, notes="default model, built offline")
        except services.RegistrationError as exc:
            raise CommandError(f"not registered: {exc}") from None
        except services.ActivationError as exc:
            raise CommandError(f"registered {exc.version}, but it is not active: {exc}") from None
        self.stdout.write(f"registered and activated {version} from {path} (served by {version.engine})")
