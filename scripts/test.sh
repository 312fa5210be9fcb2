#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, services, Rust tests (SQLite, then
# PostgreSQL), and the end-to-end suites against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

bash scripts/install-test-deps.sh
bash docs/api-ui/vendor.sh
bash frontend/build.sh

bash scripts/services.sh start
trap 'bash scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env"

# Everything builds with the release profile: the dependencies compile once (the SPA's
# build already made the host proc-macros) and the e2e suites reuse the same binary.
echo "== Rust tests (SQLite, in-process layer)"
cargo test --release --workspace --exclude confab-frontend

echo "== Backend integration suite on PostgreSQL"
CONFAB_TEST_DATABASE=postgres cargo test --release -p confab --test api

# The scale-out suite ran above on one redis-server (and its failover tests on a Redis
# Cluster); once more with every instance on a six-node Redis Cluster (sharded pub/sub).
echo "== Scale-out suite on a Redis Cluster"
CONFAB_TEST_REDIS=cluster cargo test --release -p confab --test cluster -- --skip failover::

# The end-to-end suites run the release binary.
cargo build --release --bin confab
if [ -x e2e/run.sh ]; then
    echo "== End-to-end suites"
    bash e2e/run.sh
fi
echo "== all tests passed"
