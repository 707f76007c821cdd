/* SPDX-License-Identifier: MIT */
/* Shared helpers for the stand-alone tools (loadgen, lincheck): asserts, clocks, number and
 * address parsing. Dependency-free C11 + POSIX; no yggr library headers needed. */
#ifndef YGGR_TOOLS_COMMON_TOOL_H
#define YGGR_TOOLS_COMMON_TOOL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Always-on assertion (STYLE.md 3.6): prints the expression and file:line, then aborts. */
#define TOOL_ASSERT(x)                                                                        \
    do {                                                                                      \
        if (!(x)) {                                                                           \
            tool_assert_fail(#x, __FILE__, __LINE__);                                         \
        }                                                                                     \
    } while (0)

#define TOOL_UNREACHABLE() tool_assert_fail("unreachable", __FILE__, __LINE__)

_Noreturn void tool_assert_fail(const char *expr, const char *file, int line);

/* Print "<prog>: <message>" to stderr and exit(code). */
_Noreturn void tool_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set the program name used by tool_die() and tool_warn(). `name` is borrowed (static). */
void tool_set_name(const char *name);

/* Print "<prog>: <message>" to stderr. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic clock in microseconds / nanoseconds. */
uint64_t tool_now_us(void);
uint64_t tool_now_ns(void);

/* Strict decimal parsers: the whole string must be a number in [min, max]. */
bool tool_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);
bool tool_parse_double(const char *text, double min, double max, double *out);

/* A resolved network address (IPv4 or IPv6) with its original "host:port" text. */
struct tool_addr {
    struct sockaddr_storage sa;
    socklen_t sa_len;
    char text[128];
};

/* Resolve "HOST:PORT" or "[V6]:PORT" (numeric or by name). Returns 0 or -1 with a reason in
 * `err` (borrowed buffer of err_size bytes). */
int tool_resolve(const char *text, struct tool_addr *out, char *err, size_t err_size);

/* True when both addresses are the same family, address and port. */
bool tool_addr_equal(const struct tool_addr *a, const struct tool_addr *b);

/* Decimal digits of v into dst (at least 20 bytes, no NUL); returns how many. */
size_t tool_put_u64(char *dst, uint64_t v);

/* splitmix64: tiny deterministic PRNG step used for seeds, keys and hashes. */
static inline uint64_t tool_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

#endif /* YGGR_TOOLS_COMMON_TOOL_H */
