from django.conf import settings
from django.core.management.base import CommandError

from webapp import promotion, selectors, services
from webapp.management.base import Command as ProjectCommand
from webapp.management.operator import add_by_argument, operator
from webapp.models import ModelVersion


class Command(ProjectCommand):
    help = "Make VERSION the active version of model NAME (as the admin's action does); audited."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("version", type=int, nargs="?", help="the version number, as `manage.py models` lists it")
        parser.add_argument("--version", type=int, dest="version_option", metavar="VERSION", help="the same as VERSION")
        parser.add_argument(
            "--force", metavar="REASON", default=None,
            help="activate although the promotion gate refuses, for this reason (audited; needs --by a superuser)",
        )
        add_by_argument(parser)

    def handle(self, *args, name, version, version_option, by, force, **options):
        given = {number for number in (version, version_option) if number is not None}
        if len(given) != 1:
            raise CommandError("name one version: activate NAME VERSION (or --version VERSION); manage.py models lists them.")
        version = given.pop()
        user = operator(by)
        if force is not None and not force.strip():
            raise CommandError("--force needs a reason: say why the gate is overridden (it is kept in the audit).")
        force = (force or "").strip()
        if force and (user is None or not user.is_superuser):
            raise CommandError("--force needs --by naming an active superuser; the override is audited in their name.")
        target = ModelVersion.objects.filter(name=name, version=version).first()
        if target is None:
            raise CommandError(f"no version {version} of a model named {name!r}; manage.py models lists them.")
        changed = selectors.model_version_class_changes(version=target, replacing=True)
        try:
            services.model_version_activate(version=target, by=user, force_reason=force)
        except services.AlreadyActive as exc:
            self.stdout.write(str(exc))
            return
        except services.ActivationError as exc:
            if changed:
                self.stderr.write(f"warning: {changed}")
            raise CommandError(f"not activated: {exc}") from None
        override = promotion.gate_override_last(candidate=target, by=user) if force else None
        forced = f", forced against the gate (audited: {override.reason})" if override else ""
        self.stdout.write(f"{target} is active{forced}; every worker switches within about {settings.MODEL_POLL_SECONDS} s.")
        check = target.gate_checks.first()
        gate = promotion.gate_message(check, name=target.name)  # as the admin says it: the figures, or that there are none
        if check is None:
            self.stderr.write(f"warning: {gate}")
        else:
            self.stdout.write(gate)
        if changed:
            self.stderr.write(f"warning: {changed}")
