"""The upload forms' targets: a new change request, or a new revision, from an uploaded feature repo. Each queues
a plan job (jobs.services.planning) and opens its page, which shows the job's progress live and then leads to the
change request, or shows why nothing was proposed with a link back to the form."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from catalog.decorators import reader_required
from catalog.exceptions import NotPermitted, PortalError
from catalog.models import ChangeRequest
from catalog.views_governance import UPLOAD_FIELDS, change_request_new_page
from jobs.models import JobRun
from jobs.services.planning import change_request_plan_start


def plan_retry_url(run: JobRun) -> str:
    """Where a failed plan job's page sends the user to try again: the upload form with what they typed, or
    the change request's "upload a new version" form."""
    params = run.params or {}
    if params.get("change_request"):
        return reverse("catalog:change_request_detail", args=[params["change_request"]]) + "#revise-upload"
    values = {k: str(params.get(k) or "") for k in UPLOAD_FIELDS}
    return reverse("catalog:change_request_new") + "?" + urlencode({k: v for k, v in values.items() if v})


@reader_required
@require_POST
def change_request_upload(request: HttpRequest) -> HttpResponse:
    """The "Upload a feature repo" form: quick checks, then the plan job's page; a refusal re-renders the form
    with what was typed."""
    values = {k: request.POST.get(k, "") for k in UPLOAD_FIELDS}
    archive = request.FILES.get("archive")
    if archive is None:
        return change_request_new_page(
            request, values=values, error="Choose a .zip or .tar.gz of your feature definitions."
        )
    try:
        run = change_request_plan_start(
            actor=request.user,
            upload=(archive.read(), archive.name or "upload"),
            trigger="button",
            project=values["project"],
            title=values["title"],
            description=values["description"],
            mode=values["mode"] or "partial",
            submit=bool(request.POST.get("submit")),
        )
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from None
    except PortalError as exc:
        return change_request_new_page(request, values=values, error=str(exc))
    messages.success(request, f"Upload received: job #{run.pk} parses and plans it; this page follows its progress.")
    return redirect("jobs:job_detail", pk=run.pk)


@reader_required
@require_POST
def change_request_upload_revision(request: HttpRequest, pk: int) -> HttpResponse:
    """The change request page's "Upload a new version" form: quick checks, then the plan job's page."""
    cr = ChangeRequest.objects.select_related("project", "author").filter(pk=pk).first()
    if cr is None:
        raise Http404(f"No change request CR-{pk}.")
    archive = request.FILES.get("archive")
    try:
        if archive is None:
            raise PortalError("choose a .zip or .tar.gz of the new definitions")
        run = change_request_plan_start(
            actor=request.user,
            upload=(archive.read(), archive.name or "upload"),
            trigger="button",
            mode=request.POST.get("mode") or cr.mode,
            cr=cr,
        )
    except PortalError as exc:
        messages.error(request, f"Nothing was uploaded: {exc}")
        return redirect(cr.get_absolute_url() + "#revise-upload")
    messages.success(request, f"Upload received: job #{run.pk} parses and plans the new revision of CR-{cr.pk}.")
    return redirect("jobs:job_detail", pk=run.pk)
