"""SQL on local clusters (psycopg over the fleet's unix socket) and the demo data set."""

from __future__ import annotations

import shlex
from typing import Any

import psycopg
from psycopg import sql as pgsql

from ..base import PermanentError, TransientError
from .fleet import ClusterRecord, Fleet
from .proc import Runner

Query = str | pgsql.Composable

# Databases a cluster's demo database cannot be named like.
RESERVED_DATABASES = {"postgres", "template0", "template1", "reporting"}

DEMO_USERS = (
    """create table if not exists users (
        id serial primary key,
        name text not null,
        email text not null unique,
        created_at timestamptz not null default now())""",
    """insert into users (name, email)
        select 'User ' || g, 'user' || g || '@example.com' from generate_series(1, 1000) g
        on conflict (email) do nothing""",
)
DEMO_REPORTING = (
    "create table if not exists daily_signups (day date primary key, signups integer not null)",
    """insert into daily_signups
        select current_date - g, (g * 37) % 100 from generate_series(0, 29) g
        on conflict (day) do nothing""",
)


# The database a connect line names, one that exists: the one named like the cluster, else
# the largest user database (a clone of hippo holds hippo's), else postgres. A column of the
# status query, so it costs no query of its own.
DATABASE_TO_NAME = """coalesce(
    (select datname from pg_database where datname = %s and datallowconn),
    (select datname from pg_database
      where not datistemplate and datallowconn and datname <> 'postgres'
      order by pg_database_size(oid) desc, datname limit 1),
    'postgres')"""


def connect_hint(fleet: Fleet, record: ClusterRecord, database: str = "postgres") -> str:
    """The psql command line a DBA can paste, into `database` (one that exists: see
    DATABASE_TO_NAME; postgres while the server is down)."""
    argv = ["psql", "-h", str(fleet.run_dir), "-p", str(record.port), "-U", "postgres"]
    return shlex.join([*argv, database])


def query(
    fleet: Fleet,
    record: ClusterRecord,
    statement: Query,
    *,
    database: str = "postgres",
    params: tuple[Any, ...] | None = None,
    read_only_timeout: float | None = None,
) -> list[tuple]:
    """Run one statement in autocommit as `postgres`; its rows, or [] when it returns none.
    TransientError when the server cannot be reached or drops the connection;
    PermanentError when PostgreSQL rejects the statement (retrying will not help).
    `read_only_timeout`: the session is read-only and a statement stops after that many
    seconds (a drill's SQL checks)."""
    options = ("" if read_only_timeout is None else
               f"-c default_transaction_read_only=on "
               f"-c statement_timeout={int(read_only_timeout * 1000)}")
    try:
        conn = psycopg.connect(
            host=str(fleet.run_dir),
            port=record.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=5,
            **({"options": options} if options else {}),
        )
    except psycopg.OperationalError as exc:
        raise TransientError(f"Cannot connect to {record.name}: {_first_line(exc)}") from exc
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []
    except psycopg.OperationalError as exc:
        raise TransientError(f"{record.name}: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise PermanentError(f"{record.name} rejected the statement: {_first_line(exc)}") from exc


def load_demo_data(fleet: Fleet, runner: Runner, record: ClusterRecord) -> None:
    """Database <cluster name> with `users` (1000 rows) and pgbench -s 1 tables, database
    `reporting` with one table, then a WAL switch so it all reaches the repo. Safe to
    repeat: the inserts skip existing rows and pgbench -i recreates its tables."""
    db = record.name
    if db in RESERVED_DATABASES:
        raise PermanentError(f"A cluster named {db!r} cannot hold the demo database {db!r}.")
    _create_database(fleet, record, db)
    for statement in DEMO_USERS:
        query(fleet, record, statement, database=db)
    connection = ["-h", str(fleet.run_dir), "-p", str(record.port), "-U", "postgres"]
    pgbench = str(runner.bindir / "pgbench")
    runner.run([pgbench, "-i", "-s", "1", "-q", *connection, db], what="pgbench -i")
    _create_database(fleet, record, "reporting")
    for statement in DEMO_REPORTING:
        query(fleet, record, statement, database="reporting")
    query(fleet, record, "select pg_switch_wal()")


def _create_database(fleet: Fleet, record: ClusterRecord, name: str) -> None:
    exists = query(fleet, record, "select 1 from pg_database where datname = %s", params=(name,))
    if not exists:
        statement = pgsql.SQL("create database {}").format(pgsql.Identifier(name))
        query(fleet, record, statement)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
