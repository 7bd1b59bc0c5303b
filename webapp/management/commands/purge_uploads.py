from webapp import feedback
from webapp.management.base import Command as ProjectCommand
from webapp.management.operator import missing_files_warning


class Command(ProjectCommand):
    help = "Delete kept photos whose retention (FEEDBACK_RETENTION_DAYS) ran out and that got no feedback. Run it daily."

    def handle(self, *args, **options):
        done = feedback.photos_purge()
        self.stdout.write(f"deleted {done.said()} past retention without feedback")
        missing_files_warning(self, done)
