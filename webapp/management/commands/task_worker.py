import os

from django.conf import settings
from django.core.management import call_command

from webapp import training_jobs
from webapp.management.base import Command as ProjectCommand


class Command(ProjectCommand):
    help = "Run the job worker of the configured queue: the database's (default) or RQ's on Redis (TASKS_BROKER_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")

    def handle(self, *args, batch, **options):
        reaped = training_jobs.training_jobs_reap()
        if reaped:
            self.stderr.write(f"marked {reaped} training job(s) failed: their worker had stopped")
        if settings.TASKS_BROKER_URL:
            extra = ["--burst"] if batch else ["--name", f"recognizer-{os.uname().nodename}-{os.getpid()}"]
            call_command("rqworker", "default", "--job-class", "django_tasks_rq.Job", *extra)
        else:
            call_command("db_worker", "--queue-name", "*", "--no-startup-delay", *(["--batch"] if batch else []))
