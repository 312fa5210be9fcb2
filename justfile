# Confab: `just run` serves the app on http://127.0.0.1:8000; `just test` runs every test.
# Every recipe builds through scripts/build.sh, one way, so none rebuilds what another built.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# The server binary scripts/build.sh makes.
confab := "${CARGO_TARGET_DIR:-target}/release/confab"

# Serve the SPA and the API on SQLite with the in-process channel layer.
run: build-docs
    bash scripts/build.sh server spa
    exec {{confab}}

# Run the `confab` command, built as `just test` builds it: `just confab user create alice --admin`.
confab *args:
    bash scripts/build.sh server
    {{confab}} "$@"

# Build the Leptos SPA into frontend/dist: size-optimised WASM, content-hashed, brotli + gzip copies.
build-spa:
    bash scripts/build.sh spa

# Vendor the Swagger UI assets /api/docs serves (npm registry, once; no CDN at run time).
build-docs:
    bash docs/api-ui/vendor.sh

# Install test dependencies, start redis + postgres on private ports, run every test, stop them.
test:
    bash scripts/test.sh

# Run the Rust suites `runs` times, two at once, and list every test that failed in any run.
test-flaky runs="5" filter="":
    bash scripts/test-flaky.sh "$@"

# A local cluster to look at: redis + PostgreSQL + 3 instances on 8001-8003 (Ctrl-C stops).
cluster: build-docs
    bash scripts/cluster.sh

# Only the scale-out suite, on a six-node Redis Cluster (about a minute; `just test` runs it too).
test-redis-cluster:
    bash scripts/services.sh start
    source "${CONFAB_SERVICES_DIR:-/tmp/confab-services}/env" && CONFAB_TEST_REDIS=cluster cargo test --release --workspace --exclude confab-frontend --test api -- cluster::

# Apply database migrations.
migrate:
    bash scripts/build.sh server
    {{confab}} migrate

# Benchmark Confab against Django Channels and Socket.IO, every scenario (under 10 min); writes docs/bench/.
bench:
    bash e2e/bench/run.sh full

# Lighthouse (mobile) on /login and a room page of a release server; rewrites docs/lighthouse.md and .json.
lighthouse:
    bash scripts/build.sh server spa
    CONFAB_BIN={{confab}} CONFAB_SKIP_SPA_BUILD=1 CONFAB_LIGHTHOUSE_OUT=docs bash e2e/suites/15-lighthouse.sh

# The benchmark, smaller and shorter (under a minute); writes target/bench/quick/.
bench-quick:
    bash e2e/bench/run.sh quick

# The hostile-client soak: `full` is 1 000 clients chatting while 50 attack, 60 s per phase (~4 min), writing docs/bench/soak.md; `quick` is 200 + 20, 15 s per phase, writing target/bench/soak-quick.md.
soak profile="full":
    bash scripts/build.sh tests
    mkdir -p target/bench
    "${CARGO_TARGET_DIR:-target}/release/loadgen" soak --profile {{profile}} --confab-bin {{confab}} --out {{ if profile == "full" { "docs/bench/soak.md" } else { "target/bench/soak-quick.md" } }} --commit "$(git rev-parse --short HEAD)" --command-line "just soak {{profile}}"
