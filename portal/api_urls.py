"""/api/v1/: the versioned REST API. Each app owns its endpoints in <app>/api/urls.py."""

from django.urls import include, path

urlpatterns = [
    path("", include("catalog.api.urls")),
    path("", include("jobs.api.urls")),
]
