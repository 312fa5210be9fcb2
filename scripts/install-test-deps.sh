#!/usr/bin/env bash
# Installs what the test suite needs, skipping whatever is already there:
# redis-server, PostgreSQL, Chromium, brotli, nginx (Debian packages), the e2e npm packages,
# the e2e Python packages (e2e/*/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium chromium-driver)
command -v node >/dev/null || missing+=(nodejs npm)
# frontend/build.sh compresses the SPA's files with it.
command -v brotli >/dev/null || missing+=(brotli)
# The client library's tests run it as a real proxy in front of the server (one passing
# WebSockets, one refusing them).
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Every e2e package (browser tests, the TypeScript example client, ...) and the TypeScript
# client library install their own.
for package in shared/client-ts/package.json e2e/*/package.json; do
    [ -f "$package" ] || continue
    dir=$(dirname "$package")
    if [ -f "$dir/package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    else
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    fi
done
for requirements in e2e/*/requirements.txt; do
    [ -f "$requirements" ] || continue
    python3 -m pip install --quiet --disable-pip-version-check -r "$requirements"
done
