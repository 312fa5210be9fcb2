#!/usr/bin/env bash
# The whole test suite, as CI runs it: the build (with the dependencies installed beside it),
# services, Rust tests (SQLite, then PostgreSQL and a Redis Cluster), and the end-to-end
# suites against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
started=$SECONDS
phase() { echo "== $1 (at $((SECONDS - started)) s)"; }

# The Rust build is the long pole (most of a fresh run on two cores, CPU-bound) and needs
# none of the test dependencies, so it starts first; installing them (mostly downloads) runs
# beside it, then the SPA build (which needs brotli and wasm-bindgen), into a log of their
# own. Only the e2e suites at the end need the SPA, so it builds at the lowest priority: in
# the gaps the Rust build leaves (its last minutes are one or two crates at a time) and
# beside the Rust tests, which mostly wait, instead of taking a core from the Rust build.
# Everything builds once, with the release profile and one package selection (scripts/build.sh
# says why). The e2e suites run the binary this build made.
phase "Rust build, beside it the test dependencies and then the SPA build"
side_log=$(mktemp)
deps_ready=$(mktemp -u)
(
    bash scripts/install-test-deps.sh
    bash docs/api-ui/vendor.sh
    echo "the test dependencies were ready at $((SECONDS - started)) s"
    touch "$deps_ready"
    nice -n 19 bash scripts/build.sh spa
    echo "the SPA was ready at $((SECONDS - started)) s"
) >"$side_log" 2>&1 &
side=$!
trap 'kill "$side" 2>/dev/null || true; rm -f "$side_log" "$deps_ready"' EXIT
build_status=0
bash scripts/build.sh tests || build_status=$?
[ "$build_status" = 0 ] || { echo "the Rust build failed" >&2; exit 1; }
while [ ! -e "$deps_ready" ] && kill -0 "$side" 2>/dev/null; do sleep 1; done
if [ ! -e "$deps_ready" ]; then
    cat "$side_log"
    echo "installing the test dependencies failed" >&2
    exit 1
fi

bash scripts/services.sh start
trap 'kill "$side" 2>/dev/null || true; rm -f "$side_log" "$deps_ready"; bash scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env"

cargo_test() { cargo test --release --workspace --exclude confab-frontend "$@"; }
# The api suite's tests mostly wait on sockets, timers and services (266 s of test time, 80 s
# of CPU): six at a time finish it in 51 s where two took 133 s, on the same 2 cores. Nothing
# in it depends on timing, so the load this adds changes durations only.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-6}
# Redis Cluster nodes take their ports from a range outside the kernel's ephemeral ports (a
# port picked by binding :0 can be handed to another test's server before the node binds it),
# one range per suite running at once.
cluster_ports() { CONFAB_TEST_REDIS_CLUSTER_PORTS=$1 cargo_test "${@:2}"; }
phase "Rust tests (SQLite, in-process layer)"
cluster_ports 17101-17399

export CONFAB_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/confab
[ -x "$CONFAB_BIN" ] || { echo "no server binary at $CONFAB_BIN" >&2; exit 1; }
export CONFAB_SKIP_SPA_BUILD=1   # built beside, awaited before the suites that serve it
# Lighthouse asserts only deterministic facts here; one run per page is enough for them
# (`just lighthouse` takes the median of three for the scores it reports).
export CONFAB_LIGHTHOUSE_RUNS=${CONFAB_LIGHTHOUSE_RUNS:-1}

phase "PostgreSQL suite, Redis Cluster suite and the e2e suites without the web app (in parallel)"
# Independent and mostly waiting on sockets and processes: run side by side, each into its
# own log, while the SPA finishes building at the lowest priority.
logs=$(mktemp -d)
# (`cluster::` and `durability::` run on PostgreSQL already.)
CONFAB_TEST_DATABASE=postgres cargo_test --test api -- --skip cluster:: --skip durability:: >"$logs/postgres.log" 2>&1 &
postgres=$!
# The scale-out suite ran above on one redis-server (and its failover tests on a Redis
# Cluster); once more with every instance on a six-node Redis Cluster (sharded pub/sub).
CONFAB_TEST_REDIS=cluster cluster_ports 17401-17699 --test api -- cluster:: --skip cluster::failover:: >"$logs/redis-cluster.log" 2>&1 &
redis_cluster=$!
e2e_pid=""
if [ -x e2e/run.sh ]; then
    E2E_JOBS=2 bash e2e/run.sh --without-spa >"$logs/e2e.log" 2>&1 &
    e2e_pid=$!
fi
status=0
wait "$postgres" || status=1
wait "$redis_cluster" || status=1
[ -z "$e2e_pid" ] || wait "$e2e_pid" || status=1
echo "-- integration suite on PostgreSQL"; cat "$logs/postgres.log"
echo "-- scale-out suite on a Redis Cluster"; cat "$logs/redis-cluster.log"
[ -z "$e2e_pid" ] || { echo "-- e2e suites without the web app"; cat "$logs/e2e.log"; }
[ "$status" = 0 ] || { echo "a parallel suite failed" >&2; exit 1; }

phase "waiting for the SPA build"
side_status=0
wait "$side" || side_status=$?
echo "-- test dependencies and SPA build"; cat "$side_log"
[ "$side_status" = 0 ] || { echo "building the SPA failed" >&2; exit 1; }

if [ -x e2e/run.sh ]; then
    phase "End-to-end suites with the web app"
    bash e2e/run.sh --spa-only
fi
phase "all tests passed"
