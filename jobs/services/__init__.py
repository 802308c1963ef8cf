"""Job services: every write and state transition of background jobs (split by subdomain).

- core: the JobRun lifecycle (create, claim, progress, finish, sweep) and the registry sync job
- materialization: materialization runs, the per-view lock and the ledger
- preview: online preview (validated in the web tier, read by a worker)
- freshness: the periodic fresh/stale check and its webhook
"""

from jobs.services.core import (
    job_run_claim,
    job_run_execute,
    job_run_finish,
    job_run_log,
    job_run_progress,
    registry_sync_start,
    stale_after,
    stale_runs_sweep,
)

__all__ = [
    "job_run_claim",
    "job_run_execute",
    "job_run_finish",
    "job_run_log",
    "job_run_progress",
    "registry_sync_start",
    "stale_after",
    "stale_runs_sweep",
]
