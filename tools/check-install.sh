#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the library into a staging directory and build + run tools/example-counter
# against the installed header and `pkg-config yggr` only, as a user's program would.
#   tools/check-install.sh [builddir]
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
stage=$(mktemp -d "${TMPDIR:-/tmp}/yggr-stage-XXXXXX")
trap 'rm -rf "$stage"' EXIT
meson install -C "$build" --destdir "$stage" >/dev/null
pcdir=$(dirname "$(find "$stage" -name yggr.pc | head -1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$stage"
echo "check-install: pkg-config --cflags --libs yggr -> $(pkg-config --cflags --libs yggr)"
libdir=$(dirname "$(find "$stage" -name 'libyggr_rt.so.0' | head -1)")
cc -std=c11 -Wall -Wextra -Werror -o "$stage/example-counter" tools/example-counter/counter.c \
    $(pkg-config --cflags --libs yggr)
LD_LIBRARY_PATH="$libdir" "$stage/example-counter" "$stage" $((26100 + RANDOM % 2000))
echo "check-install: OK (installed header, pkg-config, example-counter ran)"
