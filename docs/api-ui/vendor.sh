#!/usr/bin/env bash
# Vendors the Swagger UI assets that /api/docs serves: installs the pinned swagger-ui-dist
# from the npm registry (package-lock.json) and copies the few files the page needs into
# docs/api-ui/dist (git-ignored). Nothing is fetched at cargo build time or at run time.
# Idempotent and quick when already done; `just run` and `just test` call it.
set -euo pipefail
cd "$(dirname "$0")"

files=(swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE)
version=$(sed -n 's/.*"swagger-ui-dist": "\([^"]*\)".*/\1/p' package.json | head -n 1)
if [ -f dist/VERSION ] && [ "$(cat dist/VERSION)" = "$version" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "vendor.sh: npm is needed to vendor the API docs assets (apt-get install npm)" >&2
    exit 1
fi
# --ignore-scripts: swagger-ui-dist depends on an analytics package whose install script
# would phone home; nothing here needs a script to run.
SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
rm -rf dist
mkdir -p dist
for file in "${files[@]}"; do
    cp "node_modules/swagger-ui-dist/$file" dist/
done
# Source maps are not vendored; drop the comments pointing at them so browsers don't ask.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's|/\*# sourceMappingURL=[^*]*\*/||' dist/swagger-ui-bundle.js dist/swagger-ui.css
echo "$version" > dist/VERSION
echo "vendored swagger-ui-dist $version into docs/api-ui/dist"
