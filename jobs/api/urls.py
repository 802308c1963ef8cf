"""Jobs API endpoints (mounted under /api/v1/)."""

from django.urls import URLPattern, URLResolver, path

import catalog.urlnames  # noqa: F401  (registers the `name` converter: any Feast name, `/` included)
from jobs.api import governance, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", views.JobListApi.as_view(), name="api_job_list"),
    path("jobs/<int:pk>/", views.JobDetailApi.as_view(), name="api_job_detail"),
    path("change-requests/", governance.ChangeRequestProposeApi.as_view(), name="api_change_request_list"),
    path(
        "change-requests/<int:pk>/revise/",
        governance.ChangeRequestReviseApi.as_view(),
        {"action": "revise"},
        name="api_change_request_revise",
    ),
    path(
        "change-requests/<int:pk>/apply/", governance.ChangeRequestApplyApi.as_view(), name="api_change_request_apply"
    ),
    *[
        path(
            f"change-requests/<int:pk>/{action}/",
            governance.ChangeRequestDecisionApi.as_view(),
            {"action": action},
            name=f"api_change_request_{action}",
        )
        for action in sorted(governance.ChangeRequestDecisionApi.ACTIONS)
    ],
    path("training-datasets/", views.TrainingDatasetListApi.as_view(), name="api_training_dataset_list"),
    path("training-datasets/<int:pk>/", views.TrainingDatasetDetailApi.as_view(), name="api_training_dataset_detail"),
    path(
        "training-datasets/<int:pk>/download/",
        views.TrainingDatasetDownloadApi.as_view(),
        name="api_training_dataset_download",
    ),
    path("projects/<name:project>/online-preview/", views.OnlinePreviewApi.as_view(), name="api_online_preview"),
    path(
        "projects/<name:project>/feature-views/<name:view>/ledger/",
        views.ViewLedgerApi.as_view(),
        name="api_view_ledger",
    ),
]
