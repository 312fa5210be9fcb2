#!/usr/bin/env bash
# The API documents a live server serves: /api/openapi.json and /api/asyncapi.json equal the
# committed files and validate with the OpenAPI and AsyncAPI parsers, /api/docs renders
# Swagger UI from vendored assets (no CDN), and the WebSocket protocol reference names every
# method.
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

bash docs/api-ui/vendor.sh >/dev/null
confab_start

fetch() { curl -fsS "$CONFAB_URL$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0
ok() { passed=$((passed + 1)); echo "  ok - $*"; }

cmp -s <(fetch /api/openapi.json) openapi/openapi.json || fail "/api/openapi.json differs from openapi/openapi.json"
ok "/api/openapi.json is the committed document"
cmp -s <(fetch /api/asyncapi.json) openapi/asyncapi.json || fail "/api/asyncapi.json differs from openapi/asyncapi.json"
ok "/api/asyncapi.json is the committed document"
fetch /api/asyncapi.json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert doc["asyncapi"] == "3.0.0", doc["asyncapi"]
ops = doc["operations"]
assert any(k.startswith("request.") for k in ops) and any(k.startswith("notification.") for k in ops)
' || fail "/api/asyncapi.json is not an AsyncAPI 3.0 document with operations"
ok "/api/asyncapi.json is AsyncAPI 3.0 with request and notification operations"

# Valid, not merely unchanged: each document through its ecosystem's own parser (e2e/api-docs).
checker=e2e/api-docs
if [ ! -d "$checker/node_modules" ]; then
    (cd "$checker" && npm ci --no-audit --no-fund --loglevel=error)
fi
node "$checker/validate.mjs" openapi/openapi.json openapi/asyncapi.json || fail "an API document does not validate"
ok "openapi.json validates as OpenAPI 3.1 and asyncapi.json as AsyncAPI 3.0"

page=$(fetch /api/docs)
grep -q '/api/docs/assets/swagger-ui-bundle.js' <<<"$page" || fail "/api/docs does not load the vendored Swagger UI"
if grep -Eq 'src="https?://|href="https?://' <<<"$page"; then fail "/api/docs loads something from another host"; fi
ok "/api/docs loads Swagger UI from this server only"
for asset in swagger-ui-bundle.js swagger-ui.css; do
    curl -fsS -o /dev/null "$CONFAB_URL/api/docs/assets/$asset" || fail "asset $asset is not served"
done
init=$(fetch /api/docs/init.js)
grep -q "/api/openapi.json" <<<"$init" || fail "init.js does not point at /api/openapi.json"
# Swagger UI loads its validator badge from validator.swagger.io unless told not to.
grep -q "validatorUrl: null" <<<"$init" || fail "init.js leaves the online validator (another host) on"
ok "the vendored assets and init.js are served; the online validator is off"

protocol=$(fetch /api/docs/protocol)
for name in room.send sync session.expiring -32602 4001; do
    grep -q -e "$name" <<<"$protocol" || fail "/api/docs/protocol does not mention $name"
done
ok "/api/docs/protocol documents methods, notifications, errors and close codes"
cmp -s <(fetch /api/docs/protocol.md) docs/protocol.md || fail "/api/docs/protocol.md differs from docs/protocol.md"
ok "/api/docs/protocol.md is the committed reference"
echo "api docs: $passed passed, 0 failed"
