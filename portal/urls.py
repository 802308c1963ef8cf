"""Top-level URLs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from catalog.forms import ThrottledAuthenticationForm
from jobs.views import change_request_decide
from portal import health, metrics, oidc

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api_urls")),
    path("oidc/", include(oidc.urlpatterns)),  # single sign-on: 404 unless OIDC_ENABLED
    path("jobs/", include("jobs.urls")),
    # A change request's approve and override (the page's forms): the catalog's action, then the jobs app's
    # auto-apply (jobs.views.change_request_decide); every other action is catalog's own route below.
    *[
        path(f"change-requests/<int:pk>/{action}/", change_request_decide, {"action": action}, name=name)
        for action, name in (("approve", "change_request_approve"), ("override", "change_request_override"))
    ],
    path("", include("catalog.urls")),
]

# Under /api/, 400/404/500 answer in the API's JSON error shape; elsewhere they are the HTML pages.
handler400 = "catalog.api.exceptions.bad_request_view"
handler404 = "catalog.api.exceptions.not_found_view"
handler500 = "catalog.api.exceptions.server_error_view"
