"""The model contract of a feature service: read it (any version), verify a pinned hash against it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.exceptions import InvalidFilter
from catalog.api.views import READERS, int_param, object_or_404
from catalog.contracts import (
    CONTRACT_FORMAT,
    contract_entries_from_json,
    contract_for_service,
    contract_history,
    contract_verify,
    pinned_models,
)
from catalog.exceptions import InvalidInput
from catalog.models import CatalogObject

EXAMPLE_HASH = "3f1c9a7e0b5d4c2a8e6f1b3d5c7a9e0f2b4d6c8a0e1f3b5d7c9a1e3f5b7d9c0a"


class ContractEntrySerializer(serializers.Serializer[dict[str, Any]]):
    """Position `index` of the contract."""

    index = serializers.IntegerField(min_value=0)
    feature_view = serializers.CharField(help_text="The feature view's real name (aliases resolved).")
    view_alias = serializers.CharField(allow_blank=True, help_text="The projection's alias, empty when none.")
    feature = serializers.CharField()
    dtype = serializers.CharField(help_text="Feast's type name (Float32, Int64, Array(String), ...).")
    reference = serializers.CharField(help_text="`<alias or view>:<feature>`, as Feast serves it.")
    column = serializers.CharField(help_text="`<alias or view>__<feature>`: the training column and online key.")


class ContractVersionSerializer(serializers.Serializer[dict[str, Any]]):
    """The contract hash of one recorded version of the service."""

    version = serializers.IntegerField()
    recorded_at = serializers.DateTimeField()
    change = serializers.CharField()
    hash = serializers.CharField(allow_null=True, help_text="Null for a removal.")


class PinnedModelSerializer(serializers.Serializer[dict[str, Any]]):
    """A model registered against the service and whether its pinned hash is the current contract."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.CharField()
    contract_hash = serializers.CharField(allow_blank=True)
    matches = serializers.BooleanField(allow_null=True, help_text="Null: the model pins no contract.")


class ContractSerializer(serializers.Serializer[dict[str, Any]]):
    """A feature service's model contract."""

    project = serializers.CharField()
    service = serializers.CharField()
    version = serializers.IntegerField(help_text="The service's catalog version this contract belongs to.")
    current = serializers.BooleanField(help_text="True when this is the service's current version.")
    format = serializers.IntegerField()
    hash = serializers.CharField(help_text="SHA-256 of the ordered entries: what a model pins.")
    entries = ContractEntrySerializer(many=True)
    history = ContractVersionSerializer(many=True)
    pinned_models = PinnedModelSerializer(many=True)


class ContractVerifyInputSerializer(serializers.Serializer[dict[str, Any]]):
    """The hash a model pinned (and, optionally, the entries it was trained with)."""

    hash = serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text="The pinned contract hash (64 hex characters).")
    entries = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=5000,
        help_text="The pinned entries `[{feature_view, view_alias, feature, dtype}, ...]` in order: used for the "
        "diff when the hash is not a recorded version of this service.",
    )


class ContractDiffSerializer(serializers.Serializer[dict[str, Any]]):
    """One difference between the pinned contract and the current one."""

    change = serializers.ChoiceField(choices=["moved", "added", "removed", "dtype_changed"])
    reference = serializers.CharField()
    index = serializers.IntegerField(required=False)
    from_index = serializers.IntegerField(required=False)
    to_index = serializers.IntegerField(required=False)
    dtype = serializers.CharField(required=False)
    before = serializers.CharField(required=False)
    after = serializers.CharField(required=False)


class ContractVerificationSerializer(serializers.Serializer[dict[str, Any]]):
    """`match`, or `mismatch` with what differs (and the current entries to rebuild the vector from)."""

    project = serializers.CharField()
    service = serializers.CharField()
    result = serializers.ChoiceField(choices=["match", "mismatch"])
    hash = serializers.CharField(help_text="The hash that was sent.")
    current_hash = serializers.CharField()
    version = serializers.IntegerField(help_text="The service's current catalog version.")
    known_version = serializers.IntegerField(
        required=False, allow_null=True, help_text="Mismatch: the newest version whose contract had this hash."
    )
    diff = ContractDiffSerializer(many=True, required=False)
    current = ContractEntrySerializer(many=True, required=False)


def _service(request: Request, project: str, name: str) -> CatalogObject:
    return object_or_404(request, project, CatalogObject.Kind.FEATURE_SERVICE, name)


CONTRACT_EXAMPLE = OpenApiExample(
    "attrition_model_v1",
    value={
        "project": "employee_attrition",
        "service": "attrition_model_v1",
        "version": 1,
        "current": True,
        "format": CONTRACT_FORMAT,
        "hash": EXAMPLE_HASH,
        "entries": [
            {
                "index": 0,
                "feature_view": "employee_features",
                "view_alias": "",
                "feature": "tenure",
                "dtype": "Float32",
                "reference": "employee_features:tenure",
                "column": "employee_features__tenure",
            }
        ],
        "history": [{"version": 1, "recorded_at": "2026-11-20T00:00:00Z", "change": "added", "hash": EXAMPLE_HASH}],
        "pinned_models": [
            {"id": 1, "name": "churn-xgb", "version": "3", "contract_hash": EXAMPLE_HASH, "matches": True}
        ],
    },
    response_only=True,
)


class ServiceContractApi(APIView):
    """The model contract of a feature service: its ordered entries and their hash.

    `?version=N` gives the contract of a recorded version (its history), otherwise the current one.
    """

    permission_classes = READERS

    @extend_schema(
        tags=["catalog"],
        summary="A feature service's model contract",
        description=(
            "The ordered list `{index, feature_view, view_alias, feature, dtype}` a model reads, from the registry's "
            "declared projections (aliases and sub-selections resolved), with its SHA-256 `hash`, the hash of every "
            "recorded version, and the registered models with whether their pinned hash is still current. "
            "Feast 0.67 returns online features in string-hash order: build the vector by `entries` (`column` is the "
            "key of Feast's online response with `full_feature_names=True`)."
        ),
        parameters=[
            OpenApiParameter("version", OpenApiTypes.INT, description="A recorded version (default: current).")
        ],
        responses={200: ContractSerializer},
        examples=[CONTRACT_EXAMPLE],
    )
    def get(self, request: Request, project: str, name: str) -> Response:
        service = _service(request, project, name)
        version = int_param(request, "version", required=False)
        history = contract_history(service)
        current = contract_for_service(service)
        contract = current
        if version is not None and version != service.version:
            recorded = next((v for v in history if v.version == version), None)
            if recorded is None:
                raise NotFound(f"{name} has no version {version}.")
            if recorded.contract is None:
                raise InvalidFilter(
                    {"version": [f"version {version} records the service's removal: it has no contract"]}
                )
            contract = recorded.contract
        body = {
            "project": project,
            "service": name,
            "version": version if version is not None else service.version,
            "current": version is None or version == service.version,
            **contract.as_dict(),
            "history": [
                {
                    "version": v.version,
                    "recorded_at": v.recorded_at,
                    "change": v.change,
                    "hash": v.contract.hash if v.contract else None,
                }
                for v in history
            ],
            "pinned_models": [
                {
                    "id": p.consumer.pk,
                    "name": p.consumer.name,
                    "version": p.consumer.version,
                    "contract_hash": p.consumer.contract_hash,
                    "matches": p.matches,
                }
                for p in pinned_models(service, current)
            ],
        }
        return Response(ContractSerializer(body).data)


class ServiceContractVerifyApi(APIView):
    """Is a pinned contract hash still the service's contract? `match`, or `mismatch` with the diff."""

    permission_classes = READERS
    required_scopes = {"POST": "read"}  # a read: nothing changes

    @extend_schema(
        tags=["catalog"],
        summary="Verify a pinned contract hash",
        description=(
            "Serving calls this before building a model's vector: `match` when the hash is the service's current "
            "contract; otherwise `mismatch` with the `diff` (moved, added, removed, dtype_changed per feature) "
            "against the pinned contract, found among the service's recorded versions (`known_version`) or taken "
            "from the `entries` sent, and the `current` entries. Answers 200 either way."
        ),
        request=ContractVerifyInputSerializer,
        responses={200: ContractVerificationSerializer},
        examples=[
            OpenApiExample("verify", value={"hash": EXAMPLE_HASH}, request_only=True),
            OpenApiExample(
                "match",
                value={
                    "project": "employee_attrition",
                    "service": "attrition_model_v1",
                    "result": "match",
                    "hash": EXAMPLE_HASH,
                    "current_hash": EXAMPLE_HASH,
                    "version": 1,
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, project: str, name: str) -> Response:
        service = _service(request, project, name)
        data = ContractVerifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        entries = None
        if v.get("entries") is not None:
            try:
                entries = contract_entries_from_json(v["entries"])
            except (TypeError, ValueError) as exc:
                raise InvalidInput(str(exc), {"entries": [str(exc)]}) from None
        verification = contract_verify(service=service, given_hash=v["hash"], entries=entries)
        body = {"project": project, "service": name, **verification.as_dict()}
        return Response(ContractVerificationSerializer(body).data)
