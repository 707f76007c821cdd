/* SPDX-License-Identifier: MIT */
/* Concurrency stress of the disk actor without Criterion (so it also runs under
 * ThreadSanitizer): a driver thread keeps thousands of appends, hard states, reads,
 * snapshot reads and compactions in flight while an apply thread writes and reads local
 * snapshots; then the directory is recovered and checked. Exit 0 = pass, 77 = skipped. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "storage.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "stress_actor: %s:%d: check failed: %s\n", __FILE__, __LINE__,    \
                    #cond);                                                                   \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

struct ctx {
    const struct yggr_storage_ops *ops;
    struct yggr_storage *s;
    _Atomic uint64_t durable;          /* last durable index seen by the driver */
    _Atomic int stop;
    uint64_t snaps_written;
};

static uint8_t byte_at(uint64_t index, uint32_t i)
{
    return (uint8_t)(index * 31 + i);
}

static void *apply_thread(void *arg)
{
    struct ctx *c = arg;
    uint8_t buf[4096];
    while (!atomic_load(&c->stop)) {
        uint64_t at = atomic_load(&c->durable);
        if (at < 10) {
            usleep(1000);
            continue;
        }
        struct yggr_storage_snapshot_writer *w = NULL;
        CHECK(c->ops->snapshot_begin(c->s, &w) == 0);
        memset(buf, (int)at, sizeof(buf));
        for (int i = 0; i < 16; i++) {
            CHECK(c->ops->snapshot_write(w, buf, sizeof(buf)) == 0);
        }
        struct yggr_snapshot_meta meta = {.last = {at, 1}, .size = 16 * sizeof(buf)};
        meta.config.voter_count = 1;
        meta.config.voters[0] = 1;
        char why[256];
        CHECK(c->ops->snapshot_commit(w, &meta, why, sizeof(why)) == 0);
        struct yggr_storage_snapshot_reader *r = NULL;
        CHECK(c->ops->snapshot_open(c->s, meta.last, &r, NULL) == 0);
        long n, total = 0;
        while ((n = c->ops->snapshot_read(r, buf, sizeof(buf))) > 0) {
            total += n;
        }
        CHECK(n == 0 && total == 16 * 4096);
        c->ops->snapshot_close(r);
        c->snaps_written++;
        usleep(2000);
    }
    return NULL;
}

static void submit(struct ctx *c, struct yggr_storage_req *req)
{
    int rc;
    while ((rc = c->ops->submit(c->s, req)) == YGGR_ERR_BUSY) {
        c->ops->flush(c->s);
        struct yggr_storage_done d;
        if (storage_sync_wait(c->s, &d, 1000)) {
            if (d.type == YGGR_STORAGE_DURABLE && d.log.index > atomic_load(&c->durable)) {
                atomic_store(&c->durable, d.log.index);
            }
            CHECK(d.type != YGGR_STORAGE_FAILED);
            c->ops->release(c->s, &d);
        }
    }
    CHECK(rc == 0);
}

static void take(struct ctx *c, struct yggr_storage_done *d)
{
    CHECK(d->type != YGGR_STORAGE_FAILED);
    if (d->type == YGGR_STORAGE_DURABLE && d->log.index > atomic_load(&c->durable)) {
        atomic_store(&c->durable, d->log.index);
    }
    for (uint32_t k = 0; d->type == YGGR_STORAGE_READ_DONE && k < d->count; k++) {
        const struct yggr_entry *e = &d->entries[k];
        CHECK(e->len == 8 + e->index % 300);
        CHECK(e->data[e->len - 1] == byte_at(e->index, e->len - 1));
    }
    c->ops->release(c->s, d);
}

/* One round of the driver: appends of 1..16 entries, plus the occasional other request. */
static uint64_t drive(struct ctx *c, uint64_t next, int round, struct yggr_buf **bufs)
{
    uint32_t n = 1 + (uint32_t)(round % 16);
    struct yggr_entry e[16];
    for (uint32_t k = 0; k < n; k++) {
        uint64_t index = next + k;
        uint32_t len = 8 + (uint32_t)(index % 300);
        struct yggr_buf *b = bufs[index % 64];
        for (uint32_t i = 0; i < len; i++) {
            b->data[i] = byte_at(index, i);
        }
        e[k] = (struct yggr_entry){.index = index, .term = 1, .type = YGGR_ENTRY_COMMAND,
                                   .data = b->data, .buf = b, .len = len};
    }
    struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND, .tag = (uint64_t)round};
    req.as.append.entries = e;
    req.as.append.count = n;
    submit(c, &req);
    uint64_t durable = atomic_load(&c->durable);
    struct yggr_storage_req other = {.tag = (uint64_t)round};
    if (round % 7 == 0 && durable > 20) {
        other.type = YGGR_STORAGE_READ;
        other.as.read.first = durable - 20;
        other.as.read.count = 20;
        submit(c, &other);
    } else if (round % 11 == 0) {
        other.type = YGGR_STORAGE_HARD_STATE;
        other.as.hard_state.term = (uint64_t)round;
        submit(c, &other);
    } else if (round % 97 == 0 && durable > 2000) {
        other.type = YGGR_STORAGE_COMPACT;
        other.as.compact.below = durable - 2000;
        submit(c, &other);
    }
    return next + n;
}

int main(void)
{
    struct io_uring probe;
    if (io_uring_queue_init(4, &probe, 0) < 0) {
        fprintf(stderr, "stress_actor: io_uring unavailable: skipped\n");
        return 77;
    }
    io_uring_queue_exit(&probe);
    char dir[] = "/tmp/yggr-stress-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct storage_options o = {.dir = dir, .segment_bytes = 64u << 10, .queue_entries = 4096,
                                .prep_chunk_bytes = 16u << 10};
    struct ctx c = {0};
    char why[256];
    CHECK(storage_disk_create_ex(&o, NULL, &c.ops, &c.s, why, sizeof(why)) == 0);
    struct yggr_storage_meta meta = {.cluster_id = 1, .node_id = 1};
    meta.bootstrap_config.voter_count = 1;
    meta.bootstrap_config.voters[0] = 1;
    struct yggr_storage_state st;
    CHECK(c.ops->bootstrap(c.s, &meta, why, sizeof(why)) == 0);
    CHECK(c.ops->recover(c.s, &st, why, sizeof(why)) == 0);
    CHECK(storage_sync_start(c.s) == 0);
    pthread_t apply;
    CHECK(pthread_create(&apply, NULL, apply_thread, &c) == 0);
    struct yggr_buf *bufs[64];
    uint64_t next = 1;
    for (int round = 1; round <= 3000; round++) {
        /* Each entry's bytes are rewritten every 64 indices: wait until it is durable. */
        while (next > atomic_load(&c.durable) + 48) {
            c.ops->flush(c.s);
            struct yggr_storage_done d;
            if (storage_sync_wait(c.s, &d, 1000)) {
                take(&c, &d);
            }
        }
        for (int i = 0; i < 64 && round == 1; i++) {
            bufs[i] = yggr_buf_alloc(512);
        }
        next = drive(&c, next, round, bufs);
        c.ops->flush(c.s);
        struct yggr_storage_done d;
        while (c.ops->poll(c.s, &d)) {
            take(&c, &d);
        }
    }
    atomic_store(&c.stop, 1);
    pthread_join(apply, NULL);
    c.ops->close(c.s);
    for (int i = 0; i < 64; i++) {
        yggr_buf_release(bufs[i]);
    }
    CHECK(storage_disk_create_ex(&o, NULL, &c.ops, &c.s, why, sizeof(why)) == 0);
    CHECK(c.ops->recover(c.s, &st, why, sizeof(why)) == 0);
    CHECK(st.recovered.last_index == next - 1);
    CHECK(st.recovered.has_snapshot);
    c.ops->close(c.s);
    printf("stress_actor: %" PRIu64 " entries, %" PRIu64 " snapshots, recovered [%" PRIu64
           ", %" PRIu64 "]\n", next - 1, c.snaps_written, st.recovered.first_index,
           st.recovered.last_index);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
