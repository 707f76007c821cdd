/* SPDX-License-Identifier: MIT */
/* Assertions that stay on in every build, plus the slow (O(n)) variant behind an option. */
#ifndef YGGR_CORE_YGGR_ASSERT_H
#define YGGR_CORE_YGGR_ASSERT_H

#include <stdbool.h>

/* Print "file:line: assertion `expr' failed" (and an optional message) to stderr and
 * abort(). Never returns. */
_Noreturn void yggr_assert_fail(const char *expr, const char *file, int line);
_Noreturn void yggr_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define YGGR_LIKELY(x)   __builtin_expect(!!(x), 1)
#define YGGR_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define YGGR_ASSERT(expr)                                                                     \
    do {                                                                                      \
        if (YGGR_UNLIKELY(!(expr))) {                                                         \
            yggr_assert_fail(#expr, __FILE__, __LINE__);                                      \
        }                                                                                     \
    } while (0)

#ifdef YGGR_SLOW_ASSERTS
#define YGGR_ASSERT_SLOW(expr) YGGR_ASSERT(expr)
#else
#define YGGR_ASSERT_SLOW(expr)                                                                \
    do {                                                                                      \
        (void)sizeof(expr);                                                                   \
    } while (0)
#endif

/* Fatal condition that is not a programming error (e.g. a failed fsync). */
#define YGGR_PANIC(...) yggr_panic_at(__FILE__, __LINE__, __VA_ARGS__)

/* Marks code after an exhaustive enum switch. */
#define YGGR_UNREACHABLE() yggr_assert_fail("unreachable", __FILE__, __LINE__)

#endif /* YGGR_CORE_YGGR_ASSERT_H */
