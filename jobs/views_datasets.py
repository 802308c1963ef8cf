"""HTML views for training datasets: list, build form, the dataset page (schema, first rows, null rates,
contract) and permission-checked downloads."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from catalog.contracts import contract_diff, contract_for_service, contract_for_vector
from catalog.decorators import domain_errors_as_http
from catalog.exceptions import NotPermitted, ObjectNotFound, PortalError
from catalog.models import CatalogObject
from catalog.models.projects import Status as CatalogStatus
from catalog.permissions import can_view_catalog
from jobs.api.serializers import progress_percent
from jobs.models import TrainingDataset
from jobs.permissions import can_build_training_dataset, can_read_training_dataset_rows
from jobs.selectors import training_dataset_get, training_dataset_list
from jobs.services.training import parse_timestamps_text, training_dataset_open, training_dataset_start
from jobs.services.training_input import check_upload_size, max_upload_bytes

MULTIPART_OVERHEAD = 64 * 1024


@login_required
@domain_errors_as_http
def dataset_list(request: HttpRequest) -> HttpResponse:
    """Training datasets, newest first (`?project=`, `?service=`)."""
    project = request.GET.get("project") or None
    service = request.GET.get("service") or None
    datasets = training_dataset_list(user=request.user, project=project, feature_service=service)[:200]
    return render(
        request,
        "jobs/dataset_list.html",
        {
            "datasets": datasets,
            "project": project or "",
            "service": service or "",
            "can_build": can_build_training_dataset(request.user),
        },
    )


def _services() -> list[CatalogObject]:
    return list(
        CatalogObject.objects.filter(kind=CatalogObject.Kind.FEATURE_SERVICE)
        .exclude(status=CatalogStatus.REMOVED)
        .select_related("project")
        .order_by("project__name", "name")
    )


@csrf_exempt  # the size check must come before the CSRF check, which would read (spool) the whole body
@login_required
def dataset_new(request: HttpRequest) -> HttpResponse:
    """The build form: a service (or a feature list), and an entity file or timestamps."""
    if not can_view_catalog(request.user):
        raise PermissionDenied
    if request.method == "POST" and request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > MULTIPART_OVERHEAD:
                check_upload_size(length - MULTIPART_OVERHEAD)
        except ValueError:
            pass
        except PortalError as exc:
            return _form(request, error=str(exc), status=413)
    response: HttpResponse = _dataset_new_checked(request)
    return response


@csrf_protect
def _dataset_new_checked(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _form(request)
    if not can_build_training_dataset(request.user):
        raise PermissionDenied
    post = request.POST
    target = post.get("target", "")
    kind, _, ref = target.partition(":")
    project, _, service = ref.partition("/")
    features: list[str] | None = None
    if kind == "features":
        project = post.get("project", "")
        features = [line.strip() for line in post.get("features", "").splitlines() if line.strip()]
        service = ""
    upload = request.FILES.get("entity_file")
    source = post.get("source", "file")
    try:
        run = training_dataset_start(
            actor=request.user,
            project=project,
            feature_service=service or None,
            features=features,
            entity_file=upload if source == "file" else None,
            entity_file_name=upload.name or "" if upload and source == "file" else "",
            entity_file_size=upload.size if upload and source == "file" else None,
            entity_timestamps=parse_timestamps_text(post.get("timestamps", "")) if source == "timestamps" else None,
            name=post.get("name", "").strip(),
            trigger="button",
        )
    except NotPermitted:
        raise PermissionDenied from None
    except PortalError as exc:
        return _form(request, error=str(exc), status=413 if getattr(exc, "status_code", 400) == 413 else 400)
    dataset = TrainingDataset.objects.get(job_run=run)
    messages.success(request, f"Building training dataset {dataset.name} (job #{run.pk}).")
    return redirect("jobs:dataset_detail", pk=dataset.pk)


def _form(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    services = _services()
    projects = sorted({s.project.name for s in services})
    data = request.POST if request.method == "POST" and status != 413 else request.GET
    return render(
        request,
        "jobs/dataset_new.html",
        {
            "services": services,
            "projects": projects,
            "form": {
                "target": data.get("target") or (f"service:{data['service']}" if data.get("service") else ""),
                "project": data.get("project", ""),
                "features": data.get("features", ""),
                "source": data.get("source", "file"),
                "timestamps": data.get("timestamps", ""),
                "name": data.get("name", ""),
            },
            "error": error,
            "max_upload": max_upload_bytes(),
            "can_build": can_build_training_dataset(request.user),
        },
        status=status,
    )


def _detail_context(request: HttpRequest, dataset: TrainingDataset) -> dict[str, Any]:
    context: dict[str, Any] = {
        "dataset": dataset,
        "run": dataset.job_run,
        "percent": progress_percent(dataset.job_run),
        "can_read_rows": can_read_training_dataset_rows(request.user, dataset),
        "feature_columns": set(dataset.feature_columns),
    }
    if dataset.feature_service:
        service = (
            CatalogObject.objects.filter(
                project__name=dataset.project, kind=CatalogObject.Kind.FEATURE_SERVICE, name=dataset.feature_service
            )
            .select_related("project")
            .first()
        )
        context["service"] = service
        if service is not None:
            current = contract_for_service(service)
            context["current_hash"] = current.hash
            if current.hash != dataset.contract_hash:
                built = contract_for_vector(
                    [(e["feature_view"], e.get("view_alias", ""), e["feature"], e["dtype"]) for e in dataset.contract]
                )
                context["contract_changes"] = contract_diff(built, current)
    return context


@login_required
@domain_errors_as_http
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A dataset: contract hash, schema with null rates, first rows (if you may read them), downloads."""
    dataset = training_dataset_get(user=request.user, pk=pk)
    return render(request, "jobs/dataset_detail.html", _detail_context(request, dataset))


@login_required
@domain_errors_as_http
def dataset_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The build progress partial polled by the dataset page; the page reloads once the job is done."""
    dataset = training_dataset_get(user=request.user, pk=pk)
    response = render(request, "jobs/partials/_dataset_progress.html", _detail_context(request, dataset))
    if dataset.job_run.is_terminal:
        response["HX-Refresh"] = "true"
    return response


@login_required
def dataset_download(request: HttpRequest, pk: int, fmt: str) -> FileResponse:
    """One of the dataset's files (parquet, csv, contract), for those who may read its rows."""
    try:
        dataset = training_dataset_get(user=request.user, pk=pk)
        opened = training_dataset_open(actor=request.user, dataset=dataset, fmt=fmt)
    except NotPermitted:
        raise PermissionDenied from None
    except (ObjectNotFound, PortalError) as exc:
        raise Http404(str(exc)) from None
    response = FileResponse(
        opened.handle, as_attachment=True, filename=opened.filename, content_type=opened.content_type
    )
    if opened.size is not None:
        response["Content-Length"] = str(opened.size)
    return response
