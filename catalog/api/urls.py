"""Catalog API endpoints (mounted under /api/v1/)."""

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView

import catalog.urlnames  # noqa: F401  (registers the `name` converter: any Feast name, `/` included)
from catalog.api import contracts, docs, governance, service_accounts, views
from catalog.models import CatalogObject

app_name = "catalog_api"

Kind = CatalogObject.Kind
KINDS = [
    (Kind.ENTITY, "entities", "entities", "entity"),
    (Kind.DATA_SOURCE, "data-sources", "data sources", "data source"),
    (Kind.FEATURE_VIEW, "feature-views", "feature views", "feature view"),
    (Kind.FEATURE_SERVICE, "feature-services", "feature services", "feature service"),
    (Kind.SAVED_DATASET, "saved-datasets", "saved datasets", "saved dataset"),
    (Kind.VALIDATION_REFERENCE, "validation-references", "validation references", "validation reference"),
    (Kind.PERMISSION, "permissions", "permissions", "permission"),
]

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.api_docs, name="docs"),
    path("me/", views.MeApi.as_view(), name="me"),
    path("search/", views.SearchApi.as_view(), name="search"),
    path("audit/", views.AuditEventListApi.as_view(), name="audit_list"),
    # GET and POST change-requests/ and the revise action: jobs.api.governance (an uploaded archive is a plan job)
    path("change-requests/<int:pk>/", governance.ChangeRequestDetailApi.as_view(), name="change_request_detail"),
    *[
        path(
            f"change-requests/<int:pk>/{action}/",
            governance.ChangeRequestActionApi.as_view(),
            {"action": action},
            name=f"change_request_{action}",
        )
        for action in sorted(
            governance.ChangeRequestActionApi.ACTIONS
            - governance.ChangeRequestActionApi.DECISIONS
            - governance.ChangeRequestActionApi.UPLOADS
        )
    ],
    path("teams/", governance.TeamListApi.as_view(), name="team_list"),
    path("teams/<name:name>/", governance.TeamDetailApi.as_view(), name="team_detail"),
    path("projects/<name:project>/governance/", governance.ProjectGovernanceApi.as_view(), name="project_governance"),
    path("service-accounts/", service_accounts.ServiceAccountListApi.as_view(), name="service_account_list"),
    path(
        "service-accounts/<str:name>/",
        service_accounts.ServiceAccountDetailApi.as_view(),
        name="service_account_detail",
    ),
    path(
        "service-accounts/<str:name>/tokens/",
        service_accounts.ServiceAccountTokenListApi.as_view(),
        name="service_account_token_list",
    ),
    path(
        "service-accounts/<str:name>/tokens/<int:pk>/",
        service_accounts.ServiceAccountTokenDetailApi.as_view(),
        name="service_account_token_detail",
    ),
    path("tokens/", views.ApiTokenListApi.as_view(), name="token_list"),
    path("tokens/<int:pk>/", views.ApiTokenDetailApi.as_view(), name="token_detail"),
    path("models/", views.ModelConsumerListApi.as_view(), name="model_list"),
    path("models/<int:pk>/", views.ModelConsumerDetailApi.as_view(), name="model_detail"),
    path("objects/", views._object_list_view(None, "catalog objects", in_project=False), name="object_list"),
    path("projects/", views.ProjectListApi.as_view(), name="project_list"),
    path("projects/<name:project>/", views.ProjectDetailApi.as_view(), name="project_detail"),
    path("projects/<name:project>/lineage/", views.LineageApi.as_view(), name="lineage"),
    path("projects/<name:project>/features/", views.FeatureListApi.as_view(), name="feature_list"),
    path(
        "projects/<name:project>/objects/",
        views._object_list_view(None, "catalog objects", in_project=True),
        name="project_object_list",
    ),
]
for kind, slug, plural, label in KINDS:
    urlpatterns += [
        path(f"{slug}/", views._object_list_view(kind, plural, in_project=False), name=f"{kind}_list"),
        path(
            f"projects/<name:project>/{slug}/",
            views._object_list_view(kind, plural, in_project=True),
            name=f"project_{kind}_list",
        ),
        path(
            f"projects/<name:project>/{slug}/<name:name>/",
            views._object_detail_view(kind, label),
            name=f"{kind}_detail",
        ),
    ]
urlpatterns += [
    path(
        "projects/<name:project>/<name:kind_slug>/<name:name>/history/",
        views.ObjectHistoryApi.as_view(),
        name="object_history",
    ),
    path(
        "projects/<name:project>/<name:kind_slug>/<name:name>/versions/<int:version>/",
        views.ObjectVersionApi.as_view(),
        name="object_version",
    ),
    path(
        "projects/<name:project>/<name:kind_slug>/<name:name>/diff/", views.ObjectDiffApi.as_view(), name="object_diff"
    ),
]
# The model contract of a feature service (catalog/api/contracts.py).
urlpatterns += [
    path(
        "projects/<name:project>/feature-services/<name:name>/contract/",
        contracts.ServiceContractApi.as_view(),
        name="feature_service_contract",
    ),
    path(
        "projects/<name:project>/feature-services/<name:name>/contract/verify/",
        contracts.ServiceContractVerifyApi.as_view(),
        name="feature_service_contract_verify",
    ),
]
