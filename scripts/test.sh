#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, services, Rust tests (SQLite, then
# PostgreSQL), and the end-to-end suites against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
started=$SECONDS
phase() { echo "== $1 (at $((SECONDS - started)) s)"; }

phase "dependencies"
bash scripts/install-test-deps.sh
bash docs/api-ui/vendor.sh

# The SPA (WASM) builds beside the server, in a target dir of its own: both builds end in a
# long single-threaded stretch (the backend crate, the WASM's fat LTO), and on a 2-core
# machine each fills the other's idle core. Sharing one target dir would serialise them on
# its lock; the price is the host proc-macros built twice (~30 s of CPU).
phase "SPA build (in the background) and Rust build"
spa_log=$(mktemp)
(
    spa_started=$SECONDS
    CARGO_TARGET_DIR=${CONFAB_SPA_TARGET_DIR:-$PWD/target/spa-build} bash frontend/build.sh
    echo "the SPA built in $((SECONDS - spa_started)) s"
) >"$spa_log" 2>&1 &
spa=$!

bash scripts/services.sh start
trap 'kill "$spa" 2>/dev/null || true; bash scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env"

# Everything builds once, with the release profile and the same package selection: another
# selection unifies features differently and rebuilds the backend (a `cargo build --bin`
# has no dev-dependencies, so it would too). The e2e suites run the binary the integration
# tests built.
cargo_test() { cargo test --release --workspace --exclude confab-frontend "$@"; }
# --timings: target/cargo-timings/ shows where a slow build spent its time.
cargo_test --no-run --timings
phase "Rust build done"
spa_status=0
wait "$spa" || spa_status=$?
cat "$spa_log"
[ "$spa_status" = 0 ] || { echo "the SPA build failed" >&2; exit 1; }
phase "Rust tests (SQLite, in-process layer)"
cargo_test

phase "Backend integration suite on PostgreSQL, scale-out suite on a Redis Cluster (in parallel)"
# Independent and mostly waiting on sockets: run side by side, each into its own log.
logs=$(mktemp -d)
# (`cluster::` and `durability::` run on PostgreSQL already.)
CONFAB_TEST_DATABASE=postgres cargo_test --test api -- --skip cluster:: --skip durability:: >"$logs/postgres.log" 2>&1 &
postgres=$!
# The scale-out suite ran above on one redis-server (and its failover tests on a Redis
# Cluster); once more with every instance on a six-node Redis Cluster (sharded pub/sub).
CONFAB_TEST_REDIS=cluster cargo_test --test api -- cluster:: --skip cluster::failover:: >"$logs/redis-cluster.log" 2>&1 &
redis_cluster=$!
status=0
wait "$postgres" || status=1
wait "$redis_cluster" || status=1
echo "-- integration suite on PostgreSQL"; cat "$logs/postgres.log"
echo "-- scale-out suite on a Redis Cluster"; cat "$logs/redis-cluster.log"
[ "$status" = 0 ] || { echo "a parallel suite failed" >&2; exit 1; }

export CONFAB_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/confab
[ -x "$CONFAB_BIN" ] || { echo "no server binary at $CONFAB_BIN" >&2; exit 1; }
export CONFAB_SKIP_SPA_BUILD=1   # built above
if [ -x e2e/run.sh ]; then
    phase "End-to-end suites"
    bash e2e/run.sh
fi
phase "all tests passed"
