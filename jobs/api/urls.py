"""Jobs API endpoints (mounted under /api/v1/)."""

from django.urls import URLPattern, URLResolver, path

from jobs.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("jobs/", views.JobListApi.as_view(), name="api_job_list"),
    path("jobs/<int:pk>/", views.JobDetailApi.as_view(), name="api_job_detail"),
    path("projects/<str:project>/online-preview/", views.OnlinePreviewApi.as_view(), name="api_online_preview"),
    path(
        "projects/<str:project>/feature-views/<str:view>/ledger/",
        views.ViewLedgerApi.as_view(),
        name="api_view_ledger",
    ),
]
