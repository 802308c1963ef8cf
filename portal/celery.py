"""The Celery app. Configuration comes from Django settings (CELERY_* keys)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["jobs"])
# Liveness heartbeat file for Kubernetes (PORTAL_WORKER_HEARTBEAT_PATH; off when unset).
app.steps["consumer"].add("portal.worker_health:HeartbeatStep")
