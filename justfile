# Confab: `just run` serves the app on http://127.0.0.1:8000; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Serve the SPA and the API on SQLite with the in-process channel layer.
run: build-spa build-docs
    cargo run --release --bin confab

# Build the Leptos SPA into frontend/dist: size-optimised WASM, content-hashed, brotli + gzip copies.
build-spa:
    bash frontend/build.sh

# Vendor the Swagger UI assets /api/docs serves (npm registry, once; no CDN at run time).
build-docs:
    bash docs/api-ui/vendor.sh

# Install test dependencies, start redis + postgres on private ports, run every test, stop them.
test:
    bash scripts/test.sh

# A local cluster to look at: redis + PostgreSQL + 3 instances on 8001-8003 (Ctrl-C stops).
cluster: build-spa build-docs
    bash scripts/cluster.sh

# Only the scale-out suite, on a six-node Redis Cluster (about a minute; `just test` runs it too).
test-redis-cluster:
    bash scripts/services.sh start
    source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env" && CONFAB_TEST_REDIS=cluster cargo test --release --workspace --exclude confab-frontend --test api -- cluster::

# Apply database migrations.
migrate:
    cargo run --release --bin confab -- migrate

# Benchmark Confab against Django Channels and Socket.IO, every scenario (under 10 min); writes docs/bench/.
bench:
    bash e2e/bench/run.sh full

# Lighthouse (mobile) on /login and a room page of a release server; rewrites docs/lighthouse.md and .json.
lighthouse: build-spa
    cargo build --release --bin confab
    CONFAB_SKIP_SPA_BUILD=1 CONFAB_LIGHTHOUSE_OUT=docs bash e2e/suites/15-lighthouse.sh

# The benchmark, smaller and shorter (under a minute); writes target/bench/quick/.
bench-quick:
    bash e2e/bench/run.sh quick
