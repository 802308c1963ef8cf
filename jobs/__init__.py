"""Background jobs: Celery tasks and the JobRun ledger."""
