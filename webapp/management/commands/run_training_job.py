from django.core.management.base import CommandError

from webapp import training_jobs
from webapp.management.base import Command as ProjectCommand
from webapp.models import TrainingJob


class Command(ProjectCommand):
    help = "Run one training job in this process (the job worker starts this; it is not meant to be run by hand)."

    def add_arguments(self, parser):
        parser.add_argument("job_id", type=int)

    def handle(self, *args, job_id, **options):
        if not TrainingJob.objects.filter(pk=job_id).exists():
            raise CommandError(f"There is no training job {job_id}.")
        job = training_jobs.training_job_execute(job_id=job_id, log=self.stdout.write)
        self.stdout.write(f"job {job.pk}: {job.status}{': ' + job.error if job.error else ''}")
