/* SPDX-License-Identifier: MIT */
/* Failure paths of the always-on assertion macros. */
#include "yggr_assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

_Noreturn void yggr_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "yggr: %s:%d: assertion `%s' failed\n", file, line, expr);
    fflush(stderr);
    abort();
}

_Noreturn void yggr_panic_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "yggr: %s:%d: panic: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}
