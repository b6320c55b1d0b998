#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer of the RESP decoders and of the
# command router (routing, key positions, splits by slot, a tenant's key
# rewrite), on the stable toolchain (the same sanitizer-coverage flags
# cargo-fuzz passes, without needing nightly). Each target runs for
# SECONDS (default 60); a crash is written to fuzz/ and fails the run.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
target=x86_64-unknown-linux-gnu
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions"
# --target keeps these flags away from build scripts, as cargo-fuzz does.
cargo build --release --quiet --target "$target" --target-dir target/coverage
for fuzzer in request_decoder reply_decoder router; do
    mkdir -p "corpus/$fuzzer"
    echo "fuzz: $fuzzer for ${seconds}s" >&2
    "target/coverage/$target/release/$fuzzer" "corpus/$fuzzer" -max_total_time="$seconds" -print_final_stats=1 2>&1 |
        grep -E "^(stat::number_of_executed_units|Done|==|.*panicked)" || true
    if ls crash-* >/dev/null 2>&1; then
        echo "fuzz: $fuzzer found a crash: $(ls crash-*)" >&2
        exit 1
    fi
done
