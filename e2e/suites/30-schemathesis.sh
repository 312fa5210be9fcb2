#!/usr/bin/env bash
# Contract fuzzing of the REST API: schemathesis generates requests from the live server's
# /api/openapi.json and checks every response against it: no 5xx, only documented status
# codes, content types and headers, bodies that match their schemas, invalid input
# rejected, valid input accepted. Authenticated operations get a bearer token.
#
# One pass on SQLite, and one on PostgreSQL when the test services are up
# (CONFAB_TEST_PG_URL from scripts/services.sh): some input only breaks one database (text
# with U+0000 is refused by PostgreSQL alone). Each pass: e2e/schemathesis/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check -r e2e/schemathesis/requirements.txt
fi

# The two passes are independent (a server each, on a port of its own) and each spends most
# of its time in schemathesis waiting on the server: run them side by side, each into its own
# log, printed in order.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
bash e2e/schemathesis/run.sh >"$logs/sqlite.log" 2>&1 &
sqlite=$!

postgres=""
database=""
if [ -z "${CONFAB_TEST_PG_URL:-}" ] || ! command -v psql >/dev/null 2>&1; then
    echo "skipped: no CONFAB_TEST_PG_URL or no psql" >"$logs/postgres.log"
else
    database="confab_schemathesis_$$"
    psql "$CONFAB_TEST_PG_URL" -qc "CREATE DATABASE $database"
    bash e2e/schemathesis/run.sh DATABASE_URL="${CONFAB_TEST_PG_URL%/*}/$database" >"$logs/postgres.log" 2>&1 &
    postgres=$!
fi

status=0
wait "$sqlite" || status=$?
echo "== schemathesis on SQLite"; cat "$logs/sqlite.log"
if [ -n "$postgres" ]; then
    wait "$postgres" || status=$?
    psql "$CONFAB_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
fi
echo "== schemathesis on PostgreSQL"; cat "$logs/postgres.log"
exit "$status"
