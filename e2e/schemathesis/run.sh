#!/usr/bin/env bash
# One schemathesis pass against one fresh server (see e2e/suites/30-schemathesis.sh):
#
#   bash e2e/schemathesis/run.sh [VAR=value ...]   # extra server environment, e.g. DATABASE_URL
#
# Tunables: SCHEMATHESIS_MAX_EXAMPLES (default 40), SCHEMATHESIS_SEED (default random; the
# seed is printed so a failure can be replayed).
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

# Webhooks may post anywhere: the admin pass below registers whatever URLs the schema admits.
# Schemathesis guesses logins by the thousand from one address; the throttle that would
# stop it (tested in the api suite) would also lock out the admin login below.
confab_start CONFAB_WEBHOOK_ALLOW_PRIVATE=true CONFAB_LOGIN_ATTEMPTS=1000000 "$@"
report=$CONFAB_DATA/schemathesis
mkdir -p "$report"

# An account and its token; the password is long enough for any later login attempt.
user="fuzz_$(date +%s)_$$"
password="fuzz-password-$$"
body="{\"username\":\"$user\",\"password\":\"$password\"}"
curl -fsS -o /dev/null -H 'content-type: application/json' -d "$body" "$CONFAB_URL/api/auth/signup"
token=$(curl -fsS -H 'content-type: application/json' -d "$body" "$CONFAB_URL/api/auth/login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

seed=${SCHEMATHESIS_SEED:-$RANDOM}
echo "schemathesis seed: $seed"
common=(
    --checks all
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}"
    --seed "$seed"
    --workers 1
    --request-timeout 10
    --suppress-health-check too_slow
    --report junit --report-dir "$report"
    # Each pass learns for itself (the seed replays a failure): two passes that run side by
    # side share no example store.
    --generation-database ":memory:"
)

# Everything but logout with the token (logging out would revoke it for the rest of the run),
# every check: the schemas state what the server enforces (cursors are base64url, an empty
# prefix means none, token names refuse control characters and blank-only names).
schemathesis run "$CONFAB_URL/api/openapi.json" "${common[@]}" \
    -H "Authorization: Bearer $token" \
    --exclude-path /api/auth/logout
# As an admin, POST /api/webhooks: its `url` schema states exactly what the server accepts
# (a generated URL the schema admits is never refused, one it refuses is never taken). This
# server allows private destinations (confab_start above), so the schema is all there is.
admin="fuzzadmin_$$"
echo "$password" | env "$@" CONFAB_DATA_DIR="$CONFAB_DATA" "$CONFAB_BIN" user create "$admin" --admin >/dev/null
admin_body="{\"username\":\"$admin\",\"password\":\"$password\"}"
admin_token=$(curl -fsS -H 'content-type: application/json' -d "$admin_body" "$CONFAB_URL/api/auth/login" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
schemathesis run "$CONFAB_URL/api/openapi.json" "${common[@]}" \
    -H "Authorization: Bearer $admin_token" \
    --include-name 'POST /api/webhooks'
# Logout last: the first call revokes the session, later ones must get the documented 401.
schemathesis run "$CONFAB_URL/api/openapi.json" "${common[@]}" \
    -H "Authorization: Bearer $token" \
    --include-path /api/auth/logout
