from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.home, name="home"),
    path("catalog/as-of/", views.catalog_as_of, name="catalog_as_of"),
    path("projects/<str:project>/", views.project_detail, name="project_detail"),
    path("projects/<str:project>/<slug:kind_slug>/<str:name>/", views.object_detail, name="object_detail"),
]
