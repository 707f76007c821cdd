#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compile every ```c block of the given markdown files as its own translation unit against
# the public headers (warnings are errors), so documentation samples cannot rot.
#   check-samples.sh <include dir> <compiler> <doc.md>...
set -euo pipefail
inc=$1
cc=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/yggr-samples-XXXXXX")
trap 'rm -rf "$work"' EXIT
total=0
for doc in "$@"; do
    awk -v dir="$work" -v base="$(basename "$doc" .md)" '
        /^```c$/ { n++; file = sprintf("%s/%s-%02d.c", dir, base, n); inblock = 1; next }
        /^```/ && inblock { inblock = 0; close(file); next }
        inblock { print > file }
    ' "$doc"
done
for f in "$work"/*.c; do
    [ -e "$f" ] || continue
    total=$((total + 1))
    if ! "$cc" -std=c11 -Wall -Wextra -Werror -Wno-unused-function -I"$inc" -c "$f" \
        -o "${f%.c}.o" 2>"${f%.c}.err"; then
        echo "check-samples: $(basename "$f") does not compile:" >&2
        cat "${f%.c}.err" >&2
        exit 1
    fi
done
if [ "$total" -eq 0 ]; then
    echo "check-samples: no C samples found in $*" >&2
    exit 1
fi
echo "check-samples: $total C samples compile against the public headers"
