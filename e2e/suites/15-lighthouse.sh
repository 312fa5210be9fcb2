#!/usr/bin/env bash
# The web app on a phone: Lighthouse (npm `lighthouse`, its mobile defaults) with Debian's
# Chromium against /login and a room page of a release server serving frontend/dist, plus
# plain-HTTP checks of compression and caching (e2e/lighthouse/tests). Asserts only
# deterministic facts (sizes, headers, cache lifetimes, the app's start ran to its end);
# scores and timings, the median of CONFAB_LIGHTHOUSE_RUNS runs per page (default 3), are
# reported in $CONFAB_LIGHTHOUSE_OUT/lighthouse.{md,json} (default target/lighthouse;
# `just lighthouse` writes docs/), Lighthouse's HTML reports in target/lighthouse. About two
# minutes.
#
# Environment: CONFAB_BIN (the server), CONFAB_SKIP_SPA_BUILD=1 to use frontend/dist as it
# is, CONFAB_LIGHTHOUSE_OUT (where the report goes), CONFAB_LIGHTHOUSE_RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source e2e/lib/confab.sh

export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROME_PATH" ]; then
    echo "15-lighthouse: $CHROME_PATH is missing (scripts/install-test-deps.sh installs chromium)" >&2
    exit 1
fi
confab_require_spa 15-lighthouse

suite=e2e/lighthouse
if [ ! -d "$suite/node_modules/lighthouse" ]; then
    (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error)
fi

out=${CONFAB_LIGHTHOUSE_OUT:-target/lighthouse}
case "$out" in /*) ;; *) out="$root/$out" ;; esac

confab_start CONFAB_STATIC_DIR="$root/frontend/dist"
cd "$suite"
CONFAB_URL="$CONFAB_URL" CONFAB_LIGHTHOUSE_OUT="$out" CONFAB_LIGHTHOUSE_HTML="$root/target/lighthouse" \
    node --test --test-concurrency=1 --test-reporter=spec tests/
