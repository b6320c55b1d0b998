#!/usr/bin/env bash
# Tenants under load: examples/config/tenants.toml in front of the local
# 3-primary cluster (scripts/run-local.sh), with redis-benchmark GET, 50
# clients each. Reports, from one run:
#   - shop's measured rate against its max_ops_per_sec (5,000);
#   - blog's p99 alone, and while shop runs at its limit (median of
#     --repeat runs each), and their ratio.
#
#   scripts/bench-tenants.sh [--repeat N]
#
# Everything shares this machine's cores, so only figures from one run
# mean anything together.
set -euo pipefail
cd "$(dirname "$0")/.."

repeat=3
while [ $# -gt 0 ]; do
    case "$1" in
        --repeat) repeat=$2; shift 2 ;;
        *) echo "usage: $0 [--repeat N]" >&2; exit 64 ;;
    esac
done

scripts/install-deps.sh >&2
cargo build --release -q -p valkey-proxy-bin
setsid scripts/run-local.sh --config examples/config/tenants.toml > .run/bench-tenants.log 2>&1 &
local_pid=$!
trap 'kill -- -"$local_pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 300); do
    redis-cli -p 7777 --user blog-app --pass b1 --no-auth-warning ping 2>/dev/null | grep -q PONG && break
    sleep 0.2
done

bench() { # user password requests -> one CSV line: "GET",rps,avg,min,p50,p95,p99,max
    redis-benchmark -p 7777 --user "$1" -a "$2" -t get -c 50 -n "$3" --csv 2>/dev/null | tail -1
}
field() { echo "$1" | tr -d '"' | cut -d, -f"$2"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

solo=()
for _ in $(seq "$repeat"); do solo+=("$(field "$(bench blog-app b1 200000)" 7)"); done
busy=()
shop_rates=()
for _ in $(seq "$repeat"); do
    # shop at its limit for about 8 s; blog's run starts once it is going.
    bench shop-app s1 40000 > .run/bench-tenants-shop.csv &
    shop_pid=$!
    sleep 1
    busy+=("$(field "$(bench blog-app b1 200000)" 7)")
    wait "$shop_pid"
    shop_rates+=("$(field "$(cat .run/bench-tenants-shop.csv)" 2)")
done
solo_p99=$(printf '%s\n' "${solo[@]}" | median)
busy_p99=$(printf '%s\n' "${busy[@]}" | median)
shop_rate=$(printf '%s\n' "${shop_rates[@]}" | sort -g | tail -1)
echo "shop GET, limit 5000/s: highest measured $shop_rate/s ($(awk -v r="$shop_rate" 'BEGIN {printf "%+.1f%%", (r / 5000 - 1) * 100}') over the limit); runs: ${shop_rates[*]}"
echo "blog GET p99 alone: $solo_p99 ms (runs: ${solo[*]})"
echo "blog GET p99 with shop at its limit: $busy_p99 ms (runs: ${busy[*]})"
echo "ratio: $(awk -v a="$busy_p99" -v b="$solo_p99" 'BEGIN {printf "%.2f", a / b}')"
