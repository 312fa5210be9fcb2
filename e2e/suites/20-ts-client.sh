#!/usr/bin/env bash
# The TypeScript example client (e2e/ts-client) against a fresh release server: compiles it
# with `tsc --strict` against the generated @confab/types (src/contract-types.ts holds
# compile-time checks of the package's typing: results per method, notification narrowing,
# rejected misuse), then runs its scenario (REST login, bearer socket, join, send, receive,
# errors, reconnect + sync).
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

client=e2e/ts-client
if [ ! -d "$client/node_modules" ]; then
    (cd "$client" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$client" && rm -rf out && npx --no-install tsc -p .)

confab_start
CONFAB_URL="$CONFAB_URL" node "$client/out/example.js"
