"""Feature Portal settings: the only settings file, configured by environment variables only.

Two profiles, chosen by which variables are set (README "Configuration"):
- quickstart (default): SQLite, Feast file registry + SQLite online store, Celery on a SQLite broker.
- services: DATABASE_URL (PostgreSQL) and REDIS_URL. The Feast SQL registry lives in its own
  PostgreSQL database and Redis is the Feast online store, Celery broker/result backend and cache.
Every variable is listed in .env.example; k8s/ ConfigMaps and Secrets map onto it one-to-one.
"""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal.env import (
    env_bool,
    env_int,
    env_list,
    env_path,
    env_secret,
    env_str,
    parse_database_url,
    parse_redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("PORTAL_VAR_DIR", default=BASE_DIR / "var")

# --- Core -----------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", default=False)
# The quickstart (`make run`) generates var/secret_key; manage.py commands run beside it find it there.
_QUICKSTART_KEY = VAR_DIR / "secret_key"
SECRET_KEY = (
    env_secret("DJANGO_SECRET_KEY", default=_QUICKSTART_KEY.read_text().strip())
    if _QUICKSTART_KEY.is_file()
    else env_secret("DJANGO_SECRET_KEY")
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Behind the ingress: HTTPS from X-Forwarded-Proto, and client addresses from X-Forwarded-For.
DJANGO_BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if DJANGO_BEHIND_TLS_PROXY else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=False)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", default=0, minimum=0)
# Only when every subdomain is served over HTTPS too (and, for preload, once the domain is submitted).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", default=False)
# In-cluster probes and the metrics scraper speak plain HTTP to the pod: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "catalog",
    "jobs",
    "portal",
]

MIDDLEWARE = [
    "portal.metrics.PrometheusMiddleware",  # first: times the whole stack (k8s/README.md "Metrics")
    "portal.middleware.InputGuardMiddleware",  # NUL characters and oversized bodies, before anything reads them
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",  # CONTENT_SECURITY_POLICY below
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_database_url_raw = env_secret("DATABASE_URL", default="")  # URLs carry passwords: *_FILE works too
DATABASE_URL = (
    parse_database_url("DATABASE_URL", _database_url_raw)
    if _database_url_raw
    else parse_database_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
)
DATABASES = {"default": DATABASE_URL.django()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------------------------
_redis_url_raw = env_secret("REDIS_URL", default="")
REDIS_URL = parse_redis_url("REDIS_URL", _redis_url_raw) if _redis_url_raw else None
PORTAL_PROFILE = "services" if (DATABASE_URL.engine == "postgresql" and REDIS_URL) else "quickstart"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL.url,
            "KEY_PREFIX": "portal",
            # an unreachable Redis must fail fast (the rate limiter then fails open), never hang a request
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CELERY_BROKER_URL = REDIS_URL.url
    CELERY_RESULT_BACKEND = REDIS_URL.url
else:
    # Shared across the web, worker and beat processes of the quickstart, with no server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CELERY_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
    CELERY_RESULT_BACKEND = f"db+sqlite:///{VAR_DIR / 'celery-results.sqlite3'}"

CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", default="portal")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TRACK_STARTED = True
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long jobs: a worker takes one at a time
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300, minimum=10)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", default=3600, minimum=10)
# With acks_late, an unacknowledged task is redelivered after the visibility timeout: it must
# outlast the longest task, or a healthy long run would be started twice. (Redis only: the
# SQLAlchemy transport of the quickstart passes its options to create_engine.)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600} if REDIS_URL else {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless this is set: a
# short task (an online preview) then spends most of its time connecting to PostgreSQL. Reuse it instead,
# like a web request does: portal.celery runs close_old_connections before each task, which honours
# CONN_MAX_AGE and CONN_HEALTH_CHECKS (a broken or old connection is replaced, not reused).
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

CATALOG_SYNC_INTERVAL_SECONDS = env_int("CATALOG_SYNC_INTERVAL_SECONDS", default=300, minimum=10)
# Jobs (operations): sweeper cadence and the heartbeat age after which a running job counts as dead.
JOBS_SWEEP_INTERVAL_SECONDS = env_int("JOBS_SWEEP_INTERVAL_SECONDS", default=60, minimum=1)
JOBS_STALE_AFTER_SECONDS = env_int("JOBS_STALE_AFTER_SECONDS", default=45, minimum=1)
# A run still queued this long after it was published is published again (its message was lost, e.g. a Redis
# restart); still queued this long after that, it is failed, saying so. A duplicate message is harmless: only
# one claim of a queued run succeeds.
JOBS_REQUEUE_AFTER_SECONDS = env_int("JOBS_REQUEUE_AFTER_SECONDS", default=900, minimum=10)
PORTAL_MATERIALIZE_CRON = env_str("PORTAL_MATERIALIZE_CRON", default="0 2 * * *")
_CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
if len(PORTAL_MATERIALIZE_CRON.split()) != 5:
    raise ImproperlyConfigured("PORTAL_MATERIALIZE_CRON must have 5 fields (minute hour day month weekday)")
try:
    _MATERIALIZE_SCHEDULE = crontab(**dict(zip(_CRON_FIELDS, PORTAL_MATERIALIZE_CRON.split(), strict=True)))
except ValueError as _exc:
    raise ImproperlyConfigured(f"PORTAL_MATERIALIZE_CRON is not a valid cron expression ({_exc})") from None
PORTAL_FRESHNESS_CHECK_INTERVAL_SECONDS = env_int("PORTAL_FRESHNESS_CHECK_INTERVAL_SECONDS", default=300, minimum=5)
# Rows per online_write_batch call of the portal's materialization (keeps memory flat).
FEAST_ONLINE_WRITE_BATCH_SIZE = env_int("FEAST_ONLINE_WRITE_BATCH_SIZE", default=50000, minimum=1)
# Materialization works in time chunks of this many hours, so progress is real and the view
# spends little time in Feast's MATERIALIZING state.
PORTAL_MATERIALIZE_CHUNK_HOURS = env_int("PORTAL_MATERIALIZE_CHUNK_HOURS", default=24 * 30, minimum=1)
# Slack-compatible webhook for materialization failures and stale views (empty: off).
PORTAL_WEBHOOK_URL = env_secret("PORTAL_WEBHOOK_URL", default="")
PORTAL_WEBHOOK_TIMEOUT_SECONDS = env_int("PORTAL_WEBHOOK_TIMEOUT_SECONDS", default=3, minimum=1)
# How long POST .../online-preview/ waits for the worker before answering 202 with the job.
PORTAL_PREVIEW_WAIT_SECONDS = env_int("PORTAL_PREVIEW_WAIT_SECONDS", default=10, minimum=1)
# Training datasets (README "Training datasets and the model contract"). Where datasets and uploaded entity
# files are written: a local directory (default var/datasets) or s3://bucket/prefix (pyarrow's S3 filesystem;
# credentials from the AWS_* environment or the pod's IAM role). Web and worker must see the same storage.
PORTAL_TRAINING_STORAGE_URL = env_str("PORTAL_TRAINING_STORAGE_URL", default=str(VAR_DIR / "datasets"))
# An S3-compatible endpoint (MinIO, Ceph ...), e.g. http://minio:9000; empty: AWS.
PORTAL_TRAINING_S3_ENDPOINT_URL = env_str("PORTAL_TRAINING_S3_ENDPOINT_URL", default="")
# Entity files larger than this are refused before anything is read (the Content-Length is checked first).
PORTAL_TRAINING_MAX_UPLOAD_BYTES = env_int("PORTAL_TRAINING_MAX_UPLOAD_BYTES", default=256 * 1024 * 1024, minimum=1024)
PORTAL_TRAINING_MAX_ENTITY_ROWS = env_int("PORTAL_TRAINING_MAX_ENTITY_ROWS", default=5_000_000, minimum=1)
# Datasets up to this many rows also get a CSV beside the parquet.
PORTAL_TRAINING_CSV_MAX_ROWS = env_int("PORTAL_TRAINING_CSV_MAX_ROWS", default=100_000, minimum=0)
# Entity rows per Feast retrieval: bigger sets are joined in chunks (real progress, bounded memory; each
# chunk re-reads the offline source, so the default keeps typical sets to one call).
PORTAL_TRAINING_CHUNK_ROWS = env_int("PORTAL_TRAINING_CHUNK_ROWS", default=250_000, minimum=1000)
CELERY_BEAT_SCHEDULE = {
    # Mirror the Feast registry into the catalog. Changes made outside the portal (someone
    # running `feast apply` by hand) show up within one interval, flagged out-of-band.
    "catalog-sync-registry": {
        "task": "jobs.registry_sync",
        "schedule": float(CATALOG_SYNC_INTERVAL_SECONDS),
        "kwargs": {"trigger": "schedule"},
    },
    # Turn sync leases and runs whose worker died into failed runs, so nothing stays "running".
    "jobs-sweep-stale-runs": {
        "task": "jobs.sweep_stale_runs",
        "schedule": float(JOBS_SWEEP_INTERVAL_SECONDS),
    },
    # Incremental materialization of every online view: the reference design's nightly CronJob.
    # PORTAL_MATERIALIZE_CRON is a 5-field cron (minute hour day month weekday), default 02:00 UTC.
    "jobs-materialize-incremental": {
        "task": "jobs.materialize",
        "schedule": _MATERIALIZE_SCHEDULE,
        "kwargs": {"trigger": "schedule"},
    },
    # Fresh/stale check of every online view; the webhook fires once per fresh -> stale transition.
    "jobs-freshness-check": {
        "task": "jobs.freshness_check",
        "schedule": float(PORTAL_FRESHNESS_CHECK_INTERVAL_SECONDS),
    },
}

# --- Feast ------------------------------------------------------------------------------------
# FEAST_REPO_PATH: one or more Feast repos (directories holding feature_store.yaml), comma-separated.
FEAST_REPO_PATHS = [
    Path(p).expanduser().resolve() for p in env_list("FEAST_REPO_PATH", default=[str(BASE_DIR / "feature_repo")])
]
if not FEAST_REPO_PATHS:
    raise ImproperlyConfigured("FEAST_REPO_PATH is empty: name at least one Feast repo directory")
# Which YAML file inside each repo. Default: feature_store.yaml; in the services profile a repo may
# ship feature_store.services.yaml beside it (the demo repo does), which is then preferred.
FEAST_FS_YAML = env_str("FEAST_FS_YAML", default="")
for _repo in FEAST_REPO_PATHS:
    _names = [FEAST_FS_YAML] if FEAST_FS_YAML else ["feature_store.yaml", "feature_store.services.yaml"]
    if not any((_repo / n).is_file() for n in _names):
        raise ImproperlyConfigured(f"FEAST_REPO_PATH: {_repo} has no {' or '.join(_names)}")

# Values substituted into ${...} placeholders of feature_store*.yaml (Feast does the same with
# os.environ); derived from DATABASE_URL / REDIS_URL unless set explicitly.
FEAST_REGISTRY_URL = env_secret(
    "FEAST_REGISTRY_URL",
    default=(
        DATABASE_URL.with_name(f"{DATABASE_URL.name}_feast_registry").sqlalchemy()
        if DATABASE_URL.engine == "postgresql"
        else ""
    ),
)
FEAST_REDIS_CONNECTION_STRING = env_secret(
    "FEAST_REDIS_CONNECTION_STRING", default=REDIS_URL.feast_connection_string() if REDIS_URL else ""
)
FEAST_CONFIG_VARS = {
    "FEAST_REGISTRY_URL": FEAST_REGISTRY_URL,
    "FEAST_REDIS_CONNECTION_STRING": FEAST_REDIS_CONNECTION_STRING,
}
FEAST_USE_SERVICES_YAML = PORTAL_PROFILE == "services"
# The Feast role the portal applies with: the only role a registry's Feast permissions may let create, update
# or delete objects (feature_repo/permissions.py; `manage.py preflight` warns otherwise). Under Feast's
# `kubernetes` auth it is the name of a Role bound to the applying ServiceAccount (k8s/base/feast-auth.yaml).
FEAST_APPLY_ROLE = env_str("FEAST_APPLY_ROLE", default="feature-portal-apply").strip()
if not FEAST_APPLY_ROLE:
    raise ImproperlyConfigured("FEAST_APPLY_ROLE is empty: name the Feast role the portal applies with")
# The tag whose value names an object's owning team (besides Feast's `owner` field).
CATALOG_TEAM_TAG = env_str("CATALOG_TEAM_TAG", default="team")
# Governance: approvals a breaking change needs (a project may override), and how long an apply may hold
# its project's apply lock before another worker may take it over (a dead worker's lock expires).
GOVERNANCE_BREAKING_APPROVALS = env_int("GOVERNANCE_BREAKING_APPROVALS", default=2, minimum=1)
GOVERNANCE_APPLY_LOCK_SECONDS = env_int("GOVERNANCE_APPLY_LOCK_SECONDS", default=900, minimum=30)
# Uploaded feature repos (catalog/feast_gateway/sandbox.py): archive limits, checked before anything is
# extracted, and the limits of the isolated process that imports the definitions. `import feast` needs
# ~190 MB resident but maps ~1.5 GB of address space (RLIMIT_AS counts that; it fails below ~600 MB).
GOVERNANCE_UPLOAD_MAX_BYTES = env_int("GOVERNANCE_UPLOAD_MAX_BYTES", default=5 * 1024 * 1024, minimum=1024)
# The largest request body the portal reads at all (portal/middleware.py): the largest upload plus its form.
PORTAL_MAX_REQUEST_BYTES = env_int(
    "PORTAL_MAX_REQUEST_BYTES",
    default=max(PORTAL_TRAINING_MAX_UPLOAD_BYTES, GOVERNANCE_UPLOAD_MAX_BYTES) + 1024 * 1024,
    minimum=1024 * 1024,
)
GOVERNANCE_UPLOAD_MAX_FILES = env_int("GOVERNANCE_UPLOAD_MAX_FILES", default=500, minimum=1)
GOVERNANCE_UPLOAD_MAX_UNCOMPRESSED = env_int(
    "GOVERNANCE_UPLOAD_MAX_UNCOMPRESSED", default=20 * 1024 * 1024, minimum=1024
)
GOVERNANCE_PARSE_TIMEOUT_SECONDS = env_int("GOVERNANCE_PARSE_TIMEOUT_SECONDS", default=60, minimum=10)
GOVERNANCE_PARSE_MEMORY_MB = env_int("GOVERNANCE_PARSE_MEMORY_MB", default=2048, minimum=1024)
# Each web worker starts its upload sandbox's template process (~190 MiB, Feast imported once) when it starts,
# rather than on its first upload (portal/gunicorn_conf.py).
GOVERNANCE_SANDBOX_PREWARM = env_bool("GOVERNANCE_SANDBOX_PREWARM", default=True)

# --- Auth, static, i18n -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Password sign-in lockout (catalog/services/logins.py).
PORTAL_LOGIN_MAX_FAILURES = env_int("PORTAL_LOGIN_MAX_FAILURES", default=5, minimum=1)
PORTAL_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("PORTAL_LOGIN_MAX_FAILURES_PER_ADDRESS", default=30, minimum=1)
PORTAL_LOGIN_LOCKOUT_SECONDS = env_int("PORTAL_LOGIN_LOCKOUT_SECONDS", default=900, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:home"
LOGOUT_REDIRECT_URL = "login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("DJANGO_STATIC_ROOT", default=VAR_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from static/ when collectstatic has not run (quickstart)
WHITENOISE_MANIFEST_STRICT = False

# Content-Security-Policy of every response (portal/middleware.py). Scripts and styles come only from the
# portal's own static files: no inline <script>, event-handler attribute, <style> or style attribute anywhere
# (tests/test_content_security_policy.py), no eval, no CDN. Data for scripts travels in json_script elements
# and data- attributes; plotly's rules are a static stylesheet (templates/_plotly.html). Images may be data:
# and blob: URLs (the favicon, Swagger UI's icons, plotly's "download as PNG"). The API docs page obeys the
# same policy (templates/api/docs.html starts Swagger UI from static/api_docs.js).
CONTENT_SECURITY_POLICY_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
CONTENT_SECURITY_POLICY = "; ".join(f"{name} {value}" for name, value in CONTENT_SECURITY_POLICY_DIRECTIVES.items())


# --- REST API ----------------------------------------------------------------------------------
# Conventions for every /api/v1/ view (catalog/api/permissions.py has the details):
# - tokens (`Authorization: Bearer fpt_...`, hashed at rest) for programs, sessions for the browser;
# - anonymous → 401; a token needs `read` for GET and the view's `required_scopes[METHOD]` otherwise
#   (default `operate`); roles are checked with catalog.permissions predicates → 403;
# - one error shape {"error": {"status", "code", "message", "details"}} (catalog/api/exceptions.py);
# - cursor pagination (?cursor=, ?page_size= up to 500), django-filter + ?ordering=;
# - throttling per token (per user for sessions, per address when anonymous).
def _throttle_rate(name: str, default: str) -> str:
    value = env_str(name, default=default).strip()
    count, _, period = value.partition("/")
    if not (count.isascii() and count.isdigit()) or not period or period[0] not in "smhd":
        raise ImproperlyConfigured(f"{name} must look like 600/minute (got {value!r})")
    return value


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "catalog.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "catalog.api.permissions.TokenHasScope",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "catalog.api.filters.StrictFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "catalog.api.pagination.PortalCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["catalog.api.throttling.PortalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": _throttle_rate("API_THROTTLE_TOKEN", "1200/minute"),
        "user": _throttle_rate("API_THROTTLE_USER", "1200/minute"),
        "anon": _throttle_rate("API_THROTTLE_ANON", "60/minute"),
    },
    "EXCEPTION_HANDLER": "catalog.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "catalog.api.schema.PortalAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# The OpenAPI schema and the docs page need a signed-in user or a `read` token, like the rest of the API; set
# API_DOCS_PUBLIC=true to serve them to anyone (README "API": they describe endpoints, never data).
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", default=False)
SPECTACULAR_SETTINGS = {
    "SERVE_PERMISSIONS": ["catalog.api.permissions.ApiDocsAccess"],
    "TITLE": "Feature Portal API",
    "DESCRIPTION": "Catalog, governance and operations for Feast features.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is vendored in static/vendor (catalog/api/docs.py): no CDN.
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui-5.35.0",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui-5.35.0/favicon-32x32.png",
    "REDOC_DIST": "/static/vendor/redoc-not-vendored",
    "TAGS": [
        {"name": "catalog", "description": "Projects and objects by natural key; lists with filters and cursors."},
        {"name": "history", "description": "Versions of an object, one version's spec, diffs."},
        {"name": "lineage", "description": "A project's lineage graph."},
        {"name": "search", "description": "The browser's ranked search."},
        {"name": "models", "description": "Models (consumers) registered against feature services."},
        {"name": "jobs", "description": "Background jobs: sync, materialization, online preview."},
        {"name": "audit", "description": "The append-only audit log."},
        {"name": "tokens", "description": "Your API tokens and who you are."},
    ],
    "ENUM_NAME_OVERRIDES": {
        "ObjectKindEnum": "catalog.api.serializers.OBJECT_KINDS",
        "LifecycleStatusEnum": "catalog.models.projects.Status.choices",
        "LineageNodeKindEnum": ["entity", "data_source", "feature_view", "feature_service", "model"],
        "TokenScopeEnum": "catalog.api.serializers.TOKEN_SCOPES",
        # choice sets whose field names collide (drf_spectacular.W001): each gets its own name
        "VersionChangeEnum": "catalog.api.serializers.VERSION_CHANGES",
        "ChangeRequestModeEnum": "catalog.api.serializers.CHANGE_REQUEST_MODES",
        "ChangeRequestStatusEnum": "catalog.api.serializers.CHANGE_REQUEST_STATUSES",
        "JobKindEnum": "jobs.api.serializers.JOB_KINDS",
        "JobStatusEnum": "jobs.api.serializers.JOB_STATUSES",
        "TrainingDatasetStatusEnum": "jobs.api.serializers.TRAINING_DATASET_STATUSES",
    },
}

# --- Metrics and worker health (README "Metrics", k8s/README.md) ---------------------------------
# GET /metrics needs `Authorization: Bearer <PORTAL_METRICS_TOKEN>`; unset, only loopback clients may scrape.
PORTAL_METRICS_TOKEN = env_secret("PORTAL_METRICS_TOKEN", default="")
# A file the Celery worker's event loop touches every 10 s; the Kubernetes liveness probe checks its age.
PORTAL_WORKER_HEARTBEAT_PATH = env_str("PORTAL_WORKER_HEARTBEAT_PATH", default="")

# --- Single sign-on (optional; portal/oidc.py) -------------------------------------------------
# OpenID Connect via mozilla-django-oidc, off by default: local accounts always keep working.
OIDC_ENABLED = env_bool("OIDC_ENABLED", default=False)
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_TEAM_PREFIX = env_str("OIDC_TEAM_PREFIX", default="")
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT_SECONDS", default=10, minimum=1)


def _group_map(name: str, *, roles_only: bool = False) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in (part.strip() for part in env_str(name, default="").split(",")):
        if not item:
            continue
        key, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not key or not value:
            raise ImproperlyConfigured(f"{name}: expected idp-group=value pairs separated by commas (got {item!r})")
        roles = ("viewer", "proposer", "approver", "operator", "admin")
        if roles_only and value not in roles:
            raise ImproperlyConfigured(f"{name}: {value!r} is not a portal role ({', '.join(roles)})")
        mapping[key] = value
    return mapping


OIDC_ROLE_MAP = _group_map("OIDC_ROLE_MAP", roles_only=True)  # e.g. ml-platform-admins=admin,ml-approvers=approver
OIDC_TEAM_MAP = _group_map("OIDC_TEAM_MAP")  # e.g. grp-people-analytics=people-analytics
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_ENABLED:
    _missing = [
        n
        for n in (
            "OIDC_RP_CLIENT_ID",
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
        )
        if not globals()[n]
    ]
    if OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")) and not OIDC_OP_JWKS_ENDPOINT:
        _missing.append("OIDC_OP_JWKS_ENDPOINT")
    if _missing:
        raise ImproperlyConfigured(f"OIDC_ENABLED needs {', '.join(_missing)}")
    AUTHENTICATION_BACKENDS.append("portal.oidc.PortalOIDCBackend")

# --- Logging -------------------------------------------------------------------------------------
LOG_LEVEL = env_str("PORTAL_LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "feast": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}
