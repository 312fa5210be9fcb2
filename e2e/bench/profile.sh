#!/usr/bin/env bash
# A flame graph of Confab's server CPU under one benchmark scenario:
#   e2e/bench/profile.sh c docs/bench/flame-c.svg          # any scenario id of `loadgen bench`
#   PERF_SECS=6 CONFAB_BIN=old/confab e2e/bench/profile.sh e-postgres /tmp/e-pg.svg
# Runs the scenario against Confab only, attaches perf (DWARF call graphs from the release
# binary's line tables) to the server for PERF_SECS of the measured window, and folds the
# samples into an SVG with inferno (cargo install inferno). Expects the binaries of
# `cargo test --release --workspace --exclude confab-frontend --no-run` (as `just test`) and, for PostgreSQL scenarios,
# CONFAB_BENCH_PG_URL (or the services of scripts/services.sh on their default port).
set -euo pipefail
cd "$(dirname "$0")/../.."

scenario=${1:?usage: $0 <scenario> <out.svg>}
svg=${2:?usage: $0 <scenario> <out.svg>}
secs=${PERF_SECS:-6}
work=$(mktemp -d)
target=${CARGO_TARGET_DIR:-target}
pg_url=${CONFAB_BENCH_PG_URL:-postgres://postgres@127.0.0.1:${CONFAB_PG_PORT:-15432}/postgres}

mkdir -p target/bench/bin
cp "${CONFAB_BIN:-$target/release/confab}" target/bench/bin/confab-profiled
"$target/release/loadgen" bench --profile full --only "$scenario" --servers confab \
    --confab-bin target/bench/bin/confab-profiled --pg-url "$pg_url" --out "$work/results" \
    --work-dir "$work/run" --note "profiled with perf" >"$work/loadgen.log" 2>&1 &
loadgen=$!

# The server is the load generator's child running our copy of the binary.
pid=""
for _ in $(seq 600); do
    pid=$(pgrep -n -x confab-profiled || true)
    [ -n "$pid" ] && break
    sleep 0.1
done
[ -n "$pid" ] || { echo "the server never started; see $work/loadgen.log" >&2; kill "$loadgen"; exit 1; }
# Connected and joined once it holds the scenario's sockets (PERF_MIN_FDS; by default the
# scenario's connection count) and their number stops growing for a second; then skip the
# warm-up.
case "$scenario" in
    a | a-pg) conns=101 ;; b) conns=1001 ;; c | c-pg) conns=1100 ;; *) conns=50 ;;
esac
min_fds=${PERF_MIN_FDS:-$conns}
prev=-1
stable=0
while kill -0 "$loadgen" 2>/dev/null && [ "$stable" -lt 4 ]; do
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    if [ "$n" -ge "$min_fds" ] && [ "$n" -eq "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
    prev=$n
    sleep 0.25
done
sleep "${PERF_DELAY:-1.5}"
load=$(cut -d' ' -f1-3 /proc/loadavg)
perf record -F 997 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" -- sleep "$secs" >/dev/null 2>&1 || true
wait "$loadgen" || true
grep -v '^$' "$work/loadgen.log" | tail -n 3
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
inferno-flamegraph --title "confab, scenario ($scenario), load average $load" <"$work/folded" >"$svg"
echo "wrote $svg (perf data and folded stacks in $work)"
