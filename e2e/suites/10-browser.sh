#!/usr/bin/env bash
# The SPA in a real browser: headless Chromium (the system's /usr/bin/chromium, driven by
# playwright-core; no browser is downloaded) against a fresh release server serving
# frontend/dist. The scenario (e2e/browser/tests) signs up two people in separate browser
# profiles, chats, edits, reacts, exchanges private messages, restarts the server mid-way
# and checks that both tabs catch up exactly once, reads anonymously, exports a room and
# shows an admin notice. Another (e2e/browser/tests/settings.test.mjs) creates, uses and
# revokes an API token in the Settings page, and as an admin registers a webhook to a
# receiver on 127.0.0.1, watches a delivery fail and retries it from the page. A third
# (e2e/browser/tests/moderation.test.mjs) has an owner appoint a moderator, a member report a
# message, the moderator mute one member and ban another, and an admin resolve the report,
# read the audit log and suspend and unsuspend an account, each in the pages. The last
# (e2e/browser/tests/stream-fallback.test.mjs) puts one person behind Debian's nginx refusing
# WebSocket upgrades: the tab falls back to the HTTP stream, its badge says so, and it chats
# with a person on a WebSocket both ways through a server restart; behind nginx cutting
# sockets right after they open, a tab moves to the stream too. Another
# (e2e/browser/tests/mentions.test.mjs) has a program mention a reader: the rooms list counts
# it live, the tab title leads with it, and the opened room shows the message highlighted.
# Another (e2e/browser/tests/notifications.test.mjs) autocompletes `@` by keyboard, checks the
# title and favicon on a private message, turns notifications on in Settings (the push
# subscription is stored and listed), gets desktop notifications in a hidden tab but none for
# a quiet room, and has the service worker show a push delivered through the DevTools protocol.
#
# Environment: CONFAB_BIN (the server), CONFAB_SCREENSHOTS=docs/screenshots to save the
# PNGs of the main pages, CONFAB_SKIP_SPA_BUILD=1 to use frontend/dist as it is,
# CONFAB_BROWSER_TESTS to run only some files (e.g. "tests/settings.test.mjs"; default tests/).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source e2e/lib/confab.sh

if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then
    echo "10-browser: /usr/bin/chromium is missing (scripts/install-test-deps.sh installs it)" >&2
    exit 1
fi
confab_require_spa 10-browser
if [ ! -x "${CONFAB_NGINX:-/usr/sbin/nginx}" ]; then
    echo "10-browser: nginx is missing (scripts/install-test-deps.sh installs it)" >&2
    exit 1
fi

suite=e2e/browser
if [ ! -d "$suite/node_modules/playwright-core" ]; then
    (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Short-lived access tokens, so the tabs must answer `session.expiring` several times
# during the run (refresh, then `auth.refresh`) without dropping their sockets.
# Webhooks may post to the test's receiver on 127.0.0.1, and a failed delivery is retried
# only after 5 to 10 minutes, so within the run a second attempt is the Retry button's.
server_env=(CONFAB_STATIC_DIR="$root/frontend/dist" CONFAB_ACCESS_TTL_SECS=45 CONFAB_EXPIRY_WARNING_SECS=35
    CONFAB_WEBHOOK_ALLOW_PRIVATE=true CONFAB_WEBHOOK_RETRY_BASE_MS=600000)
confab_start "${server_env[@]}"
# The scenario restarts the server (same port, same data dir); stop whichever runs last.
browser_cleanup() {
    local status=$?
    # `(exit "$status")` hands confab_stop the suite's status; under `set -e` a failing one
    # would end this trap before the server is stopped.
    set +e
    if [ -n "$CONFAB_DATA" ] && [ -f "$CONFAB_DATA/restarted.pid" ]; then
        CONFAB_PID=$(cat "$CONFAB_DATA/restarted.pid")
    fi
    (exit "$status")
    confab_stop
}
trap browser_cleanup EXIT

shots=${CONFAB_SCREENSHOTS:-}
if [ -n "$shots" ]; then
    case "$shots" in /*) ;; *) shots="$root/$shots" ;; esac
fi

cd "$suite"
# shellcheck disable=SC2086 # CONFAB_BROWSER_TESTS is a list of files
env "${server_env[@]}" CONFAB_URL="$CONFAB_URL" CONFAB_PID="$CONFAB_PID" CONFAB_DATA="$CONFAB_DATA" \
    CONFAB_BIN="$CONFAB_BIN" CONFAB_SCREENSHOTS="$shots" CONFAB_ACCESS_TTL_SECS=45 \
    node --test --test-concurrency=1 --test-reporter=spec ${CONFAB_BROWSER_TESTS:-tests/}
