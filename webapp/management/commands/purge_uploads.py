from django.core.management.base import BaseCommand

from webapp import feedback


class Command(BaseCommand):
    help = "Delete kept photos whose retention (FEEDBACK_RETENTION_DAYS) ran out and that got no feedback. Run it daily."

    def handle(self, *args, **options):
        count = feedback.photos_purge()
        self.stdout.write(f"deleted {count} photo{'s' if count != 1 else ''} past retention without feedback")
