#!/usr/bin/env bash
# Confab beside a Django app: the example site in e2e/interop/django (Django's own users in
# SQLite, a login view that signs the seeds' JWT, a view that publishes like group_send)
# runs under `manage.py runserver`, and e2e/interop/check_django.py logs its users in over
# HTTP and takes their tokens to the release server's socket. Two servers in turn, with the
# shared key in an issuers file: one with require_exp = false, one with require_exp = true
# and rooms_claim_exclusive = true.
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

if ! python3 -c "import django, jwt, websockets.asyncio.client" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check -r e2e/interop/requirements.txt
fi

work=""
django_pid=""
DJANGO_URL=""
manage=(python3 e2e/interop/django/manage.py)

django_stop() {
    if [ -n "$django_pid" ] && kill -0 "$django_pid" 2>/dev/null; then
        kill -TERM "$django_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$django_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$django_pid" 2>/dev/null || true
        wait "$django_pid" 2>/dev/null || true
    fi
    django_pid=""
}

# Stops Django, then Confab (confab_stop reads the suite's status from $?).
on_exit() {
    local status=$?
    set +e
    django_stop
    if [ "$status" != 0 ] && [ -f "$work/django.log" ]; then
        echo "--- last lines of the Django log" >&2
        tail -n 30 "$work/django.log" >&2
    fi
    [ -n "$work" ] && rm -rf "$work"
    (exit "$status")
    confab_stop
}

# Runs the site on a free port with the given extra environment.
django_start() {
    local port
    port=$(confab_free_port)
    DJANGO_URL="http://127.0.0.1:$port"
    env "$@" "${manage[@]}" runserver --noreload "127.0.0.1:$port" >>"$work/django.log" 2>&1 &
    django_pid=$!
    # Any answer will do: the token view answers a GET with 405.
    confab_wait_answer "$DJANGO_URL/api/token" "$django_pid" "Django"
}

# A release server trusting the site's tokens; $1 is the rest of the issuer entry.
confab_trusting() {
    cat >"$work/issuers.toml" <<EOF
[[issuer]]
name = "django"
secret_file = "$work/token-key"
algorithms = ["HS256"]
user_claim = "uid"
name_claim = "nickname"
rooms_claim = "group_name"
$1
EOF
    confab_start CONFAB_ISSUERS_FILE="$work/issuers.toml"
    trap on_exit EXIT
}

check() {
    CONFAB_URL="$CONFAB_URL" DJANGO_URL="$DJANGO_URL" TOKEN_FILE="$work/no-exp-token" \
        timeout 60 python3 e2e/interop/check_django.py "$1"
}

work=$(mktemp -d -t confab-django.XXXXXX)
trap on_exit EXIT
export CHAT_DB="$work/django.sqlite3" CHAT_PASSWORD="correct horse battery"
CHAT_TOKEN_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
export CHAT_TOKEN_KEY
printf '%s' "$CHAT_TOKEN_KEY" >"$work/token-key"
"${manage[@]}" migrate --verbosity 0
echo "$CHAT_PASSWORD" | "${manage[@]}" addmember ann --group team-red --staff
echo "$CHAT_PASSWORD" | "${manage[@]}" addmember bob --group team-red
echo "$CHAT_PASSWORD" | "${manage[@]}" addmember cat --group team-blue

confab_trusting "require_exp = false"
echo "$CHAT_PASSWORD" | env -u DATABASE_URL -u REDIS_URL CONFAB_DATA_DIR="$CONFAB_DATA" RUST_LOG=warn \
    "$CONFAB_BIN" user create djangobot --admin >/dev/null
api_token=$(env -u DATABASE_URL -u REDIS_URL CONFAB_DATA_DIR="$CONFAB_DATA" RUST_LOG=warn \
    "$CONFAB_BIN" token create djangobot --name django-site --scope publish)
django_start CONFAB_URL="$CONFAB_URL" CONFAB_API_TOKEN="$api_token"
check lenient
django_stop
confab_stop # its status is django_stop's, 0
CONFAB_PID=""

confab_trusting "require_exp = true
rooms_claim_exclusive = true"
django_start CONFAB_URL="$CONFAB_URL" CHAT_TOKEN_LIFETIME=300
check strict
