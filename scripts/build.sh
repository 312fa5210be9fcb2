#!/usr/bin/env bash
# Builds what the recipes need, the one way every recipe builds it, so that no recipe
# rebuilds what another has built:
#
#   scripts/build.sh server        # target/release/confab (`just run`, `just confab`, ...)
#   scripts/build.sh server spa    # and the SPA into frontend/dist, side by side
#   scripts/build.sh tests spa     # every test binary and the server (`just test`), and the SPA
#   scripts/build.sh spa           # the SPA only (`just build-spa`)
#
# Why one way: cargo unifies the features of every package it builds at once, and a test
# build also turns on the dev-dependencies' features (confab-shared's `ts` and `fuzz`, a TLS
# provider for the test receiver, ...). A plain `cargo build --bin confab` therefore resolves
# other features, and rebuilt sqlx, sea-orm and the backend (four minutes on two cores)
# after every `just test`. Here the server is built with the test build's package selection
# and with dev-dependencies on (`--examples` asks for them, as `cargo test` does), so both
# produce the same artifacts: whichever runs second prints only `Finished`. On a fresh clone
# `server` is the quicker of the two, since it skips the test binaries.
#
# The SPA builds in a target dir of its own (CONFAB_SPA_TARGET_DIR, default target/spa-build):
# the WASM and the server end in long single-threaded stretches (fat LTO, the backend crate),
# so on a 2-core machine each fills the other's idle core, which one shared target dir would
# serialise on its lock. The server honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

server=0 tests=0 spa=0
for what in "$@"; do
    case "$what" in
        server) server=1 ;;
        tests) tests=1 ;;
        spa) spa=1 ;;
        *) echo "usage: $0 [server|tests] [spa]" >&2; exit 2 ;;
    esac
done
[ $((server + tests + spa)) -gt 0 ] || { echo "usage: $0 [server|tests] [spa]" >&2; exit 2; }

started=$SECONDS
spa_pid=""
spa_log=""
if [ "$spa" = 1 ]; then
    spa_log=$(mktemp)
    (
        CARGO_TARGET_DIR=${CONFAB_SPA_TARGET_DIR:-$PWD/target/spa-build} bash frontend/build.sh
        echo "the SPA built in $((SECONDS - started)) s"
    ) >"$spa_log" 2>&1 &
    spa_pid=$!
    trap 'kill "$spa_pid" 2>/dev/null || true; rm -f "$spa_log"' EXIT
fi

# The profile and package selection of every Rust build (scripts/test.sh runs the tests
# with the same flags).
selection=(--release --workspace --exclude confab-frontend)
if [ "$tests" = 1 ]; then
    # --timings: target/cargo-timings/ shows where a slow build spent its time.
    cargo test "${selection[@]}" --no-run --timings
    echo "the Rust build (tests and server) took $((SECONDS - started)) s"
elif [ "$server" = 1 ]; then
    cargo build "${selection[@]}" --bin confab --examples
    echo "the server built in $((SECONDS - started)) s"
fi

if [ -n "$spa_pid" ]; then
    status=0
    wait "$spa_pid" || status=$?
    spa_pid=""
    cat "$spa_log"
    [ "$status" = 0 ] || { echo "the SPA build failed" >&2; exit 1; }
fi
