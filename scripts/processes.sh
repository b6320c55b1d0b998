# Sourced by the benchmark scripts: a scratch directory and the processes
# started into it, both cleaned up on exit, and helpers to start and watch
# them.

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A TCP port nobody listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to 30 s for PING to answer on a port.
wait_for() { for _ in $(seq 300); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }
# CPU seconds (user + system) a process has used so far.
cpu_of() { awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.3f\n", (f[12] + f[13]) / 100 }' "/proc/$1/stat"; }
# Exits with one clear line when a tool the script needs is missing:
# require <command> <Debian package>.
require() {
    command -v "$1" >/dev/null && return 0
    echo "$1 is missing: install it (Debian: apt-get install $2)" >&2
    exit 1
}
