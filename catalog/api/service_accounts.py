"""Service accounts over the API (admins): users for CI, holding ordinary API tokens.

GET/POST /service-accounts/, DELETE /service-accounts/{name}/ (deactivate: every token revoked),
POST /service-accounts/{name}/tokens/ (another token), DELETE /service-accounts/{name}/tokens/{id}/ (revoke one).
The rules live in catalog.services.service_accounts.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors
from catalog.api.permissions import TokenHasScope
from catalog.api.serializers import ApiTokenCreatedSerializer, ApiTokenSerializer
from catalog.exceptions import NotPermitted
from catalog.models import ApiToken
from catalog.permissions import ROLES, has_role
from catalog.services import service_accounts as accounts
from catalog.services.tokens import api_token_revoke

WRITE = ApiToken.Scope.OPERATE  # an admin's token needs `operate` to manage accounts (as for teams)


class ServiceAccountSerializer(serializers.Serializer[Any]):
    """A service account: its role, teams and tokens (never their secrets)."""

    name = serializers.CharField(source="username")
    role = serializers.SerializerMethodField()
    teams = serializers.SerializerMethodField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField(source="date_joined")
    tokens = serializers.SerializerMethodField()

    def get_role(self, obj: Any) -> str | None:
        held = {g.name for g in obj.groups.all()}
        return next((r for r in reversed(ROLES) if r in held), None)

    def get_teams(self, obj: Any) -> list[str]:
        return sorted(t.name for t in obj.teams.all())

    @extend_schema_field(ApiTokenSerializer(many=True))
    def get_tokens(self, obj: Any) -> list[dict[str, Any]]:
        tokens = sorted(obj.api_tokens.all(), key=lambda t: (t.created_at, t.pk), reverse=True)
        return [dict(ApiTokenSerializer(t).data) for t in tokens]


class ServiceAccountInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, help_text="The account's username, e.g. `ci-fraud-features`.")
    role = serializers.ChoiceField(
        choices=list(accounts.ROLES), help_text="proposer to plan; operator to apply on merge too."
    )
    teams = serializers.ListField(child=serializers.CharField(max_length=255), required=False, default=list)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices),
        min_length=1,
        help_text="Of its first token: read, propose, operate (never approve: a 400).",
    )
    expires_in_days = serializers.IntegerField(min_value=1, max_value=366, required=False, allow_null=True)


class ServiceAccountTokenInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices),
        min_length=1,
        help_text="read, propose, operate (never approve: a 400).",
    )
    expires_in_days = serializers.IntegerField(min_value=1, max_value=366, required=False, allow_null=True)


class ServiceAccountCreatedSerializer(ServiceAccountSerializer):
    token = ApiTokenCreatedSerializer(help_text="The first token; its secret `token` is shown this once.")


def _admin(request: Request) -> None:
    if not has_role(request.user, "admin"):
        raise NotPermitted("Managing service accounts needs the admin role.")


def _account(request: Request, name: str) -> Any:
    _admin(request)
    return get_object_or_404(selectors.service_account_list(user=request.user), username=name)


CREATE_EXAMPLE = OpenApiExample(
    "A CI account that plans and applies",
    value={"name": "ci-people-features", "role": "operator", "teams": [], "scopes": ["read", "propose", "operate"]},
    request_only=True,
)


class ServiceAccountListApi(generics.ListAPIView[Any]):
    """Service accounts (admins). `POST` creates one with its first token, shown once."""

    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"POST": WRITE}
    serializer_class = ServiceAccountSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return selectors.service_account_list(user=None)
        _admin(self.request)
        return selectors.service_account_list(user=self.request.user)

    @extend_schema(tags=["tokens"], summary="List service accounts (admins)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["tokens"],
        summary="Create a service account and its first token (admins)",
        description="A user for a machine: one role (viewer, proposer, operator), optional owner teams, no password "
        "(it acts only through its tokens). Its tokens never take the `approve` scope. Audited as "
        "`service_account.created` and `api_token.created`; its own actions are attributed to it.",
        request=ServiceAccountInputSerializer,
        responses={201: ServiceAccountCreatedSerializer},
        examples=[CREATE_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        _admin(request)
        data = ServiceAccountInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        account, token, raw = accounts.service_account_create(
            actor=request.user,
            name=v["name"],
            role=v["role"],
            teams=v["teams"],
            scopes=v["scopes"],
            expires_in_days=v.get("expires_in_days"),
        )
        account = selectors.service_account_list(user=request.user).get(pk=account.pk)
        body = dict(ServiceAccountSerializer(account).data)
        body["token"] = {**ApiTokenSerializer(token).data, "token": raw}
        return Response(body, status=status.HTTP_201_CREATED)


class ServiceAccountDetailApi(APIView):
    """One service account; `DELETE` deactivates it and revokes every token it holds (admins)."""

    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"DELETE": WRITE}

    @extend_schema(tags=["tokens"], summary="Get a service account (admins)", responses=ServiceAccountSerializer)
    def get(self, request: Request, name: str) -> Response:
        return Response(ServiceAccountSerializer(_account(request, name)).data)

    @extend_schema(
        tags=["tokens"], summary="Deactivate a service account (admins)", responses={200: ServiceAccountSerializer}
    )
    def delete(self, request: Request, name: str) -> Response:
        account = accounts.service_account_deactivate(actor=request.user, account=_account(request, name))
        return Response(ServiceAccountSerializer(_account(request, account.username)).data)


class ServiceAccountTokenListApi(APIView):
    """`POST`: another token for a service account (rotate: create the new one, then revoke the old)."""

    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"POST": WRITE}

    @extend_schema(
        tags=["tokens"],
        summary="Create a token for a service account (admins)",
        request=ServiceAccountTokenInputSerializer,
        responses={201: ApiTokenCreatedSerializer},
    )
    def post(self, request: Request, name: str) -> Response:
        account = _account(request, name)
        data = ServiceAccountTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        token, raw = accounts.service_account_token_create(
            actor=request.user,
            account=account,
            name=v["name"],
            scopes=v["scopes"],
            expires_in_days=v.get("expires_in_days"),
        )
        return Response({**ApiTokenSerializer(token).data, "token": raw}, status=status.HTTP_201_CREATED)


class ServiceAccountTokenDetailApi(APIView):
    """`DELETE`: revoke one of a service account's tokens (and the tokens made with it)."""

    permission_classes = [IsAuthenticated, TokenHasScope]
    required_scopes = {"DELETE": WRITE}

    @extend_schema(tags=["tokens"], summary="Revoke a service account's token (admins)", responses={204: None})
    def delete(self, request: Request, name: str, pk: int) -> Response:
        account = _account(request, name)
        api_token_revoke(actor=request.user, token=get_object_or_404(ApiToken.objects.filter(user=account), pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
