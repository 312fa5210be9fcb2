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

# The end-to-end suites run the release binary.
cargo build --release --bin confab
if [ -x e2e/run.sh ]; then
    echo "== End-to-end suites"
    # frontend/dist was built above; the suites need not build (and compress) it again.
    CONFAB_SKIP_SPA_BUILD=1 bash e2e/run.sh
fi
echo "== all tests passed"
