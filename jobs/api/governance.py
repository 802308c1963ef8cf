"""POST /api/v1/change-requests/{id}/apply/: start the apply job of an approved change request (operators)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.governance import ChangeRequestActionApi
from catalog.models import ApiToken, ChangeRequest
from jobs.api.serializers import JobRunOutputSerializer
from jobs.services.apply import change_request_apply_start, change_request_auto_apply


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
