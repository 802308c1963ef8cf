"""Interactive API docs at /api/v1/docs/: Swagger UI served from static/vendor (never a CDN)."""

from __future__ import annotations

from django.templatetags.static import static
from drf_spectacular.views import SpectacularSwaggerView

SWAGGER_UI = "vendor/swagger-ui-5.35.0"


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI for the schema at /api/v1/schema/, with the vendored swagger-ui-dist."""

    url_name = "catalog_api:schema"
    title = "Feature Portal API"

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"{SWAGGER_UI}/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static(f"{SWAGGER_UI}/favicon-32x32.png")


api_docs = ApiDocsView.as_view()
