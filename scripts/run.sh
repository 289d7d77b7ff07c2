#!/usr/bin/env bash
# Bring up DR Console at http://127.0.0.1:8000 with a local demo fleet.
#
#   scripts/run.sh [--no-demo]
#
# Installs what is missing (scripts/bootstrap.sh), migrates the console's database (SQLite in
# var/ unless DATABASE_URL is set), creates the first admin (its password is printed once),
# creates and starts the demo cluster "hippo" with data and a full backup (skip with
# --no-demo), starts a Celery worker with beat in the background (log: var/log/celery.log) and
# serves the console with gunicorn in the foreground. Ctrl-C stops both.
#
# Started as root, it installs what is missing as root, then runs everything else (the
# database, the demo fleet, the worker, the web) as the unprivileged DR_LOCAL_USER
# (drconsole), the account the local fleet's PostgreSQL servers run as: the console never
# runs as root. That account must be able to read this checkout.
#
#   DR_BIND             address:port to serve on (default 127.0.0.1:8000)
#   DR_ADMIN_PASSWORD   the first admin's password (default: generated and printed once)
#   DR_FLEET_DIR        where the local fleet lives (as root: /var/lib/dr-console/fleet)
set -euo pipefail

demo=1
for arg in "$@"; do
    case "$arg" in
        --no-demo) demo=0 ;;
        -h | --help) sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "run.sh: unknown option: $arg (see --help)" >&2; exit 2 ;;
    esac
done

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Sourced with no arguments, bootstrap.sh would see ours: clear them first.
set --
# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh"

VAR_DIR="${DR_VAR_DIR:-$ROOT/var}"
PY="$ROOT/.venv/bin/python"
BIND="${DR_BIND:-127.0.0.1:8000}"

# As root: everything from here on runs as the unprivileged account. It owns the console's
# private state (VAR_DIR, 0700) and the fleet, which stays outside the checkout.
as_console=()
if ((EUID == 0)); then
    account="${DR_LOCAL_USER:-drconsole}"
    if ! runuser -u "$account" -- test -r "$ROOT/manage.py" -a -x "$PY"; then
        echo "run.sh: $account (the account the console runs as) cannot read $ROOT: it sits" \
            "under a directory only root may enter. Move the checkout (e.g. to /opt), or run" \
            "run.sh as a non-root user with sudo rights." >&2
        exit 1
    fi
    export DR_FLEET_DIR="${DR_FLEET_DIR:-/var/lib/dr-console/fleet}"
    install -d -m 0755 "$(dirname "$DR_FLEET_DIR")"
    install -d -o "$account" -g "$account" -m 0750 "$DR_FLEET_DIR"
    install -d -o "$account" -g "$account" -m 0700 "$VAR_DIR" "$VAR_DIR/run" "$VAR_DIR/log"
    # What an earlier run as root left (the key, the database, collected static files).
    for owned in "$VAR_DIR"/secret_key "$VAR_DIR"/console.sqlite3* "$VAR_DIR"/static \
        "$VAR_DIR"/run "$VAR_DIR"/log; do
        [[ -e "$owned" ]] && chown -R "$account:$account" "$owned"
    done
    as_console=(runuser -u "$account" --)
    echo "run.sh: the console runs as $account, not root"
fi
# (runuser passes TERM on to the program, so the pids below stop what they started.)
console() { "${as_console[@]}" "$@"; }

console "$PY" manage.py migrate --noinput
console "$PY" manage.py collectstatic --noinput --verbosity 0
console "$PY" manage.py ensure_admin
if ((demo)); then
    console "$PY" manage.py fleet_demo
fi

console mkdir -p "$VAR_DIR/run" "$VAR_DIR/log"
pidfile="$VAR_DIR/run/celery.pid"

stop_pid() { # TERM, wait up to 20 s (a warm shutdown finishes the running step), then KILL
    local pid="$1" _
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# A worker left over from a previous run (only if that pid is still a celery process).
if [[ -f "$pidfile" ]]; then
    old="$(cat "$pidfile")"
    if [[ "$old" =~ ^[0-9]+$ ]] && grep -qa celery "/proc/$old/cmdline" 2>/dev/null; then
        echo "run.sh: stopping the previous Celery worker (pid $old)"
        stop_pid "$old"
    fi
    rm -f "$pidfile"
fi

"${as_console[@]}" "$ROOT/.venv/bin/celery" -A dr_console worker --beat --concurrency 2 --loglevel INFO \
    --schedule-filename "$VAR_DIR/run/celerybeat-schedule" >>"$VAR_DIR/log/celery.log" 2>&1 &
celery_pid=$!
echo "$celery_pid" >"$pidfile"

web_pid=""
cleanup() {
    trap - EXIT INT TERM
    if [[ -n "$web_pid" ]]; then stop_pid "$web_pid"; fi
    stop_pid "$celery_pid"
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

host="${BIND%:*}"
port="${BIND##*:}"
case "$host" in
    0.0.0.0 | "[::]") url="http://<this host>:$port/ (listening on every address)" ;;
    *) url="http://$BIND/" ;;
esac
cat <<EOF

  DR Console: $url
  Log in with the admin account shown above by ensure_admin (its password is printed only
  when the account is created; set DR_ADMIN_PASSWORD to choose it).
  Celery worker + beat: pid $celery_pid, log ${VAR_DIR}/log/celery.log
  Stop with Ctrl-C.

EOF

# In the background with a wait, so that a TERM to this script runs the trap right away.
"${as_console[@]}" "$ROOT/.venv/bin/gunicorn" dr_console.wsgi --bind "$BIND" --workers 2 --access-logfile - &
web_pid=$!
wait "$web_pid"
