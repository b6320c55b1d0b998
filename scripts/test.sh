#!/usr/bin/env bash
# The test command: formatting, lints, docs, every test (against real Valkey 9.1
# and Redis 7.0 servers the tests start themselves), and the fuzz target's
# build. Installs the servers first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo doc" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== fuzz targets build and run briefly" >&2
scripts/fuzz.sh 15
echo "== cargo test" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
