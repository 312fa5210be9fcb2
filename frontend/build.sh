#!/usr/bin/env bash
# Builds the SPA into frontend/dist: the WASM crate, its wasm-bindgen JS glue, and the
# static files. Idempotent; run from anywhere (the justfile calls it as `just build-spa`).
#
#   frontend/dist/index.html, style.css, favicon.svg
#   frontend/dist/pkg/confab_frontend.js, confab_frontend_bg.wasm
#
# Honours CARGO_TARGET_DIR (default: the workspace's target/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
dist="$here/dist"

rustup target add wasm32-unknown-unknown >/dev/null

# The CLI must be exactly the wasm-bindgen version the crate links against, or the glue
# it generates does not match the module.
wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ -z "$wb_version" ]]; then
  echo "build.sh: wasm-bindgen is not in Cargo.lock; run 'cargo generate-lockfile' first" >&2
  exit 1
fi
if ! command -v wasm-bindgen >/dev/null || [[ "$(wasm-bindgen --version | awk '{print $2}')" != "$wb_version" ]]; then
  echo "build.sh: installing wasm-bindgen-cli $wb_version"
  cargo install wasm-bindgen-cli --version "$wb_version"
fi

cargo build -p confab-frontend --target wasm32-unknown-unknown --release

rm -rf "$dist"
mkdir -p "$dist/pkg"
# Cargo names the binary after the package (confab-frontend.wasm); --out-name gives the
# files the names index.html loads.
wasm-bindgen --target web --no-typescript --out-name confab_frontend --out-dir "$dist/pkg" \
  "$target_dir/wasm32-unknown-unknown/release/confab-frontend.wasm"
cp "$here/index.html" "$here/style.css" "$here/favicon.svg" "$dist/"

echo "build.sh: SPA built in ${dist#"$root"/} ($(du -sh "$dist/pkg/confab_frontend_bg.wasm" | cut -f1) wasm)"
