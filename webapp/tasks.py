"""Jobs for the queue (django-tasks): the database backend by default, RQ on Redis when TASKS_BROKER_URL is set."""

from django_tasks import task


@task()
def training_job_run(job_id: int) -> None:
    """Run one training job on this worker's machine (see webapp.training_jobs)."""
    from webapp import training_jobs

    training_jobs.training_job_supervise(job_id=job_id)
