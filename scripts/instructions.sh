#!/usr/bin/env bash
# Instructions the proxy executes per request, counted by callgrind: a
# figure that does not move with the machine's load, for comparing two
# versions of the code (the end-to-end ratios of scripts/bench.sh vary by
# +-10% from run to run on a shared machine).
#
#   scripts/instructions.sh [--requests N] [--clients N] [--binary PATH] [--tenant] [--audit]
#
# Starts a valkey-server and the proxy (release build, one worker thread)
# under callgrind, sends N pipelined GETs and N pipelined SETs (50 clients
# unless --clients says, pipeline 16) with redis-benchmark, and prints the proxy's user-space
# instructions per request, counted from the first request to the last.
# Kernel work (the socket reads and writes) is not counted. Needs valgrind.
# With --tenant the load comes from a client of a tenant (its keys under a
# prefix, the tenant checks at the gate, no rate limit). With --audit the
# proxy records every write with its keys to a file (the audit log's
# writer thread counted too). With many clients the count depends on how
# many clients' requests share a backend write, which depends on timing
# (it moved by 20% between runs on one machine); --clients 1 repeats to
# within 0.1% (docs/PERFORMANCE.md, "The request timeout's watchdog").
set -euo pipefail
cd "$(dirname "$0")/.."

requests=100000
binary=""
clients=50
tenant=0
audit=0
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) requests=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --tenant) tenant=1; shift ;;
        --audit) audit=1; shift ;;
        *) echo "usage: $0 [--requests N] [--clients N] [--binary PATH] [--tenant] [--audit]" >&2; exit 64 ;;
    esac
done

# shellcheck source=scripts/processes.sh
. scripts/processes.sh
require valgrind valgrind
scripts/install-deps.sh >&2
if [ -z "$binary" ]; then
    cargo build --release -q -p valkey-proxy-bin
    binary=target/release/valkey-proxy
fi

server_port=$(free_port)
valkey-server --port "$server_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/valkey.log" &
pids+=($!)
wait_for "$server_port"

proxy_port=$(free_port)
proxy_config=()
client_auth=()
if [ "$tenant" = 1 ]; then
    printf '%s\n' '[[tenants]]' 'name = "bench"' '[[users]]' 'name = "bench-app"' 'password = "p"' \
        'tenant = "bench"' >"$work/tenant.toml"
    proxy_config=(--config "$work/tenant.toml")
    client_auth=(--user bench-app -a p)
fi
if [ "$audit" = 1 ]; then
    printf '%s\n' '[audit]' 'events = ["command"]' 'commands = "+@write"' 'payload = "keys"' \
        '[[audit.sinks]]' 'type = "file"' "path = \"$work/audit/audit.jsonl\"" 'fsync = "1s"' >"$work/audit.toml"
    proxy_config=(--config "$work/audit.toml")
fi
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$binary" "${proxy_config[@]}" --listen "127.0.0.1:$proxy_port" --backend "127.0.0.1:$server_port" --threads 1 --log warn \
    2>"$work/valgrind.log" &
proxy_pid=$!
pids+=("$proxy_pid")
wait_for "$proxy_port"
callgrind_control -z "$proxy_pid" >/dev/null 2>&1
redis-benchmark -p "$proxy_port" "${client_auth[@]}" -t get,set -c "$clients" -n "$requests" -P 16 -r 100000 -q --csv >"$work/bench.csv"
callgrind_control -d "$proxy_pid" >/dev/null 2>&1
# The dump is written by the process; wait for the file to settle.
for _ in $(seq 50); do
    dump=$(ls -S "$work"/callgrind.out.* 2>/dev/null | head -1 || true)
    [ -n "$dump" ] && [ -s "$dump" ] && break
    sleep 0.2
done
[ -n "${KEEP_CALLGRIND:-}" ] && cp "$dump" "$KEEP_CALLGRIND"
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
as_whom=""
[ "$tenant" = 1 ] && as_whom=", as a client of a tenant"
[ "$audit" = 1 ] && as_whom="$as_whom, every SET audited"
echo "# valkey-proxy instructions per request (callgrind): $requests GET + $requests SET, $clients clients, pipeline 16$as_whom"
echo "instructions_per_request $((total / (2 * requests)))"
