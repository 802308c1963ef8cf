"""Change requests, teams and project governance settings over the API (thin: the services hold the rules).

POST /change-requests/ takes multipart (project, title, description, mode, submit, archive) or JSON
(project, title, description, edits, submit). Actions: POST /change-requests/{id}/submit|approve|reject|
withdraw|comment|override|revise/. The apply action lives with the jobs API (it starts a job).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors
from catalog.api.filters import SelectorFilterBackend
from catalog.api.permissions import CatalogReader, TokenHasScope
from catalog.edits import EDIT_SCHEMAS
from catalog.exceptions import InvalidInput, NotPermitted, ObjectNotFound
from catalog.filters import ChangeRequestFilter
from catalog.models import ApiToken, ChangeRequest, Project, Team, TeamAlias
from catalog.permissions import has_role
from catalog.services import change_requests as crs
from catalog.services.audit import audit_record

READERS = [IsAuthenticated, TokenHasScope, CatalogReader]


# --- Serializers ---------------------------------------------------------------------------------------------


class ChangeRequestSummarySerializer(serializers.ModelSerializer[ChangeRequest]):
    project = serializers.CharField(source="project.name")
    author = serializers.CharField(source="author.username")
    summary = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "project",
            "title",
            "status",
            "severity",
            "revision",
            "source",
            "mode",
            "author",
            "summary",
            "external_repo",
            "external_branch",
            "external_sha",
            "created_at",
            "updated_at",
            "url",
        ]
        extra_kwargs = {
            "external_repo": {"help_text": "The git repository CI proposed it from ('' when proposed otherwise)."},
            "external_branch": {"help_text": "The branch: CI runs on it revise this request while it is live."},
            "external_sha": {"help_text": "The commit its current revision was planned (or last re-checked) from."},
        }

    def get_summary(self, obj: ChangeRequest) -> dict[str, int]:
        return dict(obj.plan.get("summary", {}))

    def get_url(self, obj: ChangeRequest) -> str:
        return obj.get_absolute_url()


class ChangeRequestDetailSerializer(ChangeRequestSummarySerializer):
    plan = serializers.JSONField()
    approvals = serializers.SerializerMethodField()
    comments = serializers.SerializerMethodField()
    apply_job = serializers.SerializerMethodField()
    objects = serializers.SerializerMethodField()
    archive_sha256 = serializers.SerializerMethodField(
        help_text="SHA-256 of the uploaded archive the current revision was planned from (null for edits)."
    )

    class Meta(ChangeRequestSummarySerializer.Meta):
        fields = [
            *ChangeRequestSummarySerializer.Meta.fields,
            "description",
            "base_fingerprint",
            "archive_sha256",
            "planned_at",
            "submitted_at",
            "decided_at",
            "applied_at",
            "stale_reason",
            "apply_result",
            "apply_job",
            "approvals",
            "objects",
            "plan",
            "comments",
        ]

    def get_approvals(self, obj: ChangeRequest) -> dict[str, Any]:
        return crs.approval_status(obj)

    def get_archive_sha256(self, obj: ChangeRequest) -> str | None:
        archive = obj.proposal.get("archive") or {}
        return archive.get("sha256")

    def get_comments(self, obj: ChangeRequest) -> list[dict[str, Any]]:
        return [
            {"author": c.author.get_username(), "body": c.body, "created_at": c.created_at}
            for c in obj.comments.select_related("author")
        ]

    def get_apply_job(self, obj: ChangeRequest) -> dict[str, Any] | None:
        if not obj.apply_job_id:
            return None
        from django.urls import reverse

        return {"id": obj.apply_job_id, "url": reverse("jobs:job_detail", args=[obj.apply_job_id])}

    def get_objects(self, obj: ChangeRequest) -> list[dict[str, str]]:
        """The stored protos this request applies (names and content hashes; the protos stay server-side)."""
        return [
            {"kind": o["kind"], "name": o["name"], "action": action, "content_hash": o["content_hash"]}
            for action, key in (("upsert", "upserts"), ("delete", "deletes"))
            for o in obj.proposal.get(key, [])
        ]


EDITS_HELP = 'Edits, each `{"op": ..., ...}` with its op\'s fields (catalog/edits.py): ' + "; ".join(
    f"{op}: {', '.join(schema().fields)}" for op, schema in EDIT_SCHEMAS.items()
)


class ChangeRequestProposedSerializer(ChangeRequestDetailSerializer):
    """The request a propose created, or (with an external reference) revised or left unchanged."""

    outcome = serializers.ChoiceField(
        read_only=True,
        choices=["created", "revised", "unchanged"],
        help_text="created (201); with an external reference, revised (a new revision of the branch's live request) "
        "or unchanged (the same plan input as its current revision: no new revision, approvals stand) (200).",
    )

    class Meta(ChangeRequestDetailSerializer.Meta):
        fields = [*ChangeRequestDetailSerializer.Meta.fields, "outcome"]


REF_TEXT = r"^[^\s\x00-\x1f]+$"  # one token: no whitespace or control characters


class ChangeRequestCreateSerializer(serializers.Serializer[Any]):
    project = serializers.CharField(max_length=255)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=20000, required=False, allow_blank=True, default="")
    edits = serializers.ListField(child=serializers.DictField(), required=False, max_length=500, help_text=EDITS_HELP)
    archive = serializers.FileField(required=False, allow_empty_file=True)
    mode = serializers.ChoiceField(choices=ChangeRequest.Mode.choices, required=False)
    submit = serializers.BooleanField(required=False, default=False)
    external_repo = serializers.RegexField(
        REF_TEXT,
        max_length=255,
        required=False,
        help_text="With `external_branch`: the git repository CI proposes from (e.g. `acme/features`). The branch's "
        "live request (not applied or withdrawn) is revised instead of a new one being opened.",
    )
    external_branch = serializers.RegexField(
        REF_TEXT, max_length=255, required=False, help_text="The branch (with `external_repo`)."
    )
    external_sha = serializers.RegexField(
        r"^[0-9a-fA-F]{7,64}$", required=False, help_text="The commit (hex), recorded on the request."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("external_repo", "external_branch") if attrs.get(k)]
        if len(given) == 1 or (attrs.get("external_sha") and not given):
            raise ValidationError({"external_branch": ["external_repo and external_branch go together (sha optional)"]})
        return attrs


class ReviseSerializer(serializers.Serializer[Any]):
    edits = serializers.ListField(child=serializers.DictField(), required=False, max_length=500, help_text=EDITS_HELP)
    archive = serializers.FileField(required=False, allow_empty_file=True)
    mode = serializers.ChoiceField(choices=ChangeRequest.Mode.choices, required=False)


def _archive(request: Request, data: dict[str, Any]) -> tuple[bytes, str] | None:
    archive = data.get("archive")
    if archive is None:
        return None
    limit = settings.GOVERNANCE_UPLOAD_MAX_BYTES
    if archive.size > limit:
        raise InvalidInput(
            f"upload rejected: the archive is {archive.size:,} bytes; the limit is {limit:,}",
            {"archive": ["too large"]},
        )
    return archive.read(), archive.name or "upload"


def _guard_size(request: Request) -> None:
    """Refuse an oversized body before reading it (Content-Length), with a clear message."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.GOVERNANCE_UPLOAD_MAX_BYTES + 64 * 1024
    if length > limit:
        raise InvalidInput(
            f"upload rejected: the request is {length:,} bytes; archives may be at most "
            f"{settings.GOVERNANCE_UPLOAD_MAX_BYTES:,} bytes (GOVERNANCE_UPLOAD_MAX_BYTES)",
            {"archive": ["too large"]},
        )


def _get(request: Request, pk: int) -> ChangeRequest:
    cr = ChangeRequest.objects.select_related("project", "author").filter(pk=pk).first()
    if cr is None:
        raise NotFound(f"No change request CR-{pk}.")
    return cr


def proposed_response(pk: int, outcome: str) -> Response:
    """A propose's answer: the request with its outcome; 201 when created, else 200 (revised, unchanged)."""
    cr = ChangeRequest.objects.select_related("project", "author").get(pk=pk)
    code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    setattr(cr, "outcome", outcome)  # noqa: B010  (read by ChangeRequestProposedSerializer.outcome)
    return Response(ChangeRequestProposedSerializer(cr).data, status=code)


def _detail(cr: ChangeRequest, code: int = status.HTTP_200_OK) -> Response:
    cr = ChangeRequest.objects.select_related("project", "author").get(pk=cr.pk)
    return Response(ChangeRequestDetailSerializer(cr).data, status=code)


CI_EXAMPLE = OpenApiExample(
    "CI proposes a branch (multipart)",
    value={
        "project": "employee_attrition",
        "title": "acme/features@add-tenure-bucket",
        "archive": "(the repo folder, zipped)",
        "submit": True,
        "external_repo": "acme/features",
        "external_branch": "add-tenure-bucket",
        "external_sha": "3f2c1a9e0b7d",
    },
    request_only=True,
)

EDITS_EXAMPLE = OpenApiExample(
    "Retype a field (JSON)",
    value={
        "project": "employee_attrition",
        "title": "tenure becomes Float64",
        "edits": [{"op": "change_dtype", "view": "employee_features", "field": "tenure", "dtype": "Float64"}],
        "submit": True,
    },
    request_only=True,
)


# --- Change requests -------------------------------------------------------------------------------------------


class ChangeRequestListApi(generics.ListAPIView[ChangeRequest]):
    """Change requests, newest first; `POST` proposes one (proposer role, `propose` scope).

    Filters: `status` (or `open`), `project`, `severity`, `author`.
    """

    permission_classes = READERS
    required_scopes = {"POST": ApiToken.Scope.PROPOSE}
    serializer_class = ChangeRequestSummarySerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    filter_backends = [SelectorFilterBackend]
    filterset_class = ChangeRequestFilter  # applied by the selector, as on the list page
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[ChangeRequest]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return ChangeRequest.objects.none()
        params = self.request.query_params
        known = {*ChangeRequestFilter.base_filters, "cursor", "page_size", "format"}
        unknown = set(params) - known
        if unknown:
            raise ValidationError({k: ["unknown filter"] for k in sorted(unknown)})
        return selectors.change_request_list(user=self.request.user, params=params)

    # Its OpenAPI description is on the routed subclass, jobs.api.governance.ChangeRequestProposeApi.
    def post(self, request: Request) -> Response:
        _guard_size(request)
        data = ChangeRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        args = dict(data.validated_data)
        upload = _archive(request, args)
        edits = args.get("edits")
        if (upload is None) == (edits is None):
            raise InvalidInput("give either 'edits' (JSON) or an 'archive' (multipart)", {"edits": ["or archive"]})
        if upload is not None:
            return self.propose_upload(request, args, upload)
        return self.propose_now(request, args, edits=edits, upload=None)

    def propose_upload(self, request: Request, args: dict[str, Any], upload: tuple[bytes, str]) -> Response:
        """An archive: planned here, in the request. The routed view (jobs.api.governance.ChangeRequestProposeApi)
        hands it to a worker's plan job instead."""
        return self.propose_now(request, args, edits=None, upload=upload)

    def propose_now(
        self, request: Request, args: dict[str, Any], *, edits: Any, upload: tuple[bytes, str] | None
    ) -> Response:
        """Plan and store the proposal in this request (JSON edits: no parse, quick)."""
        common = {
            "actor": request.user,
            "project": args["project"],
            "title": args["title"],
            "description": args["description"],
            "edits": edits,
            "upload": upload,
            "submit": args["submit"],
        }
        if args.get("external_repo"):
            ref = crs.ExternalRef(args["external_repo"], args["external_branch"], args.get("external_sha", ""))
            cr, outcome = crs.change_request_propose_for_ref(**common, ref=ref, mode=args.get("mode"))
        else:
            cr, outcome = crs.change_request_create(**common, mode=args.get("mode") or "partial"), "created"
        return proposed_response(cr.pk, outcome)

    @extend_schema(tags=["change requests"], summary="List change requests")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ChangeRequestDetailApi(APIView):
    """One change request: state, classified diff, approvals still required, the apply's job and result."""

    permission_classes = READERS

    @extend_schema(tags=["change requests"], summary="Get a change request", responses=ChangeRequestDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return _detail(_get(request, pk))


_ACTION_INPUT = inline_serializer(
    "ChangeRequestActionInput",
    {
        "comment": serializers.CharField(required=False, help_text="approve (optional), reject (required)"),
        "revision": serializers.IntegerField(required=False, help_text="the revision you reviewed"),
        "body": serializers.CharField(required=False, help_text="comment"),
        "team": serializers.CharField(required=False, help_text="override"),
        "reason": serializers.CharField(required=False, help_text="override (at least 10 characters)"),
    },
)


class ChangeRequestActionApi(APIView):
    """submit, approve, reject, withdraw, comment, override (admin), revise (new edits/archive, or re-plan).

    approve and override are routed to jobs.api.governance.ChangeRequestDecisionApi: a decision that completes
    the approval of an auto-apply project's request also starts its apply (a jobs service), through `decided`.
    """

    permission_classes = READERS
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    ACTIONS: frozenset[str] = frozenset({"submit", "approve", "reject", "withdraw", "comment", "override", "revise"})
    DECISIONS = frozenset({"approve", "override"})  # served by the jobs app's subclass (see above)
    UPLOADS = frozenset({"revise"})  # served by jobs.api.governance.ChangeRequestReviseApi: an archive is a plan job
    SCOPES = {
        "approve": ApiToken.Scope.APPROVE,
        "reject": ApiToken.Scope.APPROVE,
        "override": ApiToken.Scope.APPROVE,
    }

    @property
    def required_scopes(self) -> dict[str, str]:
        action = self.kwargs.get("action", "")
        return {"POST": self.SCOPES.get(action, ApiToken.Scope.PROPOSE)}

    def decided(self, cr: ChangeRequest) -> ChangeRequest:
        """After an approval or override: what follows it (nothing here; the jobs app's subclass may apply)."""
        return cr

    def revise_upload(
        self, request: Request, cr: ChangeRequest, args: dict[str, Any], upload: tuple[bytes, str]
    ) -> Response:
        """A revise with an archive: planned here, in the request (the jobs app's subclass queues a plan job)."""
        return _detail(crs.change_request_revise(cr=cr, actor=request.user, upload=upload, mode=args.get("mode")))

    @extend_schema(
        tags=["change requests"],
        summary="Act on a change request",
        request=_ACTION_INPUT,
        responses=ChangeRequestDetailSerializer,
        parameters=[OpenApiParameter("action", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(ACTIONS))],
    )
    def post(self, request: Request, pk: int, action: str) -> Response:
        if action not in self.ACTIONS:
            raise NotFound(f"Unknown action {action!r}: one of {', '.join(sorted(self.ACTIONS))}.")
        cr = _get(request, pk)
        data: Any = request.data
        if not hasattr(data, "get"):  # a JSON body of `true` or `[...]`
            raise InvalidInput("the body must be a JSON object", {"body": ["an object"]})
        revision = data.get("revision")
        if revision is not None and not str(revision).isdigit():
            raise InvalidInput("'revision' must be a whole number", {"revision": ["invalid"]})
        revision = int(revision) if revision is not None else None
        if action in ("approve", "reject") and revision is None and crs.can_approve(request.user, cr):
            # the approver's decision is about the plan they read: never "whatever the latest revision is"
            raise InvalidInput(
                f"{action} needs the 'revision' you reviewed (the request is at revision {cr.revision})",
                {"revision": ["required"]},
            )
        if action == "submit":
            crs.change_request_submit(cr=cr, actor=request.user)
        elif action == "approve":
            cr = self.decided(
                crs.change_request_approve(
                    cr=cr, actor=request.user, comment=str(data.get("comment", "")), revision=revision
                )
            )
        elif action == "reject":
            crs.change_request_reject(
                cr=cr, actor=request.user, comment=str(data.get("comment", "")), revision=revision
            )
        elif action == "withdraw":
            crs.change_request_withdraw(cr=cr, actor=request.user)
        elif action == "comment":
            crs.change_request_comment(cr=cr, actor=request.user, body=str(data.get("body", "")))
            return _detail(cr, status.HTTP_201_CREATED)
        elif action == "override":
            cr = self.decided(
                crs.change_request_override(
                    cr=cr, actor=request.user, team=str(data.get("team", "")), reason=str(data.get("reason", ""))
                )
            )
        else:
            _guard_size(request)
            revise = ReviseSerializer(data=data)
            revise.is_valid(raise_exception=True)
            args = dict(revise.validated_data)
            upload = _archive(request, args)
            if upload is not None and args.get("edits") is not None:
                raise InvalidInput("give 'edits' or an 'archive', not both")
            if upload is not None:
                return self.revise_upload(request, cr, args, upload)
            cr = crs.change_request_revise(
                cr=cr, actor=request.user, edits=args.get("edits"), upload=upload, mode=args.get("mode")
            )
        return _detail(cr)


# --- Teams and project governance (admins) ----------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer[Team]):
    members = serializers.SlugRelatedField(
        many=True, slug_field="username", queryset=get_user_model().objects.all(), required=False
    )
    aliases = serializers.ListField(child=serializers.CharField(max_length=255), required=False)

    class Meta:
        model = Team
        fields = ["name", "description", "members", "aliases"]

    def to_representation(self, instance: Team) -> dict[str, Any]:
        return {
            "name": instance.name,
            "description": instance.description,
            "members": sorted(instance.members.values_list("username", flat=True)),
            "aliases": sorted(instance.aliases.values_list("alias", flat=True)),
        }


def _require_admin(request: Request) -> None:
    if not has_role(request.user, "admin"):
        raise NotPermitted("Managing teams and project governance needs the admin role.")


def _save_team(request: Request, team: Team | None) -> Team:
    _require_admin(request)
    data = TeamSerializer(team, data=request.data, partial=team is not None)
    data.is_valid(raise_exception=True)
    values = dict(data.validated_data)
    aliases = values.pop("aliases", None)
    members = values.pop("members", None)
    before = TeamSerializer(team).data if team else None
    with transaction.atomic():
        saved = team or Team(name=values["name"])
        for key in ("name", "description"):
            if key in values:
                setattr(saved, key, values[key])
        saved.save()
        if members is not None:
            saved.members.set(members)
        if aliases is not None:
            taken = TeamAlias.objects.filter(alias__in=aliases).exclude(team=saved).first()
            if taken is not None:
                raise InvalidInput(f"alias {taken.alias!r} already maps to team {taken.team}", {"aliases": ["taken"]})
            saved.aliases.exclude(alias__in=aliases).delete()
            for alias in aliases:
                TeamAlias.objects.get_or_create(alias=alias, team=saved)
        audit_record(
            actor=request.user,
            action="team.updated" if team else "team.created",
            obj=saved,
            before=before,
            after=TeamSerializer(saved).data,
        )
    return saved


class TeamListApi(generics.ListAPIView[Team]):
    """Owner teams (members and the owner strings that map to them). `POST` creates one (admins)."""

    permission_classes = READERS
    required_scopes = {"POST": ApiToken.Scope.OPERATE}
    serializer_class = TeamSerializer
    queryset = Team.objects.prefetch_related("members", "aliases").order_by("name")

    @extend_schema(
        tags=["teams"], summary="Create a team (admins)", request=TeamSerializer, responses={201: TeamSerializer}
    )
    def post(self, request: Request) -> Response:
        return Response(TeamSerializer(_save_team(request, None)).data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["teams"], summary="List teams")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class TeamDetailApi(APIView):
    """One team; `PATCH` changes its description, members (usernames) or aliases (admins)."""

    permission_classes = READERS
    required_scopes = {"PATCH": ApiToken.Scope.OPERATE}

    def _team(self, name: str) -> Team:
        team = Team.objects.filter(name=name).first()
        if team is None:
            raise ObjectNotFound(f"No team named {name!r}.")
        return team

    @extend_schema(tags=["teams"], summary="Get a team", responses=TeamSerializer)
    def get(self, request: Request, name: str) -> Response:
        return Response(TeamSerializer(self._team(name)).data)

    @extend_schema(tags=["teams"], summary="Change a team (admins)", request=TeamSerializer, responses=TeamSerializer)
    def patch(self, request: Request, name: str) -> Response:
        return Response(TeamSerializer(_save_team(request, self._team(name))).data)


class ProjectGovernanceSerializer(serializers.ModelSerializer[Project]):
    class Meta:
        model = Project
        fields = ["compatibility", "auto_apply", "breaking_approvals"]
        extra_kwargs = {"breaking_approvals": {"min_value": 1, "max_value": 10}}


class ProjectGovernanceApi(APIView):
    """A project's governance settings: compatibility mode (BACKWARD, FULL, NONE), auto-apply, approvals a
    breaking change needs (null: GOVERNANCE_BREAKING_APPROVALS). `PATCH`: admins."""

    permission_classes = READERS
    required_scopes = {"PATCH": ApiToken.Scope.OPERATE}

    def _project(self, name: str) -> Project:
        project = Project.objects.filter(name=name).first()
        if project is None:
            raise ObjectNotFound(f"No project named {name!r}.")
        return project

    @extend_schema(
        tags=["change requests"], summary="Get a project's governance settings", responses=ProjectGovernanceSerializer
    )
    def get(self, request: Request, project: str) -> Response:
        return Response(ProjectGovernanceSerializer(self._project(project)).data)

    @extend_schema(
        tags=["change requests"],
        summary="Change a project's governance settings (admins)",
        request=ProjectGovernanceSerializer,
        responses=ProjectGovernanceSerializer,
    )
    def patch(self, request: Request, project: str) -> Response:
        _require_admin(request)
        target = self._project(project)
        before = ProjectGovernanceSerializer(target).data
        data = ProjectGovernanceSerializer(target, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            data.save()
            audit_record(
                actor=request.user, action="project.governance_changed", obj=target, before=before, after=data.data
            )
        return Response(data.data)
