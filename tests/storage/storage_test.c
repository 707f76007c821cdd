/* SPDX-License-Identifier: MIT */
/* Helpers for the storage suites. */
#include "storage_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yggr_test.h"

void st_init(struct st *t, const char *tag, uint64_t segment_bytes)
{
    memset(t, 0, sizeof(*t));
    t->dir = yggr_test_tmpdir(tag);
    t->opt.dir = t->dir;
    t->opt.segment_bytes = segment_bytes != 0 ? segment_bytes : 64u << 10;
    t->opt.queue_entries = 1u << 12;
    t->opt.prep_chunk_bytes = 16u << 10;
}

int st_try_open(struct st *t, bool fault)
{
    struct storage_io *io = NULL;
    if (fault) {
        t->fault = fault_io_create(0x5eed);
        cr_assert_not_null(t->fault);
        io = fault_io_base(t->fault);
    }
    int rc = storage_disk_create_ex(&t->opt, io, &t->ops, &t->s, t->why, sizeof(t->why));
    cr_assert_eq(rc, 0, "create: %s", t->why);
    struct yggr_storage_meta meta = {.cluster_id = 7, .node_id = 1};
    meta.bootstrap_config.voter_count = 1;
    meta.bootstrap_config.voters[0] = 1;
    char path[512];
    snprintf(path, sizeof(path), "%s/meta", t->dir);
    if (access(path, F_OK) != 0) {
        rc = t->ops->bootstrap(t->s, &meta, t->why, sizeof(t->why));
        cr_assert_eq(rc, 0, "bootstrap: %s", t->why);
    }
    return t->ops->recover(t->s, &t->state, t->why, sizeof(t->why));
}

void st_start(struct st *t)
{
    int rc = storage_sync_start(t->s);
    cr_assert_eq(rc, 0, "start: %s", yggr_strerror(rc));
}

void st_open(struct st *t, bool fault)
{
    int rc = st_try_open(t, fault);
    cr_assert_eq(rc, 0, "recover: %s (%s)", yggr_strerror(rc), t->why);
    st_start(t);
}

void st_close(struct st *t)
{
    if (t->s != NULL) {
        t->ops->close(t->s);
        t->s = NULL;
    }
    if (t->fault != NULL) {
        fault_io_destroy(t->fault);
        t->fault = NULL;
    }
}

void st_cleanup(struct st *t)
{
    st_close(t);
    yggr_test_rmtree(t->dir);
    free(t->dir);
    t->dir = NULL;
}

uint32_t st_len(uint64_t index, uint32_t base)
{
    return base == 0 ? 0 : base + (uint32_t)((index * 37) % 97);
}

uint8_t st_byte(uint64_t index, uint64_t term, uint32_t i)
{
    return (uint8_t)(index * 131 + term * 29 + i * 7 + (i >> 8));
}

struct yggr_entry *st_entries(uint64_t first, uint32_t count, uint64_t term, uint32_t base)
{
    struct yggr_entry *e = calloc(count ? count : 1, sizeof(*e));
    cr_assert_not_null(e);
    for (uint32_t k = 0; k < count; k++) {
        uint64_t index = first + k;
        uint32_t len = st_len(index, base);
        e[k].index = index;
        e[k].term = term;
        e[k].type = YGGR_ENTRY_COMMAND;
        e[k].len = len;
        if (len > 0) {
            e[k].buf = yggr_buf_alloc(len);
            cr_assert_not_null(e[k].buf);
            for (uint32_t i = 0; i < len; i++) {
                e[k].buf->data[i] = st_byte(index, term, i);
            }
            e[k].data = e[k].buf->data;
        }
    }
    return e;
}

void st_free_entries(struct yggr_entry *e, uint32_t count)
{
    for (uint32_t k = 0; k < count; k++) {
        yggr_buf_release(e[k].buf);
    }
    free(e);
}

struct yggr_log_id st_append(struct st *t, uint64_t truncate_from, uint64_t first,
                             uint32_t count, uint64_t term, uint32_t base)
{
    struct yggr_entry *e = st_entries(first, count, term, base);
    struct yggr_log_id id = {0, 0};
    int rc = storage_sync_append(t->s, truncate_from, e, count, &id, t->why, sizeof(t->why));
    st_free_entries(e, count);
    cr_assert_eq(rc, 0, "append [%" PRIu64 ", +%u): %s (%s)", first, count, yggr_strerror(rc),
                 t->why);
    return id;
}

bool st_entry_ok(const struct yggr_entry *e, uint64_t term, uint32_t base)
{
    if (e->term != term || e->type != YGGR_ENTRY_COMMAND || e->len != st_len(e->index, base)) {
        return false;
    }
    for (uint32_t i = 0; i < e->len; i++) {
        if (e->data[i] != st_byte(e->index, term, i)) {
            return false;
        }
    }
    return true;
}

void st_check_log(struct st *t, uint64_t first, uint64_t last,
                  uint64_t (*term_of)(uint64_t index, void *ctx), void *ctx, uint32_t base)
{
    uint64_t next = first;
    while (next <= last) {
        struct yggr_storage_done d;
        uint32_t want = (uint32_t)(last - next + 1 < 500 ? last - next + 1 : 500);
        int rc = storage_sync_read(t->s, next, want, 0, &d);
        cr_assert_eq(rc, 0, "read %" PRIu64 ": %s (%s)", next, yggr_strerror(rc), d.why);
        cr_assert_eq(d.count, want, "read %" PRIu64 ": %u entries, wanted %u", next, d.count,
                     want);
        for (uint32_t k = 0; k < d.count; k++) {
            const struct yggr_entry *e = &d.entries[k];
            cr_assert_eq(e->index, next + k);
            uint64_t term = term_of(e->index, ctx);
            cr_assert(st_entry_ok(e, term, base),
                      "entry %" PRIu64 ": term %" PRIu64 " len %u, wanted term %" PRIu64,
                      e->index, e->term, e->len, term);
        }
        t->ops->release(t->s, &d);
        next += want;
    }
}

int st_count_files(const struct st *t, const char *sub, const char *part)
{
    char path[512];
    snprintf(path, sizeof(path), "%s%s%s", t->dir, sub != NULL ? "/" : "",
             sub != NULL ? sub : "");
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir %s", path);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' && strstr(e->d_name, part) != NULL) {
            n++;
        }
    }
    closedir(d);
    return n;
}

void st_flip(const struct st *t, const char *rel, uint64_t offset, uint8_t mask)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "open %s", path);
    uint8_t b = 0;
    cr_assert_eq(pread(fd, &b, 1, (off_t)offset), 1);
    b ^= mask;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)offset), 1);
    close(fd);
}

const char *st_seg(uint64_t first)
{
    static char name[64];
    snprintf(name, sizeof(name), "log/%020" PRIu64 ".seg", first);
    return name;
}
