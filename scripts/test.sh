#!/usr/bin/env bash
# The test command: formatting, lints, every test (against real Valkey 9.1
# and Redis 7.0 servers the tests start themselves), and the fuzz target's
# build. Installs the servers first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== fuzz targets build and run briefly" >&2
scripts/fuzz.sh 15
echo "== cargo test" >&2
cargo test --workspace
