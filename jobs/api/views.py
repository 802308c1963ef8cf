"""Jobs API: list/detail of job runs, start a job (POST /jobs/), online preview, a view's ledger."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.filters import SelectorFilterBackend
from catalog.exceptions import InvalidInput
from jobs.api.serializers import (
    JobRunDetailOutputSerializer,
    JobRunOutputSerializer,
    JobStartInputSerializer,
    MaterializationRecordOutputSerializer,
    OnlinePreviewInputSerializer,
    TrainingDatasetDetailOutputSerializer,
    TrainingDatasetInputSerializer,
    TrainingDatasetOutputSerializer,
)
from jobs.filters import JobRunFilter
from jobs.kinds import JOB_KINDS
from jobs.models import JobRun, TrainingDataset
from jobs.selectors import job_run_get, job_run_list, training_dataset_get, training_dataset_list, view_ledger
from jobs.services.preview import (
    feature_server_curl,
    job_run_wait,
    preview_wait_seconds,
)
from jobs.services.training import training_dataset_open
from jobs.services.training_input import check_upload_size


def _is_async(request: Request) -> bool:
    return str(request.query_params.get("async", "")).lower() in ("1", "true", "yes")


@extend_schema_view(
    get=extend_schema(
        tags=["jobs"],
        summary="List job runs",
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=JobRun.Kind.values),
            OpenApiParameter("status", OpenApiTypes.STR, enum=JobRun.Status.values),
        ],
    ),
    post=extend_schema(
        tags=["jobs"],
        summary="Start a job (materialize, preview, skew, stats, sync, training_dataset)",
        request=JobStartInputSerializer,
        responses={202: JobRunOutputSerializer},
    ),
)
class JobListApi(generics.ListAPIView[JobRun]):
    """GET: job runs (newest first; `?kind=`, `status`, `project`, `started_by`, `trigger`, `since`, `until`). POST: start a job.

    POST bodies: `{"kind": "materialize", "project": "p", "views": ["v"], "mode": "incremental"}`,
    or `"mode": "range"` with `start`/`end`; `{"kind": "preview", "project": ..., "feature_service"
    | "features": ..., "entities": {...}}`; `{"kind": "skew", "project": ..., "view": ..., "sample": 100}`;
    `{"kind": "stats", "project": ..., "view": ..., "start"?, "end"?}`;
    `{"kind": "sync", "project": ...}`; `{"kind": "training_dataset", "project": ..., "feature_service" |
    "features": ..., "entity_timestamps" | "entities": ...}` (or multipart with `entity_file`). Answers 202 + the job.
    """

    serializer_class = JobRunOutputSerializer
    filter_backends = [SelectorFilterBackend]
    filterset_class = JobRunFilter  # applied by the selector, as on the jobs page
    ordering = ["-created_at"]
    required_scopes = {"POST": "operate"}
    parser_classes = [JSONParser, MultiPartParser]  # multipart: a training dataset's entity file

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        refuse_oversized_upload(request)  # before authentication: a session's CSRF check would parse the body
        super().initial(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[JobRun]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return JobRun.objects.none()
        return job_run_list(user=self.request.user, params=self.request.query_params)

    def post(self, request: Request) -> Response:
        data = JobStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        run = JOB_KINDS[v["kind"]].start_from_input(actor=request.user, trigger="api", data=v)
        run.refresh_from_db()  # enqueueing happened on commit; it may have failed (broker down)
        return Response(JobRunOutputSerializer(run, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class JobDetailApi(APIView):
    """GET one job run, with its log and (materializations) ledger rows."""

    @extend_schema(tags=["jobs"], summary="A job run, with its log", responses={200: JobRunDetailOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        run = job_run_get(user=request.user, pk=pk)
        return Response(JobRunDetailOutputSerializer(run, context={"request": request}).data)


class OnlinePreviewApi(APIView):
    """POST the Feast feature-server body; 200 with values in canonical order, or 202 + job (`?async=true`).

    The worker reads the online store; this view waits on the JobRun row for a few seconds.
    """

    required_scopes = {"POST": "read"}

    @extend_schema(
        tags=["jobs"],
        summary="Preview online values (Feast feature-server body)",
        request=OnlinePreviewInputSerializer,
        parameters=[OpenApiParameter("async", OpenApiTypes.BOOL, description="answer 202 with the job at once")],
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, project: str) -> Response:
        data = OnlinePreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        preview_kind = JOB_KINDS[JobRun.Kind.PREVIEW]
        run = preview_kind.start_from_input(actor=request.user, trigger="api", data={**v, "project": project})
        curl = feature_server_curl(params=run.params)
        if not _is_async(request):
            run = job_run_wait(run=run, timeout=preview_wait_seconds())
        body = {"job": JobRunOutputSerializer(run, context={"request": request}).data, "feature_server_curl": curl}
        if run.status == JobRun.Status.SUCCEEDED:
            return Response({**run.result, **body}, status=status.HTTP_200_OK)
        if run.status == JobRun.Status.FAILED:
            return Response(
                {"error": {"status": 503, "code": "unavailable", "message": run.error, "details": {"job": run.pk}}},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ViewLedgerApi(APIView):
    """GET a feature view's materialization ledger: intervals, gaps, last success, runs, freshness."""

    @extend_schema(
        tags=["jobs"], summary="A feature view's materialization ledger", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request, project: str, view: str) -> Response:
        ledger = view_ledger(user=request.user, project=project, view=view)
        return Response(
            {
                "project": project,
                "view": view,
                "feast_state": ledger.view.feast_state,
                "freshness": ledger.freshness.as_dict(),
                "failing": ledger.failing,
                "intervals": [{"start": i.start, "end": i.end} for i in ledger.intervals],
                "gaps": [{"start": g.start, "end": g.end} for g in ledger.gaps],
                "last_success": MaterializationRecordOutputSerializer(ledger.last_success).data
                if ledger.last_success
                else None,
                "runs": MaterializationRecordOutputSerializer(ledger.records, many=True).data,
            }
        )


# --- Training datasets ------------------------------------------------------------------------------------

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and the other form fields around an entity file


def refuse_oversized_upload(request: Request) -> None:
    """A multipart body whose Content-Length exceeds the entity-file limit is refused (413) unread."""
    if request.method != "POST" or not request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length > MULTIPART_OVERHEAD:
        check_upload_size(length - MULTIPART_OVERHEAD)


@extend_schema_view(
    get=extend_schema(
        tags=["jobs"],
        summary="List training datasets",
        description="Newest first; `?project=`, `?feature_service=`, `?status=` (building, ready, failed).",
        parameters=[
            OpenApiParameter("project", OpenApiTypes.STR),
            OpenApiParameter("feature_service", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR, enum=TrainingDataset.Status.values),
        ],
    ),
    post=extend_schema(
        tags=["jobs"],
        summary="Build a training dataset",
        description=(
            "Queues a `training_dataset` job (proposers and above; token scope `propose`). JSON, or multipart with "
            "`entity_file` (CSV or parquet: join keys + `event_timestamp`, other columns kept). Bad input is a 400 "
            "(413 for a file over PORTAL_TRAINING_MAX_UPLOAD_BYTES) and queues nothing. Answers 202 + the job; the "
            "job's result names the dataset."
        ),
        request={
            "application/json": TrainingDatasetInputSerializer,
            "multipart/form-data": TrainingDatasetInputSerializer,
        },
        responses={202: JobRunOutputSerializer},
    ),
)
class TrainingDatasetListApi(generics.ListAPIView[TrainingDataset]):
    """GET: training datasets. POST: build one (the same as POST /jobs/ with kind training_dataset)."""

    serializer_class = TrainingDatasetOutputSerializer
    ordering = ["-created_at"]
    ordering_fields = ["created_at"]
    required_scopes = {"POST": "propose"}
    parser_classes = [JSONParser, MultiPartParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        refuse_oversized_upload(request)
        super().initial(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[TrainingDataset]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return TrainingDataset.objects.none()
        status_ = self.request.query_params.get("status") or None
        if status_ and status_ not in TrainingDataset.Status.values:
            raise InvalidInput(
                f"unknown status {status_}", {"status": [f"one of {', '.join(TrainingDataset.Status.values)}"]}
            )
        return training_dataset_list(
            user=self.request.user,
            project=self.request.query_params.get("project") or None,
            feature_service=self.request.query_params.get("feature_service") or None,
            status=status_,
        )

    def post(self, request: Request) -> Response:
        data = TrainingDatasetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset_kind = JOB_KINDS[JobRun.Kind.TRAINING_DATASET]
        run = dataset_kind.start_from_input(actor=request.user, trigger="api", data=data.validated_data)
        run.refresh_from_db()
        return Response(JobRunOutputSerializer(run, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class TrainingDatasetDetailApi(APIView):
    """GET a training dataset: contract, schema with null rates, and the first rows if you may read them."""

    @extend_schema(
        tags=["jobs"],
        summary="A training dataset",
        description=(
            "Metadata, the contract the feature columns follow, the schema with null rates, and `preview` (the first "
            "rows): null unless you created the dataset, operate, or belong to the team owning the service."
        ),
        responses={200: TrainingDatasetDetailOutputSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        from jobs.permissions import can_read_training_dataset_rows

        dataset = training_dataset_get(user=request.user, pk=pk)
        context = {"can_read_rows": can_read_training_dataset_rows(request.user, dataset)}
        return Response(TrainingDatasetDetailOutputSerializer(dataset, context=context).data)


class TrainingDatasetDownloadApi(APIView):
    """GET one of a dataset's files (`?file=parquet|csv|contract`), permission-checked and audited."""

    @extend_schema(
        tags=["jobs"],
        summary="Download a training dataset",
        description=(
            "`?file=parquet` (default), `csv` (small sets only) or `contract` (contract.json). Only the dataset's "
            "creator, operators and members of the team owning the service may download (403 otherwise)."
        ),
        parameters=[OpenApiParameter("file", OpenApiTypes.STR, enum=["parquet", "csv", "contract"])],
        responses={
            (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        dataset = training_dataset_get(user=request.user, pk=pk)
        opened = training_dataset_open(
            actor=request.user, dataset=dataset, fmt=request.query_params.get("file") or "parquet"
        )
        response = FileResponse(
            opened.handle, as_attachment=True, filename=opened.filename, content_type=opened.content_type
        )
        if opened.size is not None:
            response["Content-Length"] = str(opened.size)
        return response
