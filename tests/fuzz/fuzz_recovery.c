/* SPDX-License-Identifier: MIT */
/* Fuzz target: arbitrary bytes as a log segment, hardstate, meta or snapshot file, fed to the
 * segment scanner and to a full recover() of an otherwise valid data directory. Errors are
 * fine; crashes, hangs, leaks and sanitizer reports are not.
 *   Input: [selector byte][file bytes]; selector % 4: 0 segment, 1 hardstate, 2 meta,
 *   3 snapshot. Recovery runs over the fault injector with no fault armed (plain system
 *   calls: no io_uring needed), in $TMPDIR or /dev/shm. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault_io.h"
#include "format.h"
#include "segment.h"
#include "storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void put(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        abort();
    }
    if (len > 0 && write(fd, b, len) != (ssize_t)len) {
        abort();
    }
    close(fd);
}

/* The scanner alone, as a last and as a sealed segment. */
static void scan_only(const uint8_t *b, size_t len)
{
    struct format_segment_header hdr;
    char why[256];
    uint64_t first = 1;
    if (format_segment_header_decode(b, len, &hdr, why, sizeof(why)) == 0) {
        first = hdr.first_index;
    }
    for (int sealed = 0; sealed < 2; sealed++) {
        struct segment_scan s = {.buf = b, .len = len, .first_index = first};
        s.expect_last = sealed ? first + 3 : 0;
        if (segment_scan(&s, NULL, NULL) == 0 && s.garbage_end < s.end) {
            abort(); /* invariant: garbage_end >= end */
        }
    }
}

static void valid_files(const char *dir)
{
    struct yggr_storage_meta meta = {.cluster_id = 1, .node_id = 1};
    meta.bootstrap_config.voter_count = 1;
    meta.bootstrap_config.voters[0] = 1;
    uint8_t m[FORMAT_META_BYTES];
    format_meta_encode(m, &meta);
    put(dir, "meta", m, sizeof(m));
    uint8_t hs[FORMAT_HARDSTATE_BYTES] = {0};
    struct format_hard_state first = {.seq = 1, .term = 1, .vote = 1};
    format_slot_encode(hs, &first);
    put(dir, "hardstate", hs, sizeof(hs));
}

static void name_for(unsigned sel, const uint8_t *b, size_t len, char *name, size_t size)
{
    char why[256];
    if (sel == 0) {
        struct format_segment_header hdr;
        uint64_t first = format_segment_header_decode(b, len, &hdr, why, sizeof(why)) == 0
                             ? hdr.first_index : 1;
        snprintf(name, size, FORMAT_LOG_DIR "/");
        format_segment_name(name + 4, first);
    } else if (sel == 3) {
        struct format_snap_header h;
        struct yggr_log_id id = {1, 1};
        if (format_snap_header_decode(b, len, &h, why, sizeof(why)) == 0) {
            id = h.meta.last;
        }
        format_snap_name(name, id);
    } else {
        snprintf(name, size, "%s", sel == 1 ? "hardstate" : "meta");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) {
        return 0;
    }
    unsigned sel = data[0] % 4;
    const uint8_t *b = data + 1;
    size_t len = size - 1;
    if (sel == 0) {
        scan_only(b, len);
    }
    const char *base = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/yggr-fuzz-XXXXXX",
             base != NULL ? base : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"));
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    char log[600];
    snprintf(log, sizeof(log), "%s/log", dir);
    mkdir(log, 0755);
    valid_files(dir);
    char name[128];
    name_for(sel, b, len, name, sizeof(name));
    put(dir, name, b, len);
    struct fault_io *f = fault_io_create(1);
    struct storage_options o = {.dir = dir, .segment_bytes = 16u << 10,
                                .queue_entries = 64, .tail_entries = 64};
    const struct yggr_storage_ops *ops = NULL;
    struct yggr_storage *s = NULL;
    char why[256];
    if (f == NULL || storage_disk_create_ex(&o, fault_io_base(f), &ops, &s, why, sizeof(why))) {
        abort();
    }
    struct yggr_storage_state st;
    ops->recover(s, &st, why, sizeof(why));
    ops->close(s);
    fault_io_destroy(f);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
