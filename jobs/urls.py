from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("sync/", views.sync_now, name="sync_now"),
]
