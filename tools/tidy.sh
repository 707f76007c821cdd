#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Layer and size checks (ARCHITECTURE.md 1, STYLE.md 3.1 and 3.9). Exit 1 on any violation.
#  - lib/ never includes <pthread.h>, <liburing.h>, <sys/socket.h> or ck headers;
#  - storage/ and transport/ never include each other or runtime/;
#  - tools/ include only the public headers (yggr/...) and their own headers;
#  - no function body longer than 100 lines (C files under lib storage transport runtime tools).
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
report() { echo "tidy: $*" >&2; fail=1; }

while IFS= read -r hit; do
    report "lib/ must stay pure (no threads, io_uring, sockets, ck): $hit"
done < <(grep -rnE '#\s*include\s*<(pthread\.h|liburing\.h|liburing/|sys/socket\.h|ck_[a-z_]*\.h)' lib || true)

for d in storage transport; do
    [ -d "$d" ] || continue
    other=$([ "$d" = storage ] && echo transport || echo storage)
    while IFS= read -r hit; do
        report "$d/ must not include $other/ or runtime/: $hit"
    done < <(grep -rnE "#\s*include\s*\"(\.\./)*($other|runtime)/" "$d" || true)
done

# tools/: quoted includes must be public headers or files inside tools/.
if [ -d tools ]; then
    while IFS= read -r line; do
        file=${line%%:*}
        inc=$(sed -nE 's/.*#\s*include\s*"([^"]+)".*/\1/p' <<<"${line#*:*:}")
        case "$inc" in
            yggr/*) continue ;;
        esac
        dir=$(dirname "$file")
        if [ -f "$dir/$inc" ] || [ -f "tools/$inc" ]; then
            continue
        fi
        report "tools/ may include only public headers: $line"
    done < <(grep -rnE '#\s*include\s*"' tools --include='*.c' --include='*.h' || true)
fi

# Function length: a body starts at a line that is exactly "{" following a line that ends
# with ")" (Linux brace style) and ends at the next line that is exactly "}".
while IFS= read -r f; do
    awk -v file="$f" '
        /^\{$/ && prev ~ /\)$/ { start = NR; name = prev; next }
        /^\}$/ && start { len = NR - start - 1
            if (len > 100) { printf "%s:%d: function body is %d lines (max 100): %s\n", file, start, len, name }
            start = 0 }
        { prev = $0 }
    ' "$f"
done < <(find lib storage transport runtime tools -name '*.c' 2>/dev/null) > /tmp/yggr-tidy.$$
if [ -s /tmp/yggr-tidy.$$ ]; then
    while IFS= read -r hit; do report "$hit"; done < /tmp/yggr-tidy.$$
fi
rm -f /tmp/yggr-tidy.$$

if [ $fail -ne 0 ]; then
    echo "tidy: FAILED" >&2
    exit 1
fi
echo "tidy: layers and function sizes OK"
