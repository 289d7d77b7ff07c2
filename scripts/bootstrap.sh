#!/usr/bin/env bash
# Make a Debian/Ubuntu machine ready to run DR Console from this checkout.
#
#   scripts/bootstrap.sh [--with-browser] [--with-postgres-db] [--python-only]
#   . scripts/bootstrap.sh [same options]     # also exports the variables below to the caller
#                                             # (sourced with no options it sees the caller's
#                                             # arguments, as bash does: `set --` first)
#
# Idempotent and quiet when everything is already there. Installs Debian packages only when
# something is missing (as root, or through sudo), starts Redis if it does not answer, creates
# the unprivileged user the local fleet's PostgreSQL servers run as (when root), and keeps
# .venv in step with requirements.txt.
#
#   --with-browser       also Debian's Chromium (the Playwright tests drive /usr/bin/chromium)
#   --with-postgres-db   a PostgreSQL server on 127.0.0.1:5432 for the console's own database
#                        (the test suite); skipped when DATABASE_URL is already set
#   --python-only        only .venv (for lint): no Debian packages, services or users
#
# Exports (when sourced): DR_LOCAL_USER, DATABASE_URL (when --with-postgres-db set it up), and
# PATH with .venv/bin first. The same lines are written to var/bootstrap.env.

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the work in a child shell with strict error handling, then take its exports.
    _dr_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
    bash "$_dr_root/scripts/bootstrap.sh" "$@" || { _dr_rc=$?; unset _dr_root; return "$_dr_rc"; }
    # shellcheck source=/dev/null
    . "${DR_VAR_DIR:-$_dr_root/var}/bootstrap.env"
    unset _dr_root
    return 0
fi

set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${DR_VAR_DIR:-$ROOT/var}"
VENV="$ROOT/.venv"

with_browser=0
with_pgdb=0
python_only=0
for arg in "$@"; do
    case "$arg" in
        --with-browser) with_browser=1 ;;
        --with-postgres-db) with_pgdb=1 ;;
        --python-only) python_only=1 ;;
        -h | --help) sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "bootstrap: unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Root does it directly; anyone else through sudo (without a prompt when there is no terminal).
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif have sudo; then
        if [[ -t 0 ]]; then sudo -- "$@"; else sudo -n -- "$@"; fi
    else
        die "this step needs root or sudo: $*"
    fi
}
as_postgres() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    elif [[ -t 0 ]]; then
        sudo -u postgres -- "$@"
    else
        sudo -n -u postgres -- "$@"
    fi
}

newest_entry() { # the highest version-sorted name in a directory, or nothing
    [[ -d "$1" ]] || return 0
    find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1
}

# --- Python: which interpreter, and can it make a venv ----------------------------------------
# As root, the console itself runs as an unprivileged account (scripts/run.sh), so the venv's
# interpreter must be one any account can run: not one under /root (a pyenv build, say).
others_can_run() { ((EUID != 0)) || runuser -u nobody -- "$1" -c '' >/dev/null 2>&1; }
py_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && others_can_run "$1"
}
find_python() {
    local c
    for c in python3 python3.11 python3.12 python3.13 /usr/bin/python3 /usr/bin/python3.11; do
        if have "$c" && py_ok "$(command -v "$c")"; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}
# Whether other accounts can enter the checkout at all (not below mktemp -d's 0700 or /root).
checkout_open() { ((EUID != 0)) || runuser -u nobody -- test -x "$ROOT" >/dev/null 2>&1; }
# A .venv the unprivileged account can run; in a checkout it cannot enter, one root can run
# (the tests run as root; run.sh refuses such a checkout with its own message).
venv_ok() {
    [[ -x "$VENV/bin/python" ]] \
        && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
        && { others_can_run "$VENV/bin/python" || ! checkout_open; }
}
make_venv() { # $1: interpreter
    rm -rf "$VENV"
    if "$1" -m venv "$VENV" >/dev/null 2>&1 && venv_ok; then
        return 0
    fi
    rm -rf "$VENV"
    return 1
}

pkgs=()
PY=""
if ! venv_ok; then
    [[ -e "$VENV" ]] && say "recreating .venv (its Python is missing, older than 3.11, or one" \
        "the console's unprivileged account cannot run)"
    if PY="$(find_python)"; then
        make_venv "$PY" || pkgs+=(python3-venv)
    elif ! have python3 || [[ ! -x /usr/bin/python3 ]]; then
        # none at all, or only one the unprivileged account cannot run: Debian's python3
        pkgs+=(python3 python3-venv)
    else
        die "DR Console needs Python >= 3.11; this machine has $(python3 --version 2>&1) \
(Debian 12+ and Ubuntu 24.04+ ship a new enough python3)"
    fi
fi

# --- Debian packages, only those missing -------------------------------------------------------
if ((!python_only)); then
    if [[ -n "${DR_PG_BINDIR:-}" && -x "${DR_PG_BINDIR}/initdb" ]]; then
        :
    elif ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || ! have pg_ctlcluster; then
        pkgs+=(postgresql)
    fi
    if ((with_pgdb)) && { ! have pg_isready || ! have psql; }; then
        pkgs+=(postgresql-client)
    fi
    have pgbackrest || pkgs+=(pgbackrest)
    { have redis-server && have redis-cli; } || pkgs+=(redis-server)
    # The drill report's PDF (WeasyPrint draws with Pango); its tests read the PDF back with
    # poppler's pdftotext and pdftoppm.
    # (HarfBuzz's subsetter trims the PDF's fonts several times faster than fontTools).
    compgen -G '/usr/lib/*-linux-gnu/libpangoft2-1.0.so.0' >/dev/null \
        || pkgs+=(libpango-1.0-0 libpangoft2-1.0-0)
    compgen -G '/usr/lib/*-linux-gnu/libharfbuzz-subset.so.0' >/dev/null \
        || pkgs+=(libharfbuzz-subset0)
    { have pdftotext && have pdftoppm; } || pkgs+=(poppler-utils)
    if ((with_browser)) && [[ ! -x /usr/bin/chromium ]]; then
        pkgs+=(chromium)
    fi
fi

if ((${#pkgs[@]})); then
    say "installing Debian packages: ${pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${pkgs[@]}"
fi

if ! venv_ok; then
    PY="$(find_python)" || die "DR Console needs Python >= 3.11; found $(python3 --version 2>&1)"
    if ! make_venv "$PY"; then
        die "$PY -m venv failed: install the python3-venv package for $("$PY" --version)"
    fi
fi
checkout_open || say "warning: other accounts cannot enter $ROOT (a parent directory is" \
    "closed to them): the tests run, but run.sh will refuse to serve from here"

# --- Python packages, when requirements.txt changed --------------------------------------------
want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
stamp="$VENV/.requirements.sha256"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    say "installing Python packages from requirements.txt into .venv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
    printf '%s\n' "$want" >"$stamp"
fi

mkdir -p "$VAR_DIR"

# --- Redis (the Celery broker) -----------------------------------------------------------------
redis_up() { [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]; }
if ((!python_only)) && [[ -z "${REDIS_URL:-}" ]] && ! redis_up; then
    say "starting Redis on 127.0.0.1:6379"
    mkdir -p "$VAR_DIR/log"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir "$VAR_DIR" --logfile "$VAR_DIR/log/redis.log" >/dev/null
    for _ in $(seq 50); do redis_up && break; sleep 0.2; done
    redis_up || die "Redis did not answer on 127.0.0.1:6379 (see $VAR_DIR/log/redis.log)"
fi

# --- The unprivileged user the local fleet's PostgreSQL servers run as -------------------------
if ((!python_only)) && ((EUID == 0)) && [[ -z "${DR_LOCAL_USER:-}" ]]; then
    if ! id -u drconsole >/dev/null 2>&1; then
        say "creating system user drconsole (runs the local fleet's PostgreSQL servers)"
        useradd --system --no-create-home --shell /usr/sbin/nologin drconsole
    fi
    DR_LOCAL_USER=drconsole
fi

# --- PostgreSQL for the console's own database (tests) -----------------------------------------
db_url=""
pg_try() { # $1: password ("" for none); succeeds when psql over TCP works
    PGPASSWORD="$1" PGPASSFILE=/nonexistent/.pgpass psql -w -X -q -h 127.0.0.1 -p 5432 -U postgres \
        -d postgres -tAc 'select 1' >/dev/null 2>&1
}
if ((with_pgdb)) && [[ -z "${DATABASE_URL:-}" ]]; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        ver="$(newest_entry /etc/postgresql)"
        if [[ -z "$ver" || ! -d "/etc/postgresql/$ver/main" ]]; then
            ver="${ver:-$(newest_entry /usr/lib/postgresql)}"
            [[ -n "$ver" ]] || die "no PostgreSQL server installed under /usr/lib/postgresql"
            say "creating PostgreSQL cluster $ver/main on port 5432"
            (cd / && as_root pg_createcluster --port 5432 "$ver" main >/dev/null)
        fi
        say "starting PostgreSQL cluster $ver/main"
        (cd / && as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start)
        for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
        pg_isready -q -h 127.0.0.1 -p 5432 \
            || die "PostgreSQL $ver/main started but does not accept connections on 127.0.0.1:5432"
    fi

    pw_file="$VAR_DIR/pg_password"
    pw=""
    if pg_try ""; then
        :
    else
        if [[ -s "$pw_file" ]]; then
            pw="$(cat "$pw_file")"
        else
            pw="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
            (umask 077 && printf '%s\n' "$pw" >"$pw_file")
        fi
        chmod 600 "$pw_file"
        if ! pg_try "$pw"; then
            say "setting a password for the postgres role (kept in ${pw_file#"$ROOT"/})"
            # On stdin, not the command line, so it never shows in a process listing.
            printf "ALTER ROLE postgres PASSWORD '%s';\n" "$pw" \
                | (cd / && as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null)
            pg_try "$pw" || die "psql -h 127.0.0.1 -U postgres still fails with the password in \
$pw_file: check the host lines of pg_hba.conf"
        fi
    fi
    if [[ -n "$pw" ]]; then
        db_url="postgres://postgres:${pw}@127.0.0.1:5432/dr_console"
    else
        db_url="postgres://postgres@127.0.0.1:5432/dr_console"
    fi
    exists="$(PGPASSWORD="$pw" PGPASSFILE=/nonexistent/.pgpass psql -w -X -q -h 127.0.0.1 -U postgres \
        -d postgres -tAc "select 1 from pg_database where datname = 'dr_console'")"
    if [[ "$exists" != "1" ]]; then
        say "creating database dr_console"
        PGPASSWORD="$pw" PGPASSFILE=/nonexistent/.pgpass psql -w -X -q -h 127.0.0.1 -U postgres -d postgres \
            -c 'CREATE DATABASE dr_console' >/dev/null
    fi
fi

# --- Exports for the caller -------------------------------------------------------------------
env_file="$VAR_DIR/bootstrap.env"
tmp="$(mktemp "$VAR_DIR/.bootstrap.env.XXXXXX")" # mode 0600: it may hold the database password
{
    echo "# Written by scripts/bootstrap.sh on every run; sourced by scripts/run.sh and test.sh."
    if [[ -n "${DR_LOCAL_USER:-}" ]]; then
        printf 'export DR_LOCAL_USER=%q\n' "$DR_LOCAL_USER"
    fi
    if [[ -n "$db_url" ]]; then
        printf 'export DATABASE_URL=%q\n' "$db_url"
    fi
    # shellcheck disable=SC2016 # $PATH is for the sourcing shell to expand
    printf 'case ":$PATH:" in *:%q:*) ;; *) export PATH=%q:"$PATH" ;; esac\n' \
        "$VENV/bin" "$VENV/bin"
} >"$tmp"
mv -f "$tmp" "$env_file"
