#!/usr/bin/env bash
# How much where the processes run matters: pipeline-16 GETs direct and
# through the proxy (one worker thread), with the proxy, the server and
# redis-benchmark pinned to cores in each way that separates them, and not
# pinned. Prints the throughput and each process's CPU time per request.
#
#   scripts/placement.sh [--requests N]
#
# Needs two cores (0 and 1) and taskset. See "Where the rest goes" in
# docs/PERFORMANCE.md for what this showed on the build machine.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=600000
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) requests=$2; shift 2 ;;
        *) echo "usage: $0 [--requests N]" >&2; exit 64 ;;
    esac
done

# shellcheck source=scripts/processes.sh
. scripts/processes.sh
require taskset util-linux
scripts/install-deps.sh >&2
cargo build --release -q -p valkey-proxy-bin
# Microseconds per request from two CPU-second readings.
per_request() { awk -v a="$1" -v b="$2" -v n="$requests" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }'; }

server_port=$(free_port)
valkey-server --port "$server_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/valkey.log" &
server_pid=$!
pids+=("$server_pid")
wait_for "$server_port"
proxy_port=$(free_port)
target/release/valkey-proxy --listen "127.0.0.1:$proxy_port" --backend "127.0.0.1:$server_port" \
    --threads 1 --log warn &
proxy_pid=$!
pids+=("$proxy_pid")
wait_for "$proxy_port"

# run <label> <port> <proxy cores> <server cores> <benchmark cores>
run() {
    local label=$1 port=$2
    taskset -a -p -c "$3" "$proxy_pid" >/dev/null
    taskset -a -p -c "$4" "$server_pid" >/dev/null
    local server0 proxy0 bench_cpu=0 bench
    server0=$(cpu_of "$server_pid"); proxy0=$(cpu_of "$proxy_pid")
    taskset -c "$5" redis-benchmark -p "$port" -t get -P 16 -c 50 -n "$requests" -r 100000 -q --csv \
        >"$work/out.csv" &
    bench=$!
    # The benchmark's own CPU time, read until it exits.
    while kill -0 "$bench" 2>/dev/null; do
        bench_cpu=$(cpu_of "$bench" 2>/dev/null || echo "$bench_cpu")
        sleep 0.02
    done
    wait "$bench"
    local rps proxy_us
    rps=$(awk -F'"' '/^"GET"/ { print $4 }' "$work/out.csv")
    proxy_us=$(per_request "$proxy0" "$(cpu_of "$proxy_pid")")
    [ "$port" = "$server_port" ] && proxy_us="-"
    printf '%-48s %10.0f %8s %8s %8s\n' "$label" "$rps" "$proxy_us" \
        "$(per_request "$server0" "$(cpu_of "$server_pid")")" "$(per_request 0 "$bench_cpu")"
}

echo "# $requests pipelined GETs (50 clients, pipeline 16); CPU in µs per request"
printf '%-48s %10s %8s %8s %8s\n' placement GET/s proxy server bench
run "direct: server on 0, benchmark on 1" "$server_port" 0,1 0 1
run "direct: not pinned" "$server_port" 0,1 0,1 0,1
run "proxy alone on 0; server and benchmark on 1" "$proxy_port" 0 1 1
run "proxy and server on 0; benchmark on 1" "$proxy_port" 0 0 1
run "not pinned" "$proxy_port" 0,1 0,1 0,1
