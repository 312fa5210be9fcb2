#!/usr/bin/env bash
# Runs every end-to-end suite (e2e/suites/*.sh, in name order) against the release binary.
# Each suite starts the servers it needs on free ports and stops them itself.
# Environment: CONFAB_BIN (the server binary), plus CONFAB_TEST_REDIS_URL / CONFAB_TEST_PG_URL
# from scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONFAB_BIN=${CONFAB_BIN:-$PWD/target/release/confab}
failed=()
for suite in e2e/suites/*.sh; do
    [ -f "$suite" ] || continue
    echo "-- $suite"
    if ! bash "$suite"; then
        failed+=("$suite")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed suites: ${failed[*]}" >&2
    exit 1
fi
