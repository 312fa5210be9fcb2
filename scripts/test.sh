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

bash scripts/services.sh start
trap 'bash scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env"

# Everything builds once, with the release profile and one package selection (scripts/build.sh
# says why), the SPA beside it. The e2e suites run the binary this build made.
phase "Rust build and SPA build (side by side)"
bash scripts/build.sh tests spa
cargo_test() { cargo test --release --workspace --exclude confab-frontend "$@"; }
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
