#!/usr/bin/env bash
# Web Push encryption checked by an independent implementation: Mozilla's http_ece for
# Python decrypts a real push from a release server to a receiver on 127.0.0.1
# (e2e/push/decrypt.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
source e2e/lib/confab.sh

if ! python3 -c "import http_ece, websockets" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check -r e2e/push/requirements.txt
fi
confab_start CONFAB_WEBHOOK_ALLOW_PRIVATE=true
CONFAB_URL="$CONFAB_URL" python3 e2e/push/decrypt.py
