# syntax=docker/dockerfile:1
# Feature Portal: one image for every process (k8s/ runs it as):
#   web      gunicorn portal.wsgi --bind=0.0.0.0:8000 ...
#   worker   celery --app=portal worker ...
#   beat     celery --app=portal beat ...
#   migrate  python manage.py migrate --noinput
#   feast    feast --chdir=/app/feature_repo --feature-store-yaml=... serve | materialize-incremental ...
# Multi-stage: build tools and pip stay in the build stage; the runtime stage runs as uid 10001
# with code owned by root (read-only to the app), so it works with readOnlyRootFilesystem.
# The base image is pinned by tag; pin it by digest too (python:3.11.11-slim-bookworm@sha256:...)
# in your registry mirror.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
# Dependencies first (cached until the lock changes): exactly the pinned set, nothing resolved here.
COPY requirements/lock.txt /tmp/lock.txt
RUN pip install --no-deps -r /tmp/lock.txt && pip check
WORKDIR /app
COPY manage.py pyproject.toml ./
COPY portal ./portal
COPY catalog ./catalog
COPY jobs ./jobs
COPY templates ./templates
COPY static ./static
COPY feature_repo ./feature_repo
# The CI client (stdlib only), for the Kubernetes Job in k8s/examples/ that applies a feature repo on merge.
COPY client ./client
# Demo data for the demo repo's file offline store (a real deployment points FEAST_REPO_PATH at its
# own repo and an S3/warehouse offline store).
RUN python -m feature_repo.generate --out feature_repo/data
# Static files at build time, with a throwaway key: no secret is baked into the image.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PORTAL_VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 portal \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin portal \
    && mkdir -p /var/lib/portal \
    && chown 10001:10001 /var/lib/portal
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PORTAL_VAR_DIR=/var/lib/portal \
    FEAST_REPO_PATH=/app/feature_repo \
    FEAST_USAGE=False
WORKDIR /app
USER 10001:10001
EXPOSE 8000 6566
CMD ["gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi", "--bind=0.0.0.0:8000", "--workers=2", "--access-logfile=-"]
