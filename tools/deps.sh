#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check yggr's build and test dependencies; install the missing Debian packages when run
# as root (or print the exact command to run otherwise).
#   tools/deps.sh            check, install what is missing
#   tools/deps.sh --check    check only; exit 1 when something is missing
set -euo pipefail

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

missing=()
need_pkgconfig() { # <pkg-config name> <debian package>
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$1"; then
        missing+=("$2")
    fi
}
need_cmd() { # <command> <debian package>
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}

need_cmd pkg-config pkg-config
need_cmd meson meson
need_cmd ninja ninja-build
need_cmd cc gcc
need_pkgconfig liburing liburing-dev
need_pkgconfig ck libck-dev
need_pkgconfig criterion libcriterion-dev
need_pkgconfig libcrypto libssl-dev
need_cmd ip iproute2
need_cmd nft nftables
need_cmd unshare util-linux
# Optional for tests (they skip without them), installed when we can.
need_cmd redis-server redis-server
need_cmd redis-cli redis-tools

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all dependencies present"
    exit 0
fi

# De-duplicate while keeping order.
pkgs=$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
if [ $check_only -eq 1 ]; then
    echo "deps: missing: $pkgs"
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: $pkgs" >&2
    echo "deps: run this as root, then retry:" >&2
    echo "    apt-get update && apt-get install -y $pkgs" >&2
    exit 1
fi
echo "deps: installing $pkgs"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs
echo "deps: done"
