from django.core.management.base import CommandError

from recognizer.quantization import PRECISIONS
from webapp import selectors, services
from webapp.management.base import Command as ProjectCommand
from webapp.management.operator import add_by_argument, operator
from webapp.models import ModelVersion


class Command(ProjectCommand):
    help = (
        "Compile model versions again for their optimized engine and check parity: after upgrading ONNX Runtime or "
        "OpenVINO, versions whose parity record no longer matches are served by Keras (slower) until this runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="only versions of this model name")
        parser.add_argument("--all", action="store_true", help="also versions whose compiled copy is still valid")
        parser.add_argument(
            "--precision", choices=PRECISIONS,
            help="serve in this precision from now on (default: the one each version is served in; the shell's "
            "RECOGNIZER_PRECISION is not read)",
        )
        add_by_argument(parser)

    def handle(self, *args, name, all: bool, by, precision, **options):
        user = operator(by)
        versions = ModelVersion.objects.filter(name=name) if name else ModelVersion.objects.all()
        if name and not versions.exists():
            raise CommandError(f"no model named {name!r}.")
        broken, stale = [], []
        for version in versions.order_by("name", "version"):
            try:
                services.model_version_check_unchanged(version=version)
            except services.ActivationError as exc:  # recompiling would only copy the damage; say it instead
                self.stderr.write(str(exc))
                broken.append(version)
            else:
                if all or precision or _needs_recompiling(version):
                    stale.append(version)
        if not stale and not broken:
            self.stdout.write("nothing to recompile: every compiled copy matches its artifact and the installed runtime.")
            return
        failed = len(broken)
        for version in stale:
            try:
                done = services.model_version_recompile(version=version, by=user, precision=precision)
            except (services.ActivationError, services.RegistrationError) as exc:
                self.stderr.write(f"{version}: not recompiled: {exc}")
                failed += 1
                continue
            self.stdout.write(f"{done}: served by {done.engine}" + (f" ({done.engine_note})" if done.engine_note else ""))
        if failed:
            raise CommandError(f"{failed} of {len(stale) + len(broken)} versions could not be recompiled.")


def _needs_recompiling(version) -> bool:
    return bool(selectors.model_version_stale_reason(version=version))
