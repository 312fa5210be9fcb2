#!/usr/bin/env bash
# A local Confab cluster to look at: redis-server + PostgreSQL on private ports and three
# instances on http://127.0.0.1:8001, :8002 and :8003 sharing them. Open two of them in two
# browsers: presence, rooms and private messages behave as one server. Ctrl-C stops it all.
#
# State (databases, logs, the shared JWT secret) lives in data/cluster/; delete it to start
# over. Ports: CONFAB_CLUSTER_PORTS (default "8001 8002 8003"), CONFAB_REDIS_PORT (6391),
# CONFAB_PG_PORT (5441).
set -euo pipefail
cd "$(dirname "$0")/.."

state="$PWD/data/cluster"
ports=(${CONFAB_CLUSTER_PORTS:-8001 8002 8003})
export CONFAB_SERVICES_DIR="$state/services"
export CONFAB_REDIS_PORT=${CONFAB_REDIS_PORT:-6391}
export CONFAB_PG_PORT=${CONFAB_PG_PORT:-5441}

if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server redis-tools postgresql >/dev/null
fi

# The server (built as `just test` builds it, so nothing is rebuilt) and the SPA.
bash scripts/build.sh server spa
confab=${CARGO_TARGET_DIR:-target}/release/confab
mkdir -p "$state"
# PostgreSQL refuses to run as root; as root, services.sh runs it as `postgres`.
[ "$(id -u)" = 0 ] && mkdir -p "$CONFAB_SERVICES_DIR/pg" && chown postgres:postgres "$CONFAB_SERVICES_DIR/pg"
bash scripts/services.sh start
pids=()
stopped=""
cleanup() {
    [ -z "$stopped" ] || return 0
    stopped=1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    bash scripts/services.sh stop
    echo "cluster stopped"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

db="postgres://postgres@127.0.0.1:$CONFAB_PG_PORT/confab"
psql -h 127.0.0.1 -p "$CONFAB_PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'confab'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$CONFAB_PG_PORT" -U postgres -qc "CREATE DATABASE confab"
# Every instance must sign and check tokens with the same secret.
[ -f "$state/jwt_secret" ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$state/jwt_secret"

export DATABASE_URL="$db"
export REDIS_URL="redis://127.0.0.1:$CONFAB_REDIS_PORT"
export CONFAB_JWT_SECRET
CONFAB_JWT_SECRET=$(cat "$state/jwt_secret")
"$confab" migrate
for port in "${ports[@]}"; do
    CONFAB_BIND="127.0.0.1:$port" CONFAB_DATA_DIR="$state/instance-$port" \
        "$confab" serve >"$state/instance-$port.log" 2>&1 &
    pids+=($!)
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
echo "Confab cluster: $(for p in "${ports[@]}"; do printf 'http://127.0.0.1:%s ' "$p"; done)"
echo "redis: $REDIS_URL   postgres: $db   logs: $state/instance-*.log   Ctrl-C stops"
wait -n "${pids[@]}"
echo "an instance exited; see its log in $state" >&2
