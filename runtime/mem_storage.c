/* SPDX-License-Identifier: MIT */
/* In-memory storage plugin: a durable store in RAM that survives node restarts.
 *
 * Design notes:
 * - Every request completes inside submit() (the "disk" is instantaneous) and its
 *   completion is queued for poll(); flush() calls the wake callback when completions are
 *   waiting. The driver thread is the only caller of the request ops; the snapshot
 *   writer/reader run on the apply thread, so the disk is guarded by a mutex.
 * - Payloads are copied into buffers owned by the disk (never retained from the node),
 *   so a mem_disk outlives the nodes that used it.
 * - Fault injection: fail_next_append makes the next APPEND produce a FAILED completion
 *   and puts the disk in a sticky error state, as a real failed fsync would;
 *   short_snap_reads makes snapshot reads that reach the end of the snapshot return one
 *   byte less (a short read, which a plugin may do).
 * - Incoming snapshot chunks must be contiguous (engine.h), as the disk storage asserts.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "yggr_assert.h"

struct mem_disk {
    pthread_mutex_t mu;
    bool bootstrapped;
    struct yggr_storage_meta meta;
    uint64_t term;
    uint64_t vote;
    struct yggr_entry *log;   /* entries first..last (copies) */
    uint64_t first;           /* index of log[0] */
    uint64_t count;
    uint64_t cap;
    bool has_snapshot;
    struct yggr_snapshot_meta snap;
    uint8_t *snap_bytes;
    /* incoming snapshot */
    struct yggr_snapshot_meta in_meta;
    uint8_t *in_bytes;
    uint64_t in_len;
    bool fail_next_append;
    uint32_t short_snap_reads;
    bool failed;
    bool in_use;
};

struct mem_done_queue {
    struct yggr_storage_done *items;
    uint32_t head;
    uint32_t tail;
    uint32_t cap;
};

struct yggr_storage {
    struct mem_disk *disk;
    yggr_wake_fn wake;
    void *wake_ctx;
    struct mem_done_queue q;
    /* recovery views handed out by recover() */
    struct yggr_entry *rec_configs;
    struct yggr_term_run *rec_terms;
    struct yggr_entry *rec_tail;
    uint64_t last_tag_durable;
    struct yggr_entry *read_buf;
};

struct yggr_storage_snapshot_writer {
    struct yggr_storage *s;
    uint8_t *data;
    uint64_t len;
    uint64_t cap;
};

struct yggr_storage_snapshot_reader {
    uint8_t *data;
    uint64_t len;
    uint64_t pos;
};

struct mem_disk *mem_disk_new(void)
{
    struct mem_disk *d = calloc(1, sizeof(*d));
    if (d != NULL) {
        pthread_mutex_init(&d->mu, NULL);
        d->first = 1;
    }
    return d;
}

static void entry_free(struct yggr_entry *e)
{
    yggr_buf_release(e->buf);
    e->buf = NULL;
}

static void disk_truncate(struct mem_disk *d, uint64_t from)
{
    while (d->count > 0 && d->first + d->count - 1 >= from) {
        entry_free(&d->log[--d->count]);
    }
    if (d->count == 0 && from > d->first) {
        d->first = from;
    }
}

void mem_disk_free(struct mem_disk *d)
{
    if (d == NULL) {
        return;
    }
    for (uint64_t i = 0; i < d->count; i++) {
        entry_free(&d->log[i]);
    }
    free(d->log);
    free(d->snap_bytes);
    free(d->in_bytes);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void mem_disk_fail_next_append(struct mem_disk *d)
{
    pthread_mutex_lock(&d->mu);
    d->fail_next_append = true;
    pthread_mutex_unlock(&d->mu);
}

void mem_disk_short_snap_reads(struct mem_disk *d, uint32_t count)
{
    pthread_mutex_lock(&d->mu);
    d->short_snap_reads = count;
    pthread_mutex_unlock(&d->mu);
}

uint64_t mem_disk_last_index(struct mem_disk *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t last = d->count > 0 ? d->first + d->count - 1 : d->first - 1;
    pthread_mutex_unlock(&d->mu);
    return last;
}

static struct yggr_entry entry_copy(const struct yggr_entry *e)
{
    struct yggr_entry c = *e;
    c.buf = NULL;
    c.data = NULL;
    if (e->len > 0) {
        c.buf = yggr_buf_alloc(e->len);
        YGGR_ASSERT(c.buf != NULL);
        memcpy(c.buf->data, e->data, e->len);
        c.data = c.buf->data;
    }
    return c;
}

static void disk_append(struct mem_disk *d, const struct yggr_entry *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (d->count == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 1024;
            d->log = realloc(d->log, d->cap * sizeof(*d->log));
            YGGR_ASSERT(d->log != NULL);
        }
        if (d->count == 0) {
            d->first = e[i].index;
        }
        YGGR_ASSERT(e[i].index == d->first + d->count);
        d->log[d->count++] = entry_copy(&e[i]);
    }
}

static void done_push(struct yggr_storage *s, const struct yggr_storage_done *done)
{
    struct mem_done_queue *q = &s->q;
    if (q->tail - q->head == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 256;
        struct yggr_storage_done *items = malloc(cap * sizeof(*items));
        YGGR_ASSERT(items != NULL);
        for (uint32_t i = 0; i < q->tail - q->head; i++) {
            items[i] = q->items[(q->head + i) % q->cap];
        }
        q->tail -= q->head;
        q->head = 0;
        free(q->items);
        q->items = items;
        q->cap = cap;
    }
    q->items[q->tail % q->cap] = *done;
    q->tail++;
}

static int ms_bootstrap(struct yggr_storage *s, const struct yggr_storage_meta *meta, char *why,
                        size_t n)
{
    struct mem_disk *d = s->disk;
    pthread_mutex_lock(&d->mu);
    int rc = 0;
    if (d->bootstrapped) {
        snprintf(why, n, "mem disk already bootstrapped");
        rc = YGGR_ERR_EXISTS;
    } else {
        d->bootstrapped = true;
        d->meta = *meta;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static void ms_recover_log(struct yggr_storage *s, struct yggr_recovered *r)
{
    struct mem_disk *d = s->disk;
    r->first_index = d->first;
    r->last_index = d->first + d->count - 1;
    s->rec_terms = calloc(d->count + 1, sizeof(*s->rec_terms));
    s->rec_configs = calloc(d->count + 1, sizeof(*s->rec_configs));
    YGGR_ASSERT(s->rec_terms != NULL && s->rec_configs != NULL);
    uint32_t nt = 0;
    uint32_t nc = 0;
    for (uint64_t i = 0; i < d->count; i++) {
        const struct yggr_entry *e = &d->log[i];
        if (nt == 0 || s->rec_terms[nt - 1].term != e->term) {
            s->rec_terms[nt].term = e->term;
            s->rec_terms[nt].first_index = e->index;
            nt++;
        }
        if (e->type == YGGR_ENTRY_CONFIG && (!d->has_snapshot || e->index > d->snap.last.index)) {
            s->rec_configs[nc++] = *e;
        }
    }
    r->terms = s->rec_terms;
    r->term_count = nt;
    r->configs = s->rec_configs;
    r->config_count = nc;
    uint64_t tail = d->count < 1024 ? d->count : 1024;
    r->tail = d->log + (d->count - tail);
    r->tail_count = (uint32_t)tail;
}

static int ms_recover(struct yggr_storage *s, struct yggr_storage_state *out, char *why, size_t n)
{
    struct mem_disk *d = s->disk;
    (void)why;
    (void)n;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&d->mu);
    if (!d->bootstrapped) {
        pthread_mutex_unlock(&d->mu);
        return YGGR_ERR_NOT_FOUND;
    }
    out->meta = d->meta;
    struct yggr_recovered *r = &out->recovered;
    r->term = d->term;
    r->vote = d->vote;
    r->has_snapshot = d->has_snapshot;
    r->snapshot = d->snap;
    r->base_config = d->meta.bootstrap_config;
    ms_recover_log(s, r);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

static int ms_start(struct yggr_storage *s, yggr_wake_fn wake, void *ctx, int cpu)
{
    (void)cpu;
    s->wake = wake;
    s->wake_ctx = ctx;
    return 0;
}

static void ms_snap_chunk(struct yggr_storage *s, const struct yggr_storage_req *req)
{
    struct mem_disk *d = s->disk;
    const uint64_t off = req->as.snap_chunk.offset;
    if (off == 0 || !yggr_membership_equal(&d->in_meta.config, &req->as.snap_chunk.meta.config) ||
        d->in_meta.last.index != req->as.snap_chunk.meta.last.index) {
        d->in_meta = req->as.snap_chunk.meta;
        d->in_len = 0;
    }
    YGGR_ASSERT(off == d->in_len); /* contiguous chunks (engine.h) */
    uint64_t end = off + req->as.snap_chunk.len;
    d->in_bytes = realloc(d->in_bytes, end > 0 ? end : 1);
    YGGR_ASSERT(d->in_bytes != NULL);
    if (req->as.snap_chunk.len > 0) {
        memcpy(d->in_bytes + off, req->as.snap_chunk.data, req->as.snap_chunk.len);
    }
    d->in_len = end;
    if (!req->as.snap_chunk.done) {
        return;
    }
    free(d->snap_bytes);
    d->snap_bytes = d->in_bytes;
    d->in_bytes = NULL;
    d->snap = d->in_meta;
    d->snap.size = d->in_len;
    d->has_snapshot = true;
    uint64_t idx = d->snap.last.index;
    bool keep = idx >= d->first && idx < d->first + d->count &&
                d->log[idx - d->first].term == d->snap.last.term;
    if (!keep) {
        disk_truncate(d, d->first);
        d->first = idx + 1;
    }
    struct yggr_storage_done done = {.type = YGGR_STORAGE_SNAP_INSTALLED, .tag = req->tag};
    done.snapshot = d->snap.last;
    done_push(s, &done);
}

static void ms_read(struct yggr_storage *s, const struct yggr_storage_req *req)
{
    struct mem_disk *d = s->disk;
    struct yggr_storage_done done = {.type = YGGR_STORAGE_READ_DONE, .tag = req->tag};
    uint64_t first = req->as.read.first;
    uint32_t n = req->as.read.count;
    if (first < d->first || first + n > d->first + d->count || n == 0) {
        done.err = YGGR_ERR_NOT_FOUND;
        done_push(s, &done);
        return;
    }
    struct yggr_entry *copy = malloc(n * sizeof(*copy));
    YGGR_ASSERT(copy != NULL);
    for (uint32_t i = 0; i < n; i++) {
        copy[i] = d->log[first - d->first + i];
        yggr_buf_retain(copy[i].buf);
    }
    done.entries = copy;
    done.count = n;
    done_push(s, &done);
}

static void ms_snap_read(struct yggr_storage *s, const struct yggr_storage_req *req)
{
    struct mem_disk *d = s->disk;
    struct yggr_storage_done done = {.type = YGGR_STORAGE_SNAP_READ_DONE, .tag = req->tag};
    uint64_t off = req->as.snap_read.offset;
    if (!d->has_snapshot || d->snap.last.index != req->as.snap_read.snapshot.index ||
        off >= d->snap.size) {
        done.err = YGGR_ERR_NOT_FOUND;
        done_push(s, &done);
        return;
    }
    uint64_t len = d->snap.size - off < req->as.snap_read.len ? d->snap.size - off
                                                                : req->as.snap_read.len;
    if (d->short_snap_reads > 0 && off + len == d->snap.size && len >= 2) {
        d->short_snap_reads--;
        len--; /* injected short read */
    }
    done.buf = yggr_buf_alloc((uint32_t)len);
    YGGR_ASSERT(done.buf != NULL);
    memcpy(done.buf->data, d->snap_bytes + off, len);
    done.data = done.buf->data;
    done.len = (uint32_t)len;
    done_push(s, &done);
}

static void ms_durable(struct yggr_storage *s, const struct yggr_storage_req *req, bool hs)
{
    struct mem_disk *d = s->disk;
    struct yggr_storage_done done = {.type = YGGR_STORAGE_DURABLE, .tag = req->tag};
    if (d->count > 0) {
        done.log.index = d->first + d->count - 1;
        done.log.term = d->log[d->count - 1].term;
    }
    done.has_hard_state = hs;
    done.term = d->term;
    done.vote = d->vote;
    done_push(s, &done);
}

static int ms_submit(struct yggr_storage *s, const struct yggr_storage_req *req)
{
    struct mem_disk *d = s->disk;
    pthread_mutex_lock(&d->mu);
    if (d->failed) {
        pthread_mutex_unlock(&d->mu);
        return 0; /* sticky error: nothing completes any more */
    }
    switch (req->type) {
    case YGGR_STORAGE_APPEND:
        if (d->fail_next_append) {
            d->failed = true;
            struct yggr_storage_done done = {.type = YGGR_STORAGE_FAILED, .err = YGGR_ERR_IO};
            snprintf(done.why, sizeof(done.why), "mem disk: injected fsync failure");
            done_push(s, &done);
            break;
        }
        if (req->as.append.truncate_from > 0) {
            disk_truncate(d, req->as.append.truncate_from);
        }
        disk_append(d, req->as.append.entries, req->as.append.count);
        ms_durable(s, req, false);
        break;
    case YGGR_STORAGE_HARD_STATE:
        d->term = req->as.hard_state.term;
        d->vote = req->as.hard_state.vote;
        ms_durable(s, req, true);
        break;
    case YGGR_STORAGE_READ:
        ms_read(s, req);
        break;
    case YGGR_STORAGE_SNAP_READ:
        ms_snap_read(s, req);
        break;
    case YGGR_STORAGE_SNAP_CHUNK:
        ms_snap_chunk(s, req);
        break;
    case YGGR_STORAGE_COMPACT:
        if (d->count > 0 && d->first < req->as.compact.below) {
            uint64_t drop = req->as.compact.below - d->first;
            drop = drop < d->count ? drop : d->count;
            for (uint64_t i = 0; i < drop; i++) {
                entry_free(&d->log[i]);
            }
            memmove(d->log, d->log + drop, (d->count - drop) * sizeof(*d->log));
            d->count -= drop;
            d->first += drop;
        }
        break;
    }
    pthread_mutex_unlock(&d->mu);
    return 0;
}

static void ms_flush(struct yggr_storage *s)
{
    if (s->q.tail != s->q.head && s->wake != NULL) {
        s->wake(s->wake_ctx);
    }
}

static bool ms_poll(struct yggr_storage *s, struct yggr_storage_done *out)
{
    struct mem_done_queue *q = &s->q;
    if (q->tail == q->head) {
        return false;
    }
    *out = q->items[q->head % q->cap];
    q->head++;
    return true;
}

static void ms_release(struct yggr_storage *s, struct yggr_storage_done *done)
{
    (void)s;
    if (done->type == YGGR_STORAGE_READ_DONE && done->entries != NULL) {
        for (uint32_t i = 0; i < done->count; i++) {
            yggr_buf_release(done->entries[i].buf);
        }
        free((void *)done->entries);
    }
    if (done->type == YGGR_STORAGE_SNAP_READ_DONE) {
        yggr_buf_release(done->buf);
    }
}

static int ms_snap_begin(struct yggr_storage *s, struct yggr_storage_snapshot_writer **w)
{
    *w = calloc(1, sizeof(**w));
    if (*w == NULL) {
        return YGGR_ERR_NOMEM;
    }
    (*w)->s = s;
    return 0;
}

static int ms_snap_write(struct yggr_storage_snapshot_writer *w, const void *data, size_t len)
{
    if (w->len + len > w->cap) {
        w->cap = (w->len + len) * 2;
        w->data = realloc(w->data, w->cap);
        if (w->data == NULL) {
            return YGGR_ERR_NOMEM;
        }
    }
    memcpy(w->data + w->len, data, len);
    w->len += len;
    return 0;
}

static int ms_snap_commit(struct yggr_storage_snapshot_writer *w,
                          const struct yggr_snapshot_meta *meta, char *why, size_t n)
{
    struct mem_disk *d = w->s->disk;
    (void)why;
    (void)n;
    pthread_mutex_lock(&d->mu);
    free(d->snap_bytes);
    d->snap_bytes = w->data;
    d->snap = *meta;
    d->snap.size = w->len;
    d->has_snapshot = true;
    pthread_mutex_unlock(&d->mu);
    free(w);
    return 0;
}

static void ms_snap_abort(struct yggr_storage_snapshot_writer *w)
{
    free(w->data);
    free(w);
}

static int ms_snap_open(struct yggr_storage *s, struct yggr_log_id last,
                        struct yggr_storage_snapshot_reader **r, struct yggr_snapshot_meta *meta)
{
    struct mem_disk *d = s->disk;
    pthread_mutex_lock(&d->mu);
    int rc = 0;
    if (!d->has_snapshot || d->snap.last.index != last.index || d->snap.last.term != last.term) {
        rc = YGGR_ERR_NOT_FOUND;
    } else {
        *r = calloc(1, sizeof(**r));
        (*r)->data = malloc(d->snap.size + 1);
        memcpy((*r)->data, d->snap_bytes, d->snap.size);
        (*r)->len = d->snap.size;
        *meta = d->snap;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static long ms_snap_read_fn(struct yggr_storage_snapshot_reader *r, void *data, size_t len)
{
    uint64_t left = r->len - r->pos;
    size_t n = left < len ? (size_t)left : len;
    memcpy(data, r->data + r->pos, n);
    r->pos += n;
    return (long)n;
}

static void ms_snap_close(struct yggr_storage_snapshot_reader *r)
{
    free(r->data);
    free(r);
}

static void ms_close(struct yggr_storage *s)
{
    struct yggr_storage_done done;
    while (ms_poll(s, &done)) {
        ms_release(s, &done);
    }
    pthread_mutex_lock(&s->disk->mu);
    s->disk->in_use = false;
    pthread_mutex_unlock(&s->disk->mu);
    free(s->q.items);
    free(s->rec_terms);
    free(s->rec_configs);
    free(s);
}

static const struct yggr_storage_ops mem_storage_ops = {
    .bootstrap = ms_bootstrap,
    .recover = ms_recover,
    .start = ms_start,
    .submit = ms_submit,
    .flush = ms_flush,
    .poll = ms_poll,
    .release = ms_release,
    .snapshot_begin = ms_snap_begin,
    .snapshot_write = ms_snap_write,
    .snapshot_commit = ms_snap_commit,
    .snapshot_abort = ms_snap_abort,
    .snapshot_open = ms_snap_open,
    .snapshot_read = ms_snap_read_fn,
    .snapshot_close = ms_snap_close,
    .close = ms_close,
};

int mem_storage_create(struct mem_disk *disk, const struct yggr_storage_ops **ops,
                       struct yggr_storage **out)
{
    YGGR_ASSERT(disk != NULL && ops != NULL && out != NULL);
    pthread_mutex_lock(&disk->mu);
    bool busy = disk->in_use;
    disk->in_use = true;
    disk->failed = false;
    pthread_mutex_unlock(&disk->mu);
    if (busy) {
        return YGGR_ERR_INVALID;
    }
    struct yggr_storage *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return YGGR_ERR_NOMEM;
    }
    s->disk = disk;
    *ops = &mem_storage_ops;
    *out = s;
    return 0;
}
