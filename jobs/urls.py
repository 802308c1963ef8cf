from django.urls import path

import catalog.urlnames  # noqa: F401  (registers the `name` converter: any Feast name, `/` included)
from jobs import views, views_datasets, views_planning

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("<int:pk>/", views.job_detail, name="job_detail"),
    path("<int:pk>/status/", views.job_status, name="job_status"),
    path("start/<str:kind>/", views.job_start, name="job_start"),
    path("change-requests/<int:pk>/apply/", views.change_request_apply, name="change_request_apply"),
    path("change-requests/upload/", views_planning.change_request_upload, name="change_request_upload"),
    path(
        "change-requests/<int:pk>/upload/",
        views_planning.change_request_upload_revision,
        name="change_request_upload_revision",
    ),
    path("preview/", views.preview, name="preview"),
    path("freshness/", views.freshness_panel, name="freshness"),
    path("ledger/<name:project>/<name:view>/", views.view_ledger_page, name="view_ledger"),
    path("datasets/", views_datasets.dataset_list, name="dataset_list"),
    path("datasets/new/", views_datasets.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", views_datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/status/", views_datasets.dataset_status, name="dataset_status"),
    path("datasets/<int:pk>/download/<str:fmt>/", views_datasets.dataset_download, name="dataset_download"),
]
