#!/usr/bin/env bash
# Runs every end-to-end suite (e2e/suites/*.sh) against the release binary. Each suite starts
# the servers it needs on free ports and stops them itself, so they are independent: up to
# E2E_JOBS (default 3) run side by side, each into its own log, printed when it ends. The
# Lighthouse suite asserts only what load cannot change (sizes, headers, preloads, cache
# lifetimes) and reports its scores, so it takes a slot like the others; `just lighthouse`
# measures the scores on a machine of their own.
# Environment: CONFAB_BIN (the server binary), plus CONFAB_TEST_REDIS_URL / CONFAB_TEST_PG_URL
# from scripts/services.sh.
#
#   e2e/run.sh               # every suite
#   e2e/run.sh --without-spa # only the suites that do not serve the web app
#   e2e/run.sh --spa-only    # only those that do (they call confab_require_spa)
# `just test` runs the first kind while the SPA is still building, the second once it is built.
set -euo pipefail
cd "$(dirname "$0")/.."
selection=${1:-all}
case "$selection" in
    all | --without-spa | --spa-only) ;;
    *) echo "usage: $0 [--without-spa|--spa-only]" >&2; exit 2 ;;
esac
export CONFAB_BIN=${CONFAB_BIN:-$PWD/target/release/confab}
jobs=${E2E_JOBS:-3}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()

# Suite name → pid of its runner, for the ones still running.
declare -A running=()

# Waits for one running suite to end, prints its log and records a failure.
reap_one() {
    local done_pid status suite
    status=0
    wait -n -p done_pid "${running[@]}" || status=$?
    for suite in "${!running[@]}"; do
        if [ "${running[$suite]}" = "$done_pid" ]; then
            unset "running[$suite]"
            echo "-- $suite ($( [ "$status" = 0 ] && echo passed || echo "FAILED, exit $status"))"
            cat "$logs/$(basename "$suite").log"
            [ "$status" = 0 ] || failed+=("$suite")
            return
        fi
    done
}

run_suite() {
    local suite=$1 started=$SECONDS
    bash "$suite"
    echo "   ($suite took $((SECONDS - started)) s)"
}

# The longest suites start first, so that they do not begin last and hold up the end.
ordered=()
for first in 30-schemathesis 10-browser; do
    [ -f "e2e/suites/$first.sh" ] && ordered+=("e2e/suites/$first.sh")
done
for suite in e2e/suites/*.sh; do
    case " ${ordered[*]} " in *" $suite "*) ;; *) ordered+=("$suite") ;; esac
done

for suite in "${ordered[@]}"; do
    [ -f "$suite" ] || continue
    needs_spa=0
    grep -q '^ *confab_require_spa' "$suite" && needs_spa=1
    case "$selection:$needs_spa" in
        --without-spa:1 | --spa-only:0) continue ;;
    esac
    while [ "${#running[@]}" -ge "$jobs" ]; do reap_one; done
    echo "-- starting $suite"
    run_suite "$suite" >"$logs/$(basename "$suite").log" 2>&1 &
    running[$suite]=$!
done
while [ "${#running[@]}" -gt 0 ]; do reap_one; done

if [ ${#failed[@]} -gt 0 ]; then
    echo "failed suites: ${failed[*]}" >&2
    exit 1
fi
