#!/usr/bin/env bash
# The hostile-client soak, quick profile: 200 well-behaved clients chatting while 20 hostile
# ones run every attack of docs/security.md (DM flood, non-reading sockets, reaction flood,
# sync amplification, socket caps, login guessing and sign-up flood), 15 s per phase. The
# load generator starts its own release server (default limits) and fails on any lost
# message, any closed well-behaved socket, or server RSS past its bound. No timing checks:
# latencies are reported only (`just soak` runs the full profile and checks the p99 ratio).
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFAB_BIN=${CONFAB_BIN:-$PWD/target/release/confab}
# The loadgen binary is built beside the server by the one test build (`cargo test --no-run`).
LOADGEN_BIN=${LOADGEN_BIN:-$(dirname "$CONFAB_BIN")/loadgen}
if [ ! -x "$LOADGEN_BIN" ]; then
    echo "no load generator at $LOADGEN_BIN (bash scripts/build.sh tests)" >&2
    exit 1
fi
work=$(mktemp -d -t confab-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
"$LOADGEN_BIN" soak --profile quick --confab-bin "$CONFAB_BIN" --work-dir "$work" \
    --command-line "e2e/suites/35-soak.sh" >"$work/report.md" || status=$?
cat "$work/report.md"
if [ "$status" != 0 ] && [ -f "$work/soak.log" ]; then
    echo "--- last lines of the server log" >&2
    tail -n 40 "$work/soak.log" >&2
fi
exit "$status"
