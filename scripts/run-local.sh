#!/usr/bin/env bash
# Runs valkey-proxy on 127.0.0.1:7777 in front of a local 3-primary Valkey
# cluster that this script starts (ports 7001-7003, bus ports 17001-17003,
# data in .run/). Ctrl-C stops the proxy and the cluster.
#
#   scripts/run-local.sh [extra valkey-proxy flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

run_dir=.run/cluster
mkdir -p "$run_dir"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for port in 7001 7002 7003; do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
        echo "run-local: port $port is already in use; stop whatever listens there first" >&2
        exit 1
    fi
    rm -f "$run_dir/nodes-$port.conf"
    valkey-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-port $((port + 10000)) \
        --cluster-config-file "nodes-$port.conf" --dir "$run_dir" --save "" --appendonly no \
        --logfile "valkey-$port.log" &
    pids+=($!)
done
for port in 7001 7002 7003; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli -p 7001 cluster addslotsrange 0 5460 >/dev/null
redis-cli -p 7002 cluster addslotsrange 5461 10922 >/dev/null
redis-cli -p 7003 cluster addslotsrange 10923 16383 >/dev/null
redis-cli -p 7001 cluster meet 127.0.0.1 7002 17002 >/dev/null
redis-cli -p 7001 cluster meet 127.0.0.1 7003 17003 >/dev/null
for _ in $(seq 100); do
    redis-cli -p 7001 cluster info | grep -q cluster_state:ok && break
    sleep 0.1
done
echo "run-local: Valkey cluster up on 127.0.0.1:7001-7003" >&2

cargo build --release -q -p valkey-proxy-bin
echo "run-local: valkey-proxy on 127.0.0.1:7777. Connect with: redis-cli -p 7777" >&2
target/release/valkey-proxy --listen 127.0.0.1:7777 --backend 127.0.0.1:7001 "$@" &
pids+=($!)
wait "${pids[-1]}"
