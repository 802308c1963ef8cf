from django.urls import path

import catalog.urlnames  # noqa: F401  (registers the `name` converter: any Feast name, `/` included)
from catalog import views, views_discovery, views_governance

app_name = "catalog"

urlpatterns = [
    path("", views.home, name="home"),
    path("catalog/as-of/", views.catalog_as_of, name="catalog_as_of"),
    path("profile/", views.profile, name="profile"),
    path("profile/tokens/<int:pk>/revoke/", views.profile_token_revoke, name="profile_token_revoke"),
    path("search/", views_discovery.search, name="search"),
    path("audit/", views_governance.audit_list, name="audit_list"),
    path("change-requests/", views_governance.change_request_list, name="change_request_list"),
    path("change-requests/new/", views_governance.change_request_new, name="change_request_new"),
    path("change-requests/<int:pk>/", views_governance.change_request_detail, name="change_request_detail"),
    path(
        "change-requests/<int:pk>/<slug:action>/",
        views_governance.change_request_action,
        name="change_request_action",
    ),
    path("search/suggest/", views_discovery.suggest, name="suggest"),
    path("features/", views_discovery.feature_index, name="feature_index"),
    path("models/", views_discovery.model_index, name="model_index"),
    path("teams/", views_discovery.team_directory, name="team_directory"),
    path("owners/<name:name>/", views_discovery.owner_detail, name="owner_detail"),
    path("models/<int:pk>/", views_discovery.model_detail, name="model_detail"),
    path("models/<int:pk>/delete/", views_discovery.model_delete, name="model_delete"),
    path("projects/<name:project>/", views.project_detail, name="project_detail"),
    path("projects/<name:project>/lineage/", views_discovery.project_lineage, name="project_lineage"),
    path(
        "projects/<name:project>/feature-views/<name:view>/features/<name:name>/",
        views_discovery.feature_detail,
        name="feature_detail",
    ),
    path(
        "projects/<name:project>/feature-services/<name:name>/register-model/",
        views_discovery.model_register,
        name="model_register",
    ),
    path(
        "projects/<name:project>/<slug:kind_slug>/<name:name>/propose/",
        views_governance.change_request_propose,
        name="change_request_propose",
    ),
    path("projects/<name:project>/<slug:kind_slug>/<name:name>/", views.object_detail, name="object_detail"),
]
