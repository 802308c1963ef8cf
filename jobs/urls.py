from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("<int:pk>/", views.job_detail, name="job_detail"),
    path("<int:pk>/status/", views.job_status, name="job_status"),
    path("sync/", views.sync_now, name="sync_now"),
    path("materialize/", views.materialize, name="materialize"),
    path("preview/", views.preview, name="preview"),
    path("freshness/", views.freshness_panel, name="freshness"),
    path("ledger/<str:project>/<str:view>/", views.view_ledger_page, name="view_ledger"),
    path("ledger/<str:project>/<str:view>/skew/", views.skew_check, name="skew_check"),
    path("ledger/<str:project>/<str:view>/statistics/", views.feature_statistics, name="feature_statistics"),
]
