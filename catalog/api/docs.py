"""Interactive API docs at /api/v1/docs/: Swagger UI served from static/vendor (never a CDN).

Who may read the schema and the docs: `API_DOCS_PUBLIC` (README "API"; `ApiDocsAccess`). Anonymous visitors of
this page are sent to sign in unless it is set.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from drf_spectacular.views import SpectacularSwaggerView

SWAGGER_UI = "vendor/swagger-ui-5.35.0"


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI for the schema at /api/v1/schema/, with the vendored swagger-ui-dist."""

    url_name = "catalog_api:schema"
    title = "Feature Portal API"
    template_name = "api/docs.html"  # no inline script or style: the Content-Security-Policy allows none

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"{SWAGGER_UI}/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static(f"{SWAGGER_UI}/favicon-32x32.png")


_api_docs = ApiDocsView.as_view()


def api_docs(request: HttpRequest) -> HttpResponse:
    """The docs page; an anonymous visitor signs in first unless API_DOCS_PUBLIC."""
    if not settings.API_DOCS_PUBLIC and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    response: HttpResponse = _api_docs(request)
    return response
