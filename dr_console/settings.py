"""DR Console settings: one file, driven by environment variables.

Every setting a deployment may change is read here with a helper that fails loudly on a bad
value. The README's "Configuration" section lists them.
"""

from __future__ import annotations

import datetime as dt
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
# embedded default, the generated secret key, logs, and (by default) the local fleet. Private
# to the account the console runs as (0700): the database holds the session keys.
VAR_DIR = Path(os.getenv("DR_VAR_DIR", str(BASE_DIR / "var")))


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.geteuid():
        path.chmod(0o700)
    return path


_private_dir(VAR_DIR)


def _secret_key() -> str:
    if key := os.getenv("SECRET_KEY"):
        return key
    # Embedded default: generate once, keep it beside the database, readable by us only.
    path = VAR_DIR / "secret_key"
    if not path.exists():
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
    "axes",
    "csp",
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
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The idle timeout, the login redirect of a background poll, and who is asking (the audit
    # log's address): after the session, the user and htmx are known.
    "restores.middleware.console_middleware",
    # Last, as django-axes asks: it answers a locked-out login.
    "axes.middleware.AxesMiddleware",
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
    # Readable by the console's own account only (the sessions are in it): created 0600 here,
    # before SQLite makes it with the umask's mode; its -wal and -shm files take that mode.
    _sqlite = Path(DATABASES["default"]["NAME"])
    if not _sqlite.exists() and _sqlite.parent.is_dir():
        os.close(os.open(_sqlite, os.O_WRONLY | os.O_CREAT, 0o600))
    if _sqlite.exists() and _sqlite.stat().st_uid == os.geteuid():
        _sqlite.chmod(0o600)
    # Web, worker and beat share the file: WAL journal, and IMMEDIATE transactions so a
    # writer waits for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

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

# --- Sessions, login throttling, transport security ------------------------------------------
# A session ends after DR_SESSION_IDLE_SECONDS without a request from its user (the pages'
# background polls do not count: restores.middleware), and when the browser closes.
SESSION_COOKIE_AGE = envint("DR_SESSION_IDLE_SECONDS", str(8 * 3600), minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "false")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# django-axes: after DR_LOGIN_FAILURE_LIMIT failed logins for one username, or from one
# address, every further attempt for it (a correct password included) is refused for
# DR_LOGIN_COOLOFF_MINUTES. Attempts are kept in the database, shared by every web worker.
AXES_FAILURE_LIMIT = envint("DR_LOGIN_FAILURE_LIMIT", "10", minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=envint("DR_LOGIN_COOLOFF_MINUTES", "15", minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# The client's address, for the lock-out and the audit log: REMOTE_ADDR, or behind
# DR_TRUSTED_PROXY_COUNT proxies the address the outermost of them saw (X-Forwarded-For).
DR_TRUSTED_PROXY_COUNT = envint("DR_TRUSTED_PROXY_COUNT", "0", minimum=0)
AXES_CLIENT_IP_CALLABLE = "restores.middleware.client_address"

# HTTPS: set all four behind TLS (deploy/ does); `manage.py check --deploy` then reports no
# issue. SECURE_PROXY_SSL_HEADER names the header a TLS-terminating proxy sets
# ("X-Forwarded-Proto", or "X-Forwarded-Proto=https" to name the value too).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0", minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "true")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "true")
if _proxy := os.getenv("SECURE_PROXY_SSL_HEADER", "").strip():
    _header, _, _value = _proxy.partition("=")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header.strip().upper().replace("-", "_"),
                               _value.strip() or "https")
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): only the console's own scripts, styles and requests;
# no inline script or style anywhere, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

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

# --- Drills -----------------------------------------------------------------------------------
# How often the drill scheduler looks for due slots (seconds). A scheduled run starts when
# its cluster has no other drill and its platform fewer than DR_DRILL_CONCURRENCY at once;
# one that could not start within DR_DRILL_START_WINDOW seconds of its slot (or before the
# plan's next slot, if sooner) is recorded as missed, with the reason. A drill's SQL checks
# run read-only, each stopped after DR_DRILL_STATEMENT_TIMEOUT seconds.
DR_DRILL_BEAT_INTERVAL = envint("DR_DRILL_BEAT_INTERVAL", "30", minimum=1)
DR_DRILL_CONCURRENCY = envint("DR_DRILL_CONCURRENCY", "2", minimum=1)
DR_DRILL_START_WINDOW = envint("DR_DRILL_START_WINDOW", "3600", minimum=10)
DR_DRILL_STATEMENT_TIMEOUT = envint("DR_DRILL_STATEMENT_TIMEOUT", "60", minimum=1)

# --- Access -----------------------------------------------------------------------------------
# The two-person rule: where a cluster's "platform/namespace" matches one of these patterns
# (`*` matches any part; "*" alone, every cluster), operations of DR_TWO_PERSON_KINDS wait
# for a second admin's approval, for at most DR_APPROVAL_TTL seconds. Empty: off (the
# embedded demo, with its one admin); deploy/ turns it on everywhere.
DR_TWO_PERSON_RULE = envlist("DR_TWO_PERSON_RULE", "")
DR_TWO_PERSON_KINDS = envlist("DR_TWO_PERSON_KINDS",
                              "restore_in_place,restore_database,promote,shutdown")
DR_APPROVAL_TTL = envint("DR_APPROVAL_TTL", "3600", minimum=60)

# The one wait a request makes on a platform (services/live.py: is a name free, the review's
# dry run), in seconds.
DR_LIVE_CHECK_TIMEOUT = envint("DR_LIVE_CHECK_TIMEOUT", "10", minimum=1)

# --- Platforms --------------------------------------------------------------------------------
# Comma-separated: local, kubernetes.
DR_PLATFORMS = envlist("DR_PLATFORMS", "local")
# The local platform: a fleet directory with each cluster's data, port, logs and pgBackRest
# configuration; servers run as DR_LOCAL_USER (PostgreSQL refuses root).
# As root the fleet cannot sit in VAR_DIR (0700, and its servers run as DR_LOCAL_USER).
DR_FLEET_DIR = Path(os.getenv("DR_FLEET_DIR", "/var/lib/dr-console/fleet" if os.geteuid() == 0
                              else str(VAR_DIR / "fleet")))
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
    # django-axes logs every successful login's reset at INFO; the audit log records logins.
    "loggers": {"axes": {"level": "WARNING"}},
}
