#!/usr/bin/env bash
# Builds the SPA into frontend/dist, ready to be served as is (see backend/src/spa.rs):
#
#   frontend/dist/index.html, favicon.svg                  revalidated on every load
#   frontend/dist/favicon-unread.svg, notify.js, sw.js     (the service worker keeps its
#                                                         name: its scope is where it is)
#   frontend/dist/assets/confab_frontend-<hash>.js         the wasm-bindgen glue
#   frontend/dist/assets/confab_frontend_bg-<hash>.wasm    the app
#   frontend/dist/assets/style-<hash>.css
#
# Assets are named by their content (so they can be cached for a year) and index.html is
# rewritten to name them. Every text and WASM file gets a brotli (-q 11) and a gzip (-9)
# copy beside it, which the server sends to clients that accept them.
#
# The WASM is built with the `wasm-release` profile (Cargo.toml: optimised for size), not
# `release`, which stays optimised for the server's speed. Idempotent; run from anywhere
# (the justfile calls it as `just build-spa`). Honours CARGO_TARGET_DIR (default: the
# workspace's target/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
dist="$here/dist"
profile=wasm-release

for tool in brotli gzip sha256sum; do
  if ! command -v "$tool" >/dev/null; then
    echo "build.sh: '$tool' is missing (scripts/install-test-deps.sh installs it: apt-get install $tool)" >&2
    exit 1
  fi
done

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

cargo build -p confab-frontend --target wasm32-unknown-unknown --profile "$profile"

# wasm-bindgen writes into a scratch dir; only hashed copies go to dist.
pkg="$target_dir/spa-pkg"
rm -rf "$pkg"
# The name section only helps a debugger; the producers section is metadata.
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
  --out-name confab_frontend --out-dir "$pkg" \
  "$target_dir/wasm32-unknown-unknown/$profile/confab-frontend.wasm"

rm -rf "$dist"
mkdir -p "$dist/assets"

# Copies $1 to dist/assets/<stem>-<first 16 hex of its sha256>.<ext> and prints the URL.
hashed() {
  local file=$1 name stem ext hash
  name=$(basename "$file")
  stem=${name%.*}
  ext=${name##*.}
  hash=$(sha256sum "$file" | cut -c1-16)
  cp "$file" "$dist/assets/$stem-$hash.$ext"
  echo "/assets/$stem-$hash.$ext"
}
js_url=$(hashed "$pkg/confab_frontend.js")
wasm_url=$(hashed "$pkg/confab_frontend_bg.wasm")
css_url=$(hashed "$here/style.css")

# index.html names the unhashed files (so it reads as plain HTML); point it at these.
sed -e "s|/pkg/confab_frontend\.js|$js_url|g" \
    -e "s|/pkg/confab_frontend_bg\.wasm|$wasm_url|g" \
    -e "s|/style\.css|$css_url|g" \
    "$here/index.html" >"$dist/index.html"
for url in "$js_url" "$wasm_url" "$css_url"; do
  if ! grep -qF "$url" "$dist/index.html"; then
    echo "build.sh: index.html does not reference $url (its asset paths changed?)" >&2
    exit 1
  fi
done
cp "$here/favicon.svg" "$here/favicon-unread.svg" "$here/notify.js" "$here/sw.js" "$dist/"

# -n: no name or time stamp in the gzip header, so a rebuild of the same file is identical.
while IFS= read -r -d '' file; do
  brotli -q 11 -f -k -o "$file.br" "$file"
  gzip -9 -n -f -k "$file"
done < <(find "$dist" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.svg' \) -print0)

wasm="$dist${wasm_url}"
echo "build.sh: SPA built in ${dist#"$root"/}: wasm $(stat -c %s "$wasm") B," \
  "gzip $(stat -c %s "$wasm.gz") B, brotli $(stat -c %s "$wasm.br") B"
