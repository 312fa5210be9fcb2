#!/usr/bin/env bash
# Installs the benchmark's peers from their registries, once (re-run when the pins change):
#   - the Django Channels peer: a venv (default target/bench/venv) with requirements.txt
#   - the Socket.IO peer: node_modules next to its package.json
# The bench itself skips a peer whose install is missing, with the reason in the results.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${CONFAB_BENCH_VENV:-target/bench/venv}
REQ=e2e/bench/peers/django/requirements.txt
if [ ! -x "$VENV/bin/daphne" ] || ! cmp -s "$REQ" "$VENV/.requirements"; then
    echo "setting up the Django Channels peer in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
    cp "$REQ" "$VENV/.requirements"
fi

SIO=e2e/bench/peers/socketio
if [ ! -d "$SIO/node_modules/socket.io" ] || [ "$SIO/package.json" -nt "$SIO/node_modules/.installed" ]; then
    echo "setting up the Socket.IO peer in $SIO/node_modules"
    (cd "$SIO" && npm install --no-audit --no-fund --loglevel=error)
    touch "$SIO/node_modules/.installed"
fi
