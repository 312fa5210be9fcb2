# Confab: `just run` serves the app on http://127.0.0.1:8000; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Serve the SPA and the API on SQLite with the in-process channel layer.
run: build-spa
    cargo run --release --bin confab

# Build the Leptos SPA into frontend/dist (installs the wasm target and wasm-bindgen if needed).
build-spa:
    bash frontend/build.sh

# Install test dependencies, start redis + postgres on private ports, run every test, stop them.
test:
    bash scripts/test.sh

# Apply database migrations.
migrate:
    cargo run --release --bin confab -- migrate
