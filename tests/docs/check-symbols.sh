#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libyggr_rt.so exports only yggr_* symbols (hidden visibility + version script), and it
# exports the public API the headers declare.
set -euo pipefail
lib=$1
shift
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)
bad=$(grep -v '^yggr_' <<<"$exported" || true)
if [ -n "$bad" ]; then
    echo "check-symbols: $lib exports non-yggr_ symbols:" >&2
    echo "$bad" | head -20 >&2
    exit 1
fi
missing=0
for h in "$@"; do
    for fn in $(grep -oE 'YGGR_API [^(]*\b(yggr_[a-z0-9_]+)\(' "$h" | grep -oE 'yggr_[a-z0-9_]+\($' | tr -d '('); do
        grep -qx "$fn" <<<"$exported" || { echo "check-symbols: $fn (declared in $h) is not exported" >&2; missing=1; }
    done
done
[ $missing -eq 0 ] || exit 1
echo "check-symbols: $(wc -l <<<"$exported") exported symbols, all yggr_*, every public function present"
