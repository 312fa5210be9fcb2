#!/usr/bin/env bash
# Starts (or stops) private redis-server and PostgreSQL instances for the test suite.
#
#   scripts/services.sh start   # prints nothing on success; writes $STATE/env
#   scripts/services.sh stop
#
# Ports and the state folder can be overridden with CONFAB_REDIS_PORT, CONFAB_PG_PORT and
# CONFAB_SERVICES_DIR. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
set -euo pipefail

STATE=${CONFAB_SERVICES_DIR:-/tmp/confab-services}
REDIS_PORT=${CONFAB_REDIS_PORT:-16379}
PG_PORT=${CONFAB_PG_PORT:-15432}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    mkdir -p "$STATE/redis"
    if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$STATE/redis" --daemonize yes --pidfile "$STATE/redis/redis.pid" \
            --logfile "$STATE/redis/redis.log"
    fi
    if [ ! -f "$STATE/pg/PG_VERSION" ]; then
        mkdir -p "$STATE/pg"
        [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$STATE/pg"
        as_pg "$PG_BIN/initdb" -D "$STATE/pg" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1; then
        as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg" -l "$STATE/pg/server.log" -w \
            -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300" start >/dev/null
    fi
    for _ in $(seq 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    cat > "$STATE/env" <<ENV
export CONFAB_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export CONFAB_TEST_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export CONFAB_REDIS_PORT=$REDIS_PORT
ENV
}

stop() {
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    if [ -f "$STATE/pg/PG_VERSION" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
