#!/usr/bin/env bash
# Hunts tests that pass or fail with the machine's timing: runs the Rust suites RUNS times
# (default 5), two at a time so that each run shares the cores with another, and lists every
# test that failed in any run, with the runs it failed in. CI runs on a loaded 2-core
# machine; a test that fails here once in five will fail there too, sooner or later.
#
#   scripts/test-flaky.sh              # 5 rounds of every suite
#   scripts/test-flaky.sh 10           # 10 rounds
#   scripts/test-flaky.sh 20 presence  # 20 rounds of the tests whose names contain `presence`
#
# Each round runs two lanes at once:
#   sqlite    every Rust test of the workspace (as `just test` runs them first);
#   postgres  the integration suite on PostgreSQL, then the scale-out suite on a Redis
#             Cluster (with a filter: the filtered tests on PostgreSQL).
# Each lane has its own range of Redis Cluster ports, so their clusters never meet.
# Logs: target/flaky/<time>/round-<n>-<lane>.log. Exits non-zero when anything failed.
# Uses the services of scripts/services.sh (started here, stopped at the end) and builds
# like `just test` (scripts/build.sh), so nothing is rebuilt after it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

runs=${1:-5}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [runs] [test name filter]" >&2; exit 2; }
filter=${2:-}
# A lane that runs longer than this is stuck (every wait in the tests has its own timeout).
lane_timeout=${CONFAB_FLAKY_LANE_TIMEOUT:-1800}

for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: run bash scripts/install-test-deps.sh" >&2; exit 1; }
done

out=${CARGO_TARGET_DIR:-$PWD/target}/flaky/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
bash scripts/services.sh start
trap 'bash scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env"
bash scripts/build.sh tests

cargo_test() { timeout --kill-after=30 "$lane_timeout" cargo test --release --workspace --exclude confab-frontend --no-fail-fast "$@"; }

lane_sqlite() {
    local args=()
    [ -z "$filter" ] || args=(-- "$filter")
    CONFAB_TEST_REDIS_CLUSTER_PORTS=${CONFAB_TEST_REDIS_CLUSTER_PORTS:-17101-17199} cargo_test "${args[@]}"
}

lane_postgres() {
    export CONFAB_TEST_REDIS_CLUSTER_PORTS=${CONFAB_FLAKY_CLUSTER_PORTS:-17201-17299}
    if [ -n "$filter" ]; then
        CONFAB_TEST_DATABASE=postgres cargo_test --test api -- "$filter"
        return
    fi
    local status=0
    CONFAB_TEST_DATABASE=postgres cargo_test --test api -- --skip cluster:: --skip durability:: || status=$?
    CONFAB_TEST_REDIS=cluster cargo_test --test api -- cluster:: --skip cluster::failover:: || status=$?
    return "$status"
}

# The failed tests of one log, one per line: `<lane> <test binary> <test name>`. A lane that
# failed without naming a test (a crash, a build error, the lane timeout) is listed as such.
failures_of() {
    local lane=$1 log=$2 status=$3
    awk -v lane="$lane" '
        /^ *Running / {
            binary = $2
            if (match($0, /deps\/[^ )]+/)) { binary = substr($0, RSTART + 5, RLENGTH - 5); sub(/-[0-9a-f]+$/, "", binary) }
        }
        /^test .* \.\.\. FAILED$/ { print lane " " binary " " $2; found = 1 }
        END {
            if (found || status == 0) exit
            if (status == 124 || status == 137) print lane " - (the lane was stopped after the lane timeout, see its log)"
            else print lane " - (the lane failed without a failing test: exit " status ", see its log)"
        }
    ' status="$status" "$log"
}

started=$SECONDS
: >"$out/failures"
for round in $(seq "$runs"); do
    echo "== round $round of $runs (at $((SECONDS - started)) s, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    lane_sqlite >"$out/round-$round-sqlite.log" 2>&1 &
    sqlite=$!
    lane_postgres >"$out/round-$round-postgres.log" 2>&1 &
    postgres=$!
    sqlite_status=0 postgres_status=0
    wait "$sqlite" || sqlite_status=$?
    wait "$postgres" || postgres_status=$?
    {
        failures_of sqlite "$out/round-$round-sqlite.log" "$sqlite_status"
        failures_of postgres "$out/round-$round-postgres.log" "$postgres_status"
    } | sed "s/^/$round /" | tee -a "$out/failures" | sed 's/^/   failed: /'
    for lane in sqlite postgres; do
        printf '   %-8s %s\n' "$lane" "$(grep -h '^test result:' "$out/round-$round-$lane.log" | awk '{p += $4; f += $6} END {print p + 0 " passed, " f + 0 " failed"}')"
    done
done

echo "== $runs rounds in $((SECONDS - started)) s, load average now $(cut -d' ' -f1-3 /proc/loadavg); logs in $out"
if [ ! -s "$out/failures" ]; then
    echo "no test failed in any run"
    exit 0
fi
echo "failed at least once (runs failed / $runs, lane, test binary, test; the rounds):"
# Input lines: `<round> <lane> <binary> <test...>`; one output line per lane, binary and test.
awk '{ key = $2 " " $3; for (i = 4; i <= NF; i++) key = key " " $i; n[key]++; rounds[key] = rounds[key] (rounds[key] ? "," : "") $1 }
     END { for (k in n) print n[k] " " k " (rounds " rounds[k] ")" }' "$out/failures" | sort -rn | sed 's/^/   /'
exit 1
