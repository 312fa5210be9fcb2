#!/usr/bin/env bash
# The TypeScript client library @confab/client (shared/client-ts): compiles it and its tests
# with `tsc --strict` (test/typing.ts holds compile-time checks of `call` and `on`), then runs
# its tests with node's test runner. They start their own release servers ($CONFAB_BIN) on
# free ports: connect by token and by credentials, typed calls and notifications, a server
# restart caught up with `sync` exactly once, renewal with 3-second access tokens, clean close,
# the in-flight window (1000 calls at once, at most 64 in flight); the HTTP stream transport
# chatting with a WebSocket client, and the fallback to it behind a real nginx (Debian's
# package, started by the tests on a free port) that refuses the upgrade or kills sockets.
set -euo pipefail
cd "$(dirname "$0")/../.."

package=shared/client-ts
if [ ! -x "${CONFAB_BIN:-target/release/confab}" ]; then
    echo "no server binary at ${CONFAB_BIN:-target/release/confab} (bash scripts/build.sh server)" >&2
    exit 1
fi
if [ ! -d "$package/node_modules" ]; then
    (cd "$package" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$package" && rm -rf dist out-test && npx --no-install tsc -p . && npx --no-install tsc -p test)
CONFAB_BIN=$(realpath "${CONFAB_BIN:-target/release/confab}") node --test --test-reporter=spec "$package/out-test/"
