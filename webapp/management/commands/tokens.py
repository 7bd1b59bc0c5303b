from django.contrib.admin.models import ADDITION
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db.models import Q

from webapp import audit, services
from webapp.management.base import Command as ProjectCommand
from webapp.management.operator import add_by_argument, operator
from webapp.models import ApiToken


class Command(ProjectCommand):
    help = "API tokens: create NAME (prints the key once), list, revoke ID|PREFIX."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = actions.add_parser("create", help="a new token; its key is printed once and never stored")
        create.add_argument("name")
        create.add_argument("--user", default="", help="the user the token belongs to")
        add_by_argument(create)
        listing = actions.add_parser("list", help="every token (never the keys)")
        listing.add_argument("--active", action="store_true", help="only tokens still in use")
        revoke = actions.add_parser("revoke", help="turn a token off for good")
        revoke.add_argument("token", help="its id, or the first characters shown by list")
        add_by_argument(revoke)

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _create(self, *, name, user, by, **options):
        name = name.strip()
        if not name:
            raise CommandError("Give the token a name that says who or what uses it (e.g. batch-job).")
        longest = ApiToken._meta.get_field("name").max_length
        if len(name) > longest:
            raise CommandError(f"The token's name has {len(name)} characters; at most {longest}.")
        actor, owner = operator(by), None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"--user {user}: no such user.")
        token, key = services.api_token_create(name=name, user=owner)
        audit.record(by=actor, obj=token, message="created", flag=ADDITION)
        self.stdout.write(f"token {token.pk} for {name}: {key}")
        self.stderr.write("copy the key now; it is not shown again.")

    def _list(self, *, active, **options):
        tokens = ApiToken.objects.select_related("user").order_by("pk")
        for token in tokens.filter(is_active=True) if active else tokens:
            used = token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "never"
            state = "active" if token.is_active else "revoked"
            self.stdout.write(f"{token.pk}  {token.prefix}...  {state:7}  {token.name}  user={token.user or '-'}  last used {used}")

    def _revoke(self, *, token, by, **options):
        actor = operator(by)
        match = Q(prefix__startswith=token) if len(token) >= 4 else Q(pk=-1)
        if token.isdigit():
            match |= Q(pk=int(token))
        found = list(ApiToken.objects.filter(match)[:2])
        if len(found) != 1:
            short = " (a prefix needs at least 4 characters)" if not found and len(token) < 4 and not token.isdigit() else ""
            raise CommandError(f"{'no' if not found else 'more than one'} token matches {token!r}{short}; "
                               "manage.py tokens list shows them.")
        if not services.api_token_revoke(token=found[0], by=actor):
            self.stdout.write(f"token {found[0].pk} ({found[0].name}) was already revoked; nothing changed.")
            return
        self.stdout.write(f"revoked token {found[0].pk} ({found[0].name}); it is refused from now on.")
