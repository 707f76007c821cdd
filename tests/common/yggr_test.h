/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Criterion suites: io skip gate, temp dirs. */
#ifndef YGGR_TESTS_COMMON_YGGR_TEST_H
#define YGGR_TESTS_COMMON_YGGR_TEST_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>

/* Skip (cr_skip, with the reason) when the build disabled io tests (-Dio_tests=disabled)
 * or when this kernel/sandbox refuses io_uring. Use at the top of every test that needs
 * io_uring or sockets. */
#define YGGR_REQUIRE_IO()                                                                     \
    do {                                                                                      \
        const char *yggr_skip_reason_ = yggr_test_io_unavailable();                          \
        if (yggr_skip_reason_ != NULL) {                                                      \
            cr_skip("%s", yggr_skip_reason_);                                                 \
        }                                                                                     \
    } while (0)

/* NULL when io tests may run, else the reason they cannot. */
const char *yggr_test_io_unavailable(void);

/* Create a fresh directory under $TMPDIR (or /tmp) named yggr-<tag>-XXXXXX; returns a
 * static-lifetime malloc'd path. Aborts the test on failure. */
char *yggr_test_tmpdir(const char *tag);

/* rm -rf `path` (best effort). */
void yggr_test_rmtree(const char *path);

#endif /* YGGR_TESTS_COMMON_YGGR_TEST_H */
