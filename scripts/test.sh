#!/usr/bin/env bash
# Run DR Console's whole test suite: unit, integration (real PostgreSQL + pgBackRest) and
# browser (Playwright on Debian's /usr/bin/chromium, with a real Celery worker).
#
#   scripts/test.sh [pytest arguments...]      e.g. scripts/test.sh -m "not e2e" -x
#
# Installs what is missing first (scripts/bootstrap.sh --with-browser --with-postgres-db).
# Browsers are never downloaded: there is no `playwright install` here.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/bootstrap.sh
. "$ROOT/scripts/bootstrap.sh" --with-browser --with-postgres-db

rc=0
"$ROOT/.venv/bin/python" -m pytest "$@" || rc=$?

if ((rc == 5)); then
    echo "test.sh: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"
