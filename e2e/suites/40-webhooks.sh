#!/usr/bin/env bash
# Webhook signatures verified by an independent implementation: the Standard Webhooks
# reference library for Python checks real deliveries from a release server to a receiver
# on 127.0.0.1 (e2e/webhooks/verify.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

if ! python3 -c "import standardwebhooks" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check -r e2e/webhooks/requirements.txt
fi
confab_start CONFAB_WEBHOOK_ALLOW_PRIVATE=true
admin="hookadmin$$"
password="correct horse battery"
echo "$password" | env -u DATABASE_URL -u REDIS_URL CONFAB_DATA_DIR="$CONFAB_DATA" RUST_LOG=warn "$CONFAB_BIN" user create "$admin" --admin >/dev/null
CONFAB_URL="$CONFAB_URL" CONFAB_ADMIN="$admin" CONFAB_PASSWORD="$password" python3 e2e/webhooks/verify.py
