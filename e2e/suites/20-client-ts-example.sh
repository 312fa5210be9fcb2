#!/usr/bin/env bash
# The TypeScript example client (e2e/client-ts-example) against a fresh release server. It is written
# with the @confab/client library (shared/client-ts), which is built first; both compile with
# `tsc --strict` against the generated @confab/types (src/contract-types.ts holds compile-time
# checks of the package's typing: results per method, notification narrowing, rejected
# misuse). Then its scenario runs (REST login, bearer socket, join, send, receive, errors,
# reconnect + sync, refusal and revocation).
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

library=shared/client-ts
client=e2e/client-ts-example
for package in "$library" "$client"; do
    if [ ! -d "$package/node_modules" ]; then
        (cd "$package" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done
(cd "$library" && rm -rf dist && npx --no-install tsc -p .)
(cd "$client" && rm -rf out && npx --no-install tsc -p .)

confab_start
CONFAB_URL="$CONFAB_URL" node "$client/out/example.js"
