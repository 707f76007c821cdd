/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Criterion suites. */
#include "yggr_test.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

const char *yggr_test_io_unavailable(void)
{
#if !YGGR_IO_TESTS
    return "io tests disabled at build time (-Dio_tests=disabled)";
#else
    static int probed;
    static char reason[160];
    if (!probed) {
        struct io_uring ring;
        int rc = io_uring_queue_init(4, &ring, 0);
        if (rc < 0) {
            snprintf(reason, sizeof(reason), "io_uring unavailable here: %s", strerror(-rc));
        } else {
            io_uring_queue_exit(&ring);
            reason[0] = '\0';
        }
        probed = 1;
    }
    return reason[0] != '\0' ? reason : NULL;
#endif
}

char *yggr_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    size_t n = strlen(base) + strlen(tag) + 32;
    char *path = malloc(n);
    cr_assert_not_null(path);
    snprintf(path, n, "%s/yggr-%s-XXXXXX", base, tag);
    cr_assert_not_null(mkdtemp(path), "mkdtemp(%s): %s", path, strerror(errno));
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void yggr_test_rmtree(const char *path)
{
    if (path != NULL) {
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}
