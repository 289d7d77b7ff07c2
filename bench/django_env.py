"""The bench's own PostgreSQL database, and Django set up against it.

The bench never writes to the console's database or the test database. It uses one dedicated
database, `dr_console_bench`, on the same server:

- BENCH_DATABASE_URL, when set, is used as it is;
- else DATABASE_URL's server and credentials, with the database name replaced by
  dr_console_bench (so a DATABASE_URL naming the console's own database is never seeded);
- else postgres://postgres@127.0.0.1:5432/dr_console_bench, with the password
  scripts/test.sh keeps in var/pg_password when the server needs one.

Each fleet scale is seeded into its own schema of that database (see bench/fleet.py), so a
quick run and a full run do not undo each other's seed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from bench.framework import BenchError

BENCH_DB = "dr_console_bench"
ROOT = Path(__file__).resolve().parent.parent
_POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")

_ready_url: str | None = None


def database_url(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if url := env.get("BENCH_DATABASE_URL"):
        return url
    url = env.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme in _POSTGRES_SCHEMES:
        return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    password = ""
    pw_file = Path(env.get("DR_VAR_DIR", str(ROOT / "var"))) / "pg_password"
    if pw_file.is_file():
        password = pw_file.read_text().strip()
    auth = f"postgres:{quote(password, safe='')}" if password else "postgres"
    return f"postgres://{auth}@127.0.0.1:5432/{BENCH_DB}"


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _connect_kwargs(url: str) -> dict[str, Any]:
    import dj_database_url

    cfg = dj_database_url.parse(url)
    kwargs: dict[str, Any] = {
        "host": cfg.get("HOST") or None,
        "port": cfg.get("PORT") or None,
        "user": cfg.get("USER") or None,
        "password": cfg.get("PASSWORD") or None,
        "connect_timeout": 10,
    }
    kwargs.update(cfg.get("OPTIONS") or {})
    return {k: v for k, v in kwargs.items() if v is not None} | {"dbname": cfg["NAME"]}


def ensure_database(url: str) -> None:
    """Create the bench database if the server does not have it yet."""
    import psycopg
    from psycopg import sql

    kwargs = _connect_kwargs(url)
    name = kwargs.pop("dbname")
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **kwargs) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise BenchError(
            f"cannot open the bench database {redact(url)}: {str(exc).strip()}. Start PostgreSQL "
            "(./scripts/test.sh sets it up once) or point BENCH_DATABASE_URL at a server where "
            "the bench may create a database."
        ) from exc


def setup() -> str:
    """Set Django up against the bench database (once per process); return its URL."""
    global _ready_url
    if _ready_url is not None:
        return _ready_url
    url = database_url()
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dr_console.settings")
    # Measure what a deployment runs: no debug pages, no query log kept per request.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.conf import settings

    django.setup()
    name = settings.DATABASES["default"]["NAME"]
    if name != _connect_kwargs(url)["dbname"]:
        raise BenchError(
            f"Django was configured before the bench chose its database (it uses {name!r}); "
            "run the bench in its own process: python -m bench"
        )
    _ready_url = url
    return url


def use_schema(schema: str | None) -> None:
    """Point the default connection at one schema of the bench database (None: the default
    search path). Closes the connection; the next query reconnects."""
    from django.db import connection

    connection.close()
    options = dict(connection.settings_dict.get("OPTIONS") or {})
    if schema is None:
        options.pop("options", None)
    else:
        options["options"] = f"-c search_path={schema}"
    connection.settings_dict["OPTIONS"] = options


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0]).split()[0]
