#!/usr/bin/env bash
# "Log in with" against a real OpenID Connect provider: the certified oidc-provider package
# (e2e/oidc/provider.mjs) on a free loopback port, with a development login page, one public
# client with PKCE and RS256 keys the test makes. A release server trusts it as the issuer
# "local" (discovery, login = true). The scenario (e2e/oidc/oidc.test.mjs): the web app's
# "Log in with Local IdP" in headless Chromium through the provider's own login page, ending
# logged in; the provider's ID tokens as REST bearers and at the socket upgrade; a key
# rotation (new tokens of the new key verify, old ones keep working); the provider stopped
# (the cached keys still verify).
#
# Environment: CONFAB_BIN (the server), CONFAB_SKIP_SPA_BUILD=1 to use frontend/dist as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source e2e/lib/confab.sh

if [ ! -x /usr/bin/chromium ]; then
    echo "50-oidc: /usr/bin/chromium is missing (scripts/install-test-deps.sh installs it)" >&2
    exit 1
fi
confab_require_spa 50-oidc

suite=e2e/oidc
if [ ! -d "$suite/node_modules/oidc-provider" ] || [ ! -d "$suite/node_modules/playwright-core" ]; then
    (cd "$suite" && npm ci --no-audit --no-fund --loglevel=error)
fi

scratch=$(mktemp -d -t confab-oidc.XXXXXX)
oidc_port=$(confab_free_port)
cat >"$scratch/issuers.toml" <<TOML
[[issuer]]
name = "local"
label = "Local IdP"
discovery = "http://127.0.0.1:$oidc_port"
algorithms = ["RS256"]
iss = "http://127.0.0.1:$oidc_port"
aud = "confab-web"
login = true
client_id = "confab-web"
# A rotated key is fetched at once (the test's tokens of the new key come seconds apart).
jwks_refetch_secs = 0
TOML

confab_start CONFAB_STATIC_DIR="$root/frontend/dist" CONFAB_ISSUERS_FILE="$scratch/issuers.toml"
# The provider is the test's child; should the test die first, stop it here too.
oidc_cleanup() {
    local status=$?
    # Every step below runs, whatever fails.
    set +e
    if [ -f "$scratch/provider.pid" ]; then
        kill -TERM "$(cat "$scratch/provider.pid")" 2>/dev/null || true
    fi
    if [ "$status" != 0 ] && [ -f "$scratch/provider.log" ]; then
        echo "--- last lines of the provider's log" >&2
        tail -n 20 "$scratch/provider.log" >&2
    fi
    rm -rf "$scratch"
    (exit "$status")
    confab_stop
}
trap oidc_cleanup EXIT

cd "$suite"
CONFAB_URL="$CONFAB_URL" OIDC_PORT="$oidc_port" OIDC_DIR="$scratch" \
    node --test --test-concurrency=1 --test-reporter=spec oidc.test.mjs
