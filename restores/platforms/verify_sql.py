"""The read-only queries a drill runs in its restored copy (Platform.verify), shared by the
local platform (psycopg) and the Kubernetes one (`psql` in the leader pod)."""

from __future__ import annotations

SERVER = (
    "select current_setting('server_version'), pg_is_in_recovery(), "
    "(select system_identifier from pg_control_system())::text, "
    "pg_last_xact_replay_timestamp()"
)
DATABASES = (
    "select datname, pg_database_size(oid) from pg_database "
    "where datallowconn and not datistemplate order by datname"
)
USER_TABLES = (
    "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
    "where c.relkind in ('r', 'p') and n.nspname <> 'information_schema' "
    "and n.nspname !~ '^pg_'"
)
