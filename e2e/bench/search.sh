#!/usr/bin/env bash
# The search benchmark: query latency over a generated corpus while messages are written,
# on SQLite and PostgreSQL (e2e/loadgen/src/search.rs).
#   e2e/bench/search.sh full    # 1 000 000 room + 100 000 direct messages → docs/bench/search/
#   e2e/bench/search.sh quick   # a tenth of that → target/bench/search-quick/
# BENCH_OUT overrides where the report goes; extra arguments go to `loadgen search`
# (e.g. --databases sqlite).
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=${1:-quick}
case "$profile" in
    full) out=${BENCH_OUT:-docs/bench/search} ;;
    quick) out=${BENCH_OUT:-target/bench/search-quick} ;;
    *) echo "usage: $0 full|quick [loadgen search arguments]" >&2; exit 2 ;;
esac
shift || true

cargo test --release --quiet --workspace --exclude confab-frontend --no-run
mkdir -p target/bench/bin
cp target/release/confab target/release/loadgen target/bench/bin/

pg_url=${CONFAB_BENCH_PG_URL:-postgres://postgres@127.0.0.1:${CONFAB_PG_PORT:-15432}/postgres}
if ! psql "$pg_url" -qc 'SELECT 1' >/dev/null 2>&1; then
    bash scripts/services.sh start
    trap 'bash scripts/services.sh stop' EXIT
fi

CONFAB_BENCH_PG_URL=$pg_url target/bench/bin/loadgen search --profile "$profile" --out "$out" \
    --confab-bin target/bench/bin/confab --commit "$(git rev-parse --short HEAD)" "$@"
