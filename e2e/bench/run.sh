#!/usr/bin/env bash
# The benchmark, as `just bench` and `just bench-quick` run it:
#   e2e/bench/run.sh full    # every scenario, Confab + Django Channels + Socket.IO → docs/bench/
#   e2e/bench/run.sh quick   # under a minute → target/bench/quick/ (BENCH_OUT overrides)
# Builds the release binaries, installs the peers (once), makes sure PostgreSQL is up for the
# PostgreSQL scenarios, raises the open-file limit for 10k connections, and runs
# `loadgen bench`, which starts and stops every server itself. Traffic stays on 127.0.0.1.
# The Redis Cluster runs of (f) (f-a-rc2, f-a-rc3, f-c-rc2, f-c-rc3) start six redis-server
# nodes on ports 17301-17399 (CONFAB_BENCH_REDIS_CLUSTER_PORTS), apart from the tests' range.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=${1:-full}
case "$profile" in
    full) out=${BENCH_OUT:-docs/bench}; command="just bench" ;;
    quick) out=${BENCH_OUT:-target/bench/quick}; command="just bench-quick" ;;
    *) echo "usage: $0 full|quick" >&2; exit 2 ;;
esac

# 10 000 connections in (d), 100 000 in (h) and (g-100k): one descriptor each in the load
# generator and in the server. Raising the hard limit needs CAP_SYS_RESOURCE; where it
# cannot be raised, those scenarios run at the largest size that fits and say so.
ulimit -Hn 1048576 2>/dev/null || ulimit -Hn 262144 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
    echo "warning: open-file limit $(ulimit -n); scenario (d) needs about 10 100" >&2
fi

# The package selection `just test` builds (scripts/test.sh): any other one unifies features
# differently and rebuilds the backend. Both binaries are integration-test targets there.
cargo test --release --quiet --workspace --exclude confab-frontend --no-run
# Run copies, so that a build in the same target dir cannot swap a binary mid-run.
mkdir -p target/bench/bin
cp target/release/confab target/release/loadgen target/bench/bin/

bash e2e/bench/setup-peers.sh || echo "warning: peer setup failed; the peers will be skipped" >&2

# PostgreSQL for (e-postgres) and (f): reuse the test services if they run, else start them
# (and stop them again at the end). Without it those runs are recorded as skipped.
pg_url=${CONFAB_BENCH_PG_URL:-postgres://postgres@127.0.0.1:${CONFAB_PG_PORT:-15432}/postgres}
started_services=0
if ! psql "$pg_url" -qc 'SELECT 1' >/dev/null 2>&1; then
    if bash scripts/services.sh start; then
        started_services=1
    else
        echo "warning: could not start PostgreSQL; its scenarios will be skipped" >&2
    fi
fi
if [ "$started_services" = 1 ]; then
    trap 'bash scripts/services.sh stop' EXIT
fi

# Extra arguments go to `loadgen bench` (e.g. --only a,c  --servers confab  --note "…").
shift || true
CONFAB_BENCH_PG_URL=$pg_url target/bench/bin/loadgen bench --profile "$profile" --out "$out" --command-line "$command" \
    --confab-bin target/bench/bin/confab "$@"
