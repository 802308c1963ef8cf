"""The job kinds: one registry the generic task, the API and the pages find every kind through.

`POST /api/v1/jobs/` (and the preview and dataset endpoints) and the pages' buttons (`POST /jobs/start/<kind>/`,
jobs.views.job_start) both start a run with `JOB_KINDS[kind].start_from_input`: the API gives its validated JSON,
a page gives its form through the kind's `form_input`, which turns form fields into the same inputs.

A job kind is its worker side (`run`: JobRun -> result dict) plus how a finished run is announced. Its
start function (`<kind>_start` in jobs/services/<kind>.py) validates the input, checks permission and calls
`job_run_queue`, which writes the JobRun row and its audit event and, on commit, publishes the one generic
task `jobs.run` with the row's id. The worker's `jobs.run` looks the kind up here. Adding a job kind: a
module in jobs/services/ with its params, start and run functions, a `JobRun.Kind` value, and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import QueryDict

from catalog.exceptions import InvalidInput
from jobs.models import JobRun
from jobs.services.apply import change_request_apply_run
from jobs.services.core import registry_sync_run, registry_sync_start
from jobs.services.materialization import materialization_run, materialization_start
from jobs.services.planning import change_request_plan_run
from jobs.services.preview import online_preview_run, online_preview_start
from jobs.services.skew import skew_check_run, skew_check_start
from jobs.services.stats import feature_statistics_run, feature_statistics_start
from jobs.services.training import training_dataset_run, training_dataset_start


@dataclass(frozen=True)
class JobKind:
    kind: str  # a JobRun.Kind value
    label: str  # "a skew check"
    run: Callable[[JobRun], dict[str, Any]]  # the worker side: its result, or it raises JobFailed (core.py)
    start: Callable[..., JobRun] | None = None  # (actor=, trigger=, **inputs); None: not started from POST /jobs/
    inputs: tuple[str, ...] = ()  # the POST /jobs/ fields this kind takes
    required: tuple[str, ...] = ()  # of which these must be given
    wakes_waiters: bool = False  # a web request may be waiting on the row (previews): wake it when done
    form_input: Callable[[QueryDict], dict[str, Any]] | None = None  # an HTML form's fields → `inputs` (default: as is)

    def inputs_from_form(self, form: QueryDict) -> dict[str, Any]:
        """A page's form as this kind's inputs: the fields it takes, empty ones left out."""
        if self.form_input is not None:
            return self.form_input(form)
        return {name: form[name] for name in self.inputs if form.get(name)}

    def start_from_input(self, *, actor: Any, trigger: str, data: dict[str, Any]) -> JobRun:
        """Start a run from validated API input: its own fields only, the required ones checked."""
        if self.start is None:
            raise InvalidInput(f"{self.label} is not started this way")
        missing = [name for name in self.required if not data.get(name)]
        if missing:
            raise InvalidInput(f"{self.label} needs {' and '.join(missing)}", {name: ["required"] for name in missing})
        return self.start(actor=actor, trigger=trigger, **{k: data[k] for k in self.inputs if k in data})


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "on", "yes")


def _sync_form(form: QueryDict) -> dict[str, Any]:
    """The dashboard's "Sync registry now": a forced sync (the registry may look unchanged, the catalog not)."""
    return {"project": form.get("project") or None, "force": _flag(form.get("force", "1"))}


def _materialize_form(form: QueryDict) -> dict[str, Any]:
    """The picker's "project/view" values (one project at a time), mode and the range's start and end."""
    project = form.get("project") or None
    views: list[str] = []
    for item in form.getlist("views"):
        picked_project, _, view = item.partition("/")
        if project and picked_project != project:
            raise InvalidInput("pick views of one project at a time", {"views": ["one project at a time"]})
        project, views = picked_project, [*views, view]
    inputs = {"project": project, "views": views or None, "mode": form.get("mode") or "incremental"}
    return inputs | {name: form[name] for name in ("start", "end") if form.get(name)}


def _skew_form(form: QueryDict) -> dict[str, Any]:
    sample = (form.get("sample") or "100").strip()
    if not sample.isdigit():
        raise InvalidInput(f"the sample must be a whole number, not {sample!r}", {"sample": ["a whole number"]})
    return {"project": form.get("project"), "view": form.get("view"), "sample": int(sample)}


def _training_dataset_start(*, entity_file: Any = None, **inputs: Any) -> JobRun:
    """A dataset from API input: the uploaded entity file with its name and declared size."""
    return training_dataset_start(
        entity_file=entity_file,
        entity_file_name=getattr(entity_file, "name", "") or "",
        entity_file_size=getattr(entity_file, "size", None),
        **{k: v for k, v in inputs.items() if k != "name" or v},
    )


JOB_KINDS: dict[str, JobKind] = {
    k.kind: k
    for k in (
        JobKind(
            JobRun.Kind.SYNC,
            "a registry sync",
            registry_sync_run,
            registry_sync_start,
            inputs=("project", "force"),
            form_input=_sync_form,
        ),
        JobKind(
            JobRun.Kind.MATERIALIZE,
            "a materialization",
            materialization_run,
            materialization_start,
            inputs=("project", "views", "mode", "start", "end", "chunk_hours"),
            form_input=_materialize_form,
        ),
        JobKind(
            JobRun.Kind.PREVIEW,
            "a preview",
            online_preview_run,
            online_preview_start,
            inputs=("project", "feature_service", "features", "entities"),
            required=("project",),
            wakes_waiters=True,
        ),
        JobKind(
            JobRun.Kind.SKEW,
            "a skew check",
            skew_check_run,
            skew_check_start,
            inputs=("project", "view", "sample", "as_of"),
            required=("project", "view"),
            form_input=_skew_form,
        ),
        JobKind(
            JobRun.Kind.STATS,
            "feature statistics",
            feature_statistics_run,
            feature_statistics_start,
            inputs=("project", "view", "start", "end"),
            required=("project", "view"),
        ),
        JobKind(JobRun.Kind.APPLY, "an apply", change_request_apply_run),  # started from its change request
        # started by an upload (jobs.api.governance, jobs.views_planning); the API's `?wait=` waits on it
        JobKind(JobRun.Kind.PLAN, "a plan", change_request_plan_run, wakes_waiters=True),
        JobKind(
            JobRun.Kind.TRAINING_DATASET,
            "a training dataset",
            training_dataset_run,
            _training_dataset_start,
            inputs=("project", "feature_service", "features", "entities", "entity_timestamps", "entity_file", "name"),
            required=("project",),
        ),
    )
}
