#!/usr/bin/env bash
# Sourced by e2e suites: starts one Confab server for the suite and stops it on exit.
#
#   source "$(dirname "$0")/../lib/confab.sh"
#   confab_start [VAR=value ...]    # extra environment for the server
#   curl "$CONFAB_URL/api/health"
#
# The server is $CONFAB_BIN (default target/release/confab) on a free loopback port, with a
# fresh data dir (SQLite, in-process channel layer) that is removed afterwards. Its log is
# printed when the suite fails. Sets CONFAB_URL, CONFAB_PID and CONFAB_DATA.

CONFAB_BIN=${CONFAB_BIN:-$PWD/target/release/confab}
CONFAB_PID=""
CONFAB_DATA=""
CONFAB_URL=""

confab_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

confab_stop() {
    local status=$?
    if [ -n "$CONFAB_PID" ] && kill -0 "$CONFAB_PID" 2>/dev/null; then
        kill -TERM "$CONFAB_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$CONFAB_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$CONFAB_PID" 2>/dev/null || true
        wait "$CONFAB_PID" 2>/dev/null || true
    fi
    if [ "$status" != 0 ] && [ -f "$CONFAB_DATA/server.log" ]; then
        echo "--- last lines of the server log ($CONFAB_DATA/server.log)" >&2
        grep -v "^ \{2,\}\(at \|[0-9]\+: \)" "$CONFAB_DATA/server.log" | tail -n 40 >&2
    fi
    [ -n "$CONFAB_DATA" ] && rm -rf "$CONFAB_DATA"
    return "$status"
}

confab_start() {
    if [ ! -x "$CONFAB_BIN" ]; then
        echo "no server binary at $CONFAB_BIN (bash scripts/build.sh server)" >&2
        return 1
    fi
    CONFAB_DATA=$(mktemp -d -t confab-e2e.XXXXXX)
    local port
    port=$(confab_free_port)
    CONFAB_URL="http://127.0.0.1:$port"
    trap confab_stop EXIT
    # Every person a suite plays signs up from 127.0.0.1, so the per-address sign-up limit
    # is off unless a suite sets it (the api suite tests the limit itself).
    env -u DATABASE_URL -u REDIS_URL \
        CONFAB_BIND="127.0.0.1:$port" CONFAB_DATA_DIR="$CONFAB_DATA" RUST_LOG="${RUST_LOG:-info}" \
        CONFAB_SIGNUPS_PER_IP="${CONFAB_SIGNUPS_PER_IP:-0}" "$@" \
        "$CONFAB_BIN" serve >"$CONFAB_DATA/server.log" 2>&1 &
    CONFAB_PID=$!
    confab_wait_answer "$CONFAB_URL/api/health" "$CONFAB_PID" "the server" -f
}

# Waits up to 30 s for process $2 (named $3 in messages) to answer $1; extra arguments go to
# curl (`-f`: only a 2xx answer counts). Fails at once when the process exits.
confab_wait_answer() {
    local url=$1 pid=$2 what=$3
    shift 3
    for _ in $(seq 150); do
        if curl -sS "$@" -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$what exited during startup" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "$what did not answer within 30 s" >&2
    return 1
}

# Builds the SPA unless CONFAB_SKIP_SPA_BUILD=1 (just test built it already); exits with a
# message naming suite $1 when frontend/dist has no WASM.
confab_require_spa() {
    if [ "${CONFAB_SKIP_SPA_BUILD:-}" != 1 ]; then
        bash frontend/build.sh
    fi
    if ! compgen -G 'frontend/dist/assets/confab_frontend_bg-*.wasm' >/dev/null; then
        echo "$1: the SPA is not built (bash frontend/build.sh)" >&2
        exit 1
    fi
}
