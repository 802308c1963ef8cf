"""The change-request endpoints that start jobs: POST /api/v1/change-requests/ and .../revise/ with an archive
(a plan job parses and plans it), approve/override (may start an auto-apply), apply (operators)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.exceptions import error_body
from catalog.api.governance import (
    CI_EXAMPLE,
    EDITS_EXAMPLE,
    ChangeRequestActionApi,
    ChangeRequestCreateSerializer,
    ChangeRequestDetailSerializer,
    ChangeRequestListApi,
    ChangeRequestProposedSerializer,
    ReviseSerializer,
    proposed_response,
)
from catalog.exceptions import InvalidInput
from catalog.models import ApiToken, ChangeRequest
from catalog.services import change_requests as crs
from jobs.api.serializers import JobRunOutputSerializer
from jobs.models import JobRun
from jobs.services.apply import change_request_apply_start, change_request_auto_apply
from jobs.services.planning import PLAN_WAIT_MAX_SECONDS, change_request_plan_start, change_request_plan_wait

WAIT_PARAMETER = OpenApiParameter(
    "wait",
    OpenApiTypes.NUMBER,
    description=f"With an archive: wait up to this many seconds (at most {PLAN_WAIT_MAX_SECONDS:g}) for the plan "
    "job, and answer as a finished propose (201/200, or the job's error) if it finished by then. Default 0: answer "
    "202 with the job at once.",
)
PLAN_JOB_TEXT = (
    " An `archive` is parsed and planned by a worker's plan job: the answer is **202** with the job (`id`, `status`, "
    "`url`; `Location` names it). Poll `GET /api/v1/jobs/{id}/` until its status is `succeeded` (its `result` holds "
    "`change_request`, `revision`, `outcome` and `severity`) or `failed` (its `error` is the sandbox's or planner's "
    "message, `result.code` the error code, e.g. `unchanged`; no request or revision was stored). With `?wait=` "
    "the answer is the finished propose when the job finishes in time."
)


def _wait_seconds(request: Request) -> float:
    raw = request.query_params.get("wait", "") or "0"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise InvalidInput("'wait' must be a number of seconds", {"wait": ["a number of seconds"]})
    return seconds


def _plan_answer(request: Request, run: JobRun, *, finished: Callable[[dict[str, Any]], Response]) -> Response:
    """The answer to an upload: the finished propose (`finished(result)`) or the job's error when the plan job
    finished within `?wait=`, else 202 with the job and its URL in `Location`."""
    run = change_request_plan_wait(run=run, seconds=_wait_seconds(request))
    if run.status == JobRun.Status.SUCCEEDED:
        return finished(run.result)
    if run.status in JobRun.TERMINAL:
        code = int(run.result.get("status_code") or status.HTTP_400_BAD_REQUEST)
        body = error_body(code, str(run.result.get("code") or "invalid"), run.error, {"job": run.pk})
        return Response(body, status=code)
    body = JobRunOutputSerializer(run, context={"request": request}).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class ChangeRequestProposeApi(ChangeRequestListApi):
    """Change requests, newest first; `POST` proposes one (proposer role, `propose` scope). JSON `edits` are
    planned in the request (201); an `archive` is planned by a worker's plan job (202 + the job)."""

    @extend_schema(
        tags=["change requests"],
        summary="Propose a change (upload a feature repo, or JSON edits)",
        request={
            "application/json": ChangeRequestCreateSerializer,
            "multipart/form-data": ChangeRequestCreateSerializer,
        },
        parameters=[WAIT_PARAMETER],
        description=(
            "Multipart with an `archive` (a .zip/.tar.gz of the repo folder), or JSON `edits` (planned in the "
            "request: 201 with the request). With `external_repo` + `external_branch` (and `external_sha`), as CI "
            "sends them, the propose is idempotent per branch: the branch's live request gets a new revision "
            "(`outcome: revised`, 200), stays as it is when the archive is byte-identical to the one its current "
            "revision was planned from (`unchanged`, 200), or is opened (`created`, 201). An upload that matches the "
            "registry fails with code `unchanged` and stores nothing." + PLAN_JOB_TEXT
        ),
        responses={
            201: ChangeRequestProposedSerializer,
            200: ChangeRequestProposedSerializer,
            202: JobRunOutputSerializer,
        },
        examples=[EDITS_EXAMPLE, CI_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        return super().post(request)

    def propose_upload(self, request: Request, args: dict[str, Any], upload: tuple[bytes, str]) -> Response:
        external = None
        if args.get("external_repo"):
            external = crs.ExternalRef(args["external_repo"], args["external_branch"], args.get("external_sha", ""))
        run = change_request_plan_start(
            actor=request.user,
            upload=upload,
            trigger="api",
            project=args["project"],
            title=args["title"],
            description=args["description"],
            mode=args.get("mode"),
            submit=args["submit"],
            external=external,
        )
        return _plan_answer(
            request, run, finished=lambda result: proposed_response(result["change_request"], result["outcome"])
        )


class ChangeRequestReviseApi(ChangeRequestActionApi):
    """Revise a change request: new JSON `edits` or, with neither, a re-plan against today's registry (200 with
    the request); an `archive` is parsed and planned by a worker's plan job (202 + the job)."""

    ACTIONS = ChangeRequestActionApi.UPLOADS

    @extend_schema(
        tags=["change requests"],
        summary="Revise a change request (new edits, a new archive, or a re-plan)",
        request={"application/json": ReviseSerializer, "multipart/form-data": ReviseSerializer},
        parameters=[WAIT_PARAMETER],
        description="The revision goes up and earlier approvals stop counting." + PLAN_JOB_TEXT,
        responses={200: ChangeRequestDetailSerializer, 202: JobRunOutputSerializer},
    )
    def post(self, request: Request, pk: int, action: str) -> Response:
        return super().post(request, pk, action)

    def revise_upload(
        self, request: Request, cr: ChangeRequest, args: dict[str, Any], upload: tuple[bytes, str]
    ) -> Response:
        run = change_request_plan_start(actor=request.user, upload=upload, trigger="api", mode=args.get("mode"), cr=cr)
        return _plan_answer(
            request, run, finished=lambda result: proposed_response(result["change_request"], result["outcome"])
        )


class ChangeRequestDecisionApi(ChangeRequestActionApi):
    """Approve a change request (the `revision` you reviewed is required; `approve` scope), or, as an admin,
    override a required team's approval (`team`, `reason`). Once every rule is met the request is approved;
    in a project with auto-apply its apply starts at once, and the answer's status is `applying`."""

    # The catalog's action endpoint, then, explicitly, the jobs service that starts an auto-apply.

    ACTIONS = ChangeRequestActionApi.DECISIONS

    def decided(self, cr: ChangeRequest) -> ChangeRequest:
        return change_request_auto_apply(cr)


class ChangeRequestApplyApi(APIView):
    """Queue the apply of an approved change request: the worker applies exactly its stored protos.

    Answers 202 with the job; poll `GET /api/v1/jobs/{id}/` or the change request. 409 when the request
    is not approved (the message says what is missing); 403 below the operator role.
    """

    required_scopes = {"POST": ApiToken.Scope.OPERATE}

    @extend_schema(
        tags=["change requests"],
        summary="Apply an approved change request",
        request=None,
        responses={202: JobRunOutputSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        cr = ChangeRequest.objects.filter(pk=pk).first()
        if cr is None:
            raise NotFound(f"No change request CR-{pk}.")
        run = change_request_apply_start(cr=cr, actor=request.user, trigger="api")
        return Response(JobRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)
