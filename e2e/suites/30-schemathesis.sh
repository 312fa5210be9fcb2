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

echo "== schemathesis on SQLite"
bash e2e/schemathesis/run.sh

if [ -z "${CONFAB_TEST_PG_URL:-}" ] || ! command -v psql >/dev/null 2>&1; then
    echo "== schemathesis on PostgreSQL: skipped (no CONFAB_TEST_PG_URL or no psql)"
    exit 0
fi
echo "== schemathesis on PostgreSQL"
database="confab_schemathesis_$$"
psql "$CONFAB_TEST_PG_URL" -qc "CREATE DATABASE $database"
status=0
bash e2e/schemathesis/run.sh DATABASE_URL="${CONFAB_TEST_PG_URL%/*}/$database" || status=$?
psql "$CONFAB_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
exit "$status"
