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
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", default=False) else None
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=False)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", default=0, minimum=0)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", default=False)
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
    "django.middleware.security.SecurityMiddleware",
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
_database_url_raw = env_str("DATABASE_URL", default="")
DATABASE_URL = (
    parse_database_url("DATABASE_URL", _database_url_raw)
    if _database_url_raw
    else parse_database_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
)
DATABASES = {"default": DATABASE_URL.django()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ---------------------------------------------------------------------
_redis_url_raw = env_str("REDIS_URL", default="")
REDIS_URL = parse_redis_url("REDIS_URL", _redis_url_raw) if _redis_url_raw else None
PORTAL_PROFILE = "services" if (DATABASE_URL.engine == "postgresql" and REDIS_URL) else "quickstart"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL.url,
            "KEY_PREFIX": "portal",
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
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

CATALOG_SYNC_INTERVAL_SECONDS = env_int("CATALOG_SYNC_INTERVAL_SECONDS", default=300, minimum=10)
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
        "schedule": crontab(minute="*"),
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
FEAST_REGISTRY_URL = env_str(
    "FEAST_REGISTRY_URL",
    default=(
        DATABASE_URL.with_name(f"{DATABASE_URL.name}_feast_registry").sqlalchemy()
        if DATABASE_URL.engine == "postgresql"
        else ""
    ),
)
FEAST_REDIS_CONNECTION_STRING = env_str(
    "FEAST_REDIS_CONNECTION_STRING", default=REDIS_URL.feast_connection_string() if REDIS_URL else ""
)
FEAST_CONFIG_VARS = {
    "FEAST_REGISTRY_URL": FEAST_REGISTRY_URL,
    "FEAST_REDIS_CONNECTION_STRING": FEAST_REDIS_CONNECTION_STRING,
}
FEAST_USE_SERVICES_YAML = PORTAL_PROFILE == "services"
# The tag whose value names an object's owning team (besides Feast's `owner` field).
CATALOG_TEAM_TAG = env_str("CATALOG_TEAM_TAG", default="team")

# --- Auth, static, i18n -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
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

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Feature Portal API",
    "DESCRIPTION": "Catalog, governance and operations for Feast features.",
    "VERSION": "1.0.0",
}

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
