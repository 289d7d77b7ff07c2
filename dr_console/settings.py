"""DR Console settings: one file, driven by environment variables.

Every setting a deployment may change is read here with a helper that fails loudly on a bad
value. The README's "Configuration" section lists them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: str, *, minimum: int | None = None) -> int:
    value = os.getenv(name, default)
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


# Where the console keeps its own state when run from a checkout: the SQLite database of the
# embedded default, the generated secret key, logs, and (by default) the local fleet.
VAR_DIR = Path(os.getenv("DR_VAR_DIR", str(BASE_DIR / "var")))


def _secret_key() -> str:
    if key := os.getenv("SECRET_KEY"):
        return key
    # Embedded default: generate once, keep it beside the database, readable by us only.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", "false")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "restores",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dr_console.urls"

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
            # {% partialdef %} everywhere (built into Django 6).
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

WSGI_APPLICATION = "dr_console.wsgi.application"

# The embedded default keeps the console's own database in SQLite; the test suite and any
# deployment use PostgreSQL through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'console.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "60"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL journal, and IMMEDIATE transactions so a
    # writer waits for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "restores:fleet"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve static/ (and django-htmx's vendored htmx) straight from the app directories too, so a
# checkout works before `collectstatic`.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "false")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Celery (Redis) ---------------------------------------------------------------------------
REDIS_URL = os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# How often the beat sweep resumes operations a lost message or a dead worker left behind,
# and how often the inventory is refreshed from the platforms (seconds).
DR_SWEEP_INTERVAL = envint("DR_SWEEP_INTERVAL", "10")
DR_INVENTORY_INTERVAL = envint("DR_INVENTORY_INTERVAL", "30")
# Each inventory sync lists every cluster (a few API calls per platform) but asks pgBackRest
# (on Kubernetes: two execs in the leader pod) only about clusters whose backups may have
# changed: new ones, those whose platform status says so (PGO's status.pgbackrest), those with
# an operation running, and those whose copy is DR_REPO_MAX_AGE seconds old (each cluster up
# to half of it earlier, so clusters read together come due over several syncs), since WAL
# archiving moves the window's end without any status change: the Fleet page's windows lag by
# up to that much (0: ask about every cluster on every sync). The clone wizard and a clone's
# first step read their source afresh anyway. DR_SYNC_CONCURRENCY: how many clusters are
# asked at once (threads; the database is written by the sync's own thread).
DR_REPO_MAX_AGE = envint("DR_REPO_MAX_AGE", "300", minimum=0)
DR_SYNC_CONCURRENCY = envint("DR_SYNC_CONCURRENCY", "8", minimum=1)
# How often a live page polls (seconds): the cluster page's regions, the clone wizard.
DR_POLL_INTERVAL = envint("DR_POLL_INTERVAL", "2")
# How often the page of an operation in flight polls its progress (seconds). Shorter: the
# worker records a step up to a second after the platform moved, and a change must show
# within DR_POLL_INTERVAL + 0.5 s (issue #5); the unchanged answer is a 204 of ~2 ms.
DR_OPERATION_POLL_INTERVAL = envint("DR_OPERATION_POLL_INTERVAL", "1")

# --- Platforms --------------------------------------------------------------------------------
# Comma-separated: local, kubernetes.
DR_PLATFORMS = envlist("DR_PLATFORMS", "local")
# The local platform: a fleet directory with each cluster's data, port, logs and pgBackRest
# configuration; servers run as DR_LOCAL_USER (PostgreSQL refuses root).
DR_FLEET_DIR = Path(os.getenv("DR_FLEET_DIR", str(VAR_DIR / "fleet")))
DR_LOCAL_USER = os.getenv("DR_LOCAL_USER", "")
DR_LOCAL_NAMESPACE = os.getenv("DR_LOCAL_NAMESPACE", "local")
DR_LOCAL_PORT_BASE = envint("DR_LOCAL_PORT_BASE", "55432")
DR_PG_BINDIR = os.getenv("DR_PG_BINDIR", "")
# How soon an operation's next step looks again at a local restore, backup or server it waits
# for (milliseconds): a restore's end and its promotion are each seen up to this late. The
# sweep (DR_SWEEP_INTERVAL) and the Kubernetes platform (1 s) keep their own pace.
DR_LOCAL_POLL_MS = envint("DR_LOCAL_POLL_MS", "250", minimum=10)

# --- Kubernetes platform (PGO) ------------------------------------------------------------------
# A kubeconfig file and context (empty: the client's defaults), or the pod's service account
# (DR_KUBE_IN_CLUSTER=true, as deploy/ runs it); the namespaces whose PostgresClusters the
# console manages (comma-separated); the timeout of one API request (seconds); how long PGO may
# leave a backup/restore annotation unconsumed, or a clone's restore unstarted, before the
# operation is reported as stuck (seconds).
DR_KUBECONFIG = os.getenv("DR_KUBECONFIG", "")
DR_KUBE_CONTEXT = os.getenv("DR_KUBE_CONTEXT", "")
DR_KUBE_IN_CLUSTER = envbool("DR_KUBE_IN_CLUSTER", "false")
DR_KUBE_NAMESPACES = envlist("DR_KUBE_NAMESPACES", "default")
DR_KUBE_TIMEOUT = envint("DR_KUBE_TIMEOUT", "30")
DR_KUBE_STUCK_AFTER = envint("DR_KUBE_STUCK_AFTER", "300")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}
