/* SPDX-License-Identifier: MIT */
/* The simulated disk: a durable view, a written (page-cache) view and a FIFO of pending writes. */

/*
 * Design notes
 *
 * Model. A node's disk has two views of the same shape (hard state, log, snapshot):
 *   written  - what a read returns: every submitted write, applied at submit time;
 *   durable  - what survives a crash: a PREFIX of the submitted writes.
 * Writes are queued FIFO (the storage contract: execute in submission order). A flush
 * makes the first n queued writes durable; only then does the host report them to the
 * engine (LOG_PERSISTED, HARD_STATE_PERSISTED, SNAPSHOT_PERSISTED).
 *
 * Crash. Some queued writes may have reached the platter without being reported (that
 * is allowed: the engine never relied on them), then the next append may be TORN: a
 * prefix of its entries survives, never half an entry. The hard state is written
 * atomically (two checksummed slots on the real disk), so it is never torn. Everything
 * later is lost and the written view becomes the durable one again.
 *
 * Invariants
 *   1. Every log is contiguous: e[k].index == first + k.
 *   2. Every stored entry owns exactly one reference on its payload buffer.
 *   3. durable is always reachable from the previous durable state by applying a prefix
 *      of the ops that were submitted (a torn append counts as its own prefix).
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

void slog_init(struct slog *log, uint64_t first)
{
    YGGR_ASSERT(log != NULL);
    YGGR_ASSERT(first >= 1);
    memset(log, 0, sizeof(*log));
    log->first = first;
}

void slog_entry_release(struct yggr_entry *e)
{
    yggr_buf_release(e->buf);
    e->buf = NULL;
    e->data = NULL;
}

static void slog_clear(struct slog *log, uint64_t first)
{
    for (uint32_t i = 0; i < log->count; i++) {
        slog_entry_release(&log->e[i]);
    }
    log->count = 0;
    log->first = first;
}

void slog_deinit(struct slog *log)
{
    YGGR_ASSERT(log != NULL);
    slog_clear(log, 1);
    free(log->e);
    log->e = NULL;
    log->cap = 0;
}

uint64_t slog_last(const struct slog *log)
{
    YGGR_ASSERT(log->first >= 1);
    return log->first + log->count - 1;
}

const struct yggr_entry *slog_at(const struct slog *log, uint64_t index)
{
    if (index < log->first || index > slog_last(log)) {
        return NULL;
    }
    const struct yggr_entry *e = &log->e[index - log->first];
    YGGR_ASSERT(e->index == index);
    return e;
}

void slog_entry_copy(struct yggr_entry *dst, const struct yggr_entry *src)
{
    YGGR_ASSERT(src->len == 0 || src->data != NULL);
    *dst = *src;
    if (src->len == 0) {
        dst->data = NULL;
        dst->buf = NULL;
    } else if (src->buf != NULL) {
        dst->buf = yggr_buf_retain(src->buf);
    } else {
        /* Borrowed bytes: keep our own copy. */
        dst->buf = yggr_buf_alloc(src->len);
        YGGR_ASSERT(dst->buf != NULL);
        memcpy(dst->buf->data, src->data, src->len);
        dst->data = dst->buf->data;
    }
}

static void slog_reserve(struct slog *log, uint32_t need)
{
    if (need <= log->cap) {
        return;
    }
    uint32_t cap = log->cap < 16 ? 16 : log->cap;
    while (cap < need) {
        YGGR_ASSERT(cap < UINT32_MAX / 2);
        cap *= 2;
    }
    log->e = realloc(log->e, (size_t)cap * sizeof(log->e[0]));
    YGGR_ASSERT(log->e != NULL);
    log->cap = cap;
}

static void slog_push(struct slog *log, const struct yggr_entry *e)
{
    YGGR_ASSERT(e->index == slog_last(log) + 1);
    slog_reserve(log, log->count + 1);
    slog_entry_copy(&log->e[log->count], e);
    log->count++;
}

/* Drop every entry >= index (index >= first). */
static void slog_truncate(struct slog *log, uint64_t index)
{
    YGGR_ASSERT(index >= log->first);
    while (log->count > 0 && slog_last(log) >= index) {
        slog_entry_release(&log->e[log->count - 1]);
        log->count--;
    }
}

/* Drop every entry < index; the log then starts at max(first, index). */
static void slog_drop_below(struct slog *log, uint64_t index)
{
    if (index <= log->first) {
        return;
    }
    if (index > slog_last(log)) {
        slog_clear(log, index);
        return;
    }
    uint32_t drop = (uint32_t)(index - log->first);
    for (uint32_t i = 0; i < drop; i++) {
        slog_entry_release(&log->e[i]);
    }
    memmove(log->e, log->e + drop, (size_t)(log->count - drop) * sizeof(log->e[0]));
    log->count -= drop;
    log->first = index;
    YGGR_ASSERT(log->count == 0 || log->e[0].index == index);
}

void slog_copy(struct slog *dst, const struct slog *src)
{
    slog_clear(dst, src->first);
    slog_reserve(dst, src->count);
    for (uint32_t i = 0; i < src->count; i++) {
        slog_entry_copy(&dst->e[i], &src->e[i]);
    }
    dst->count = src->count;
}

void ssnap_copy(struct ssnap *dst, const struct ssnap *src)
{
    struct yggr_buf *keep = yggr_buf_retain(src->bytes);
    ssnap_release(dst);
    *dst = *src;
    dst->bytes = keep;
}

void ssnap_release(struct ssnap *s)
{
    yggr_buf_release(s->bytes);
    memset(s, 0, sizeof(*s));
}

static void sview_init(struct sview *v)
{
    memset(v, 0, sizeof(*v));
    slog_init(&v->log, 1);
}

static void sview_deinit(struct sview *v)
{
    slog_deinit(&v->log);
    ssnap_release(&v->snap);
}

static void sview_copy(struct sview *dst, const struct sview *src)
{
    dst->term = src->term;
    dst->vote = src->vote;
    slog_copy(&dst->log, &src->log);
    ssnap_copy(&dst->snap, &src->snap);
}

void store_init(struct store *store)
{
    memset(store, 0, sizeof(*store));
    sview_init(&store->durable);
    sview_init(&store->written);
}

void pop_release(struct pop *op)
{
    for (uint32_t i = 0; i < op->count; i++) {
        slog_entry_release(&op->entries[i]);
    }
    free(op->entries);
    op->entries = NULL;
    op->count = 0;
    ssnap_release(&op->snap);
}

static void store_drop_ops(struct store *store)
{
    for (uint32_t i = 0; i < store->op_count; i++) {
        pop_release(&store->ops[(store->op_head + i) % store->op_cap]);
    }
    store->op_head = 0;
    store->op_count = 0;
}

void store_deinit(struct store *store)
{
    store_drop_ops(store);
    free(store->ops);
    sview_deinit(&store->durable);
    sview_deinit(&store->written);
    ssnap_release(&store->partial);
    free(store->partial_data);
}

void store_apply(struct sview *view, const struct pop *op)
{
    switch (op->kind) {
    case POP_HARD:
        view->term = op->term;
        view->vote = op->vote;
        return;
    case POP_APPEND:
        if (op->truncate_from != 0) {
            slog_truncate(&view->log, op->truncate_from);
        }
        for (uint32_t i = 0; i < op->count; i++) {
            slog_push(&view->log, &op->entries[i]);
        }
        return;
    case POP_SNAPSHOT: {
        const struct yggr_log_id last = op->snap.meta.last;
        const struct yggr_entry *at = slog_at(&view->log, last.index);
        if (at != NULL && at->term == last.term) {
            slog_drop_below(&view->log, last.index + 1);
        } else {
            slog_clear(&view->log, last.index + 1);
        }
        ssnap_copy(&view->snap, &op->snap);
        return;
    }
    case POP_COMPACT:
        slog_drop_below(&view->log, op->below);
        return;
    }
    YGGR_UNREACHABLE();
}

static const char *store_validate(const struct store *store, const struct pop *op)
{
    const struct slog *log = &store->written.log;
    if (op->kind == POP_APPEND) {
        uint64_t next = slog_last(log) + 1;
        if (op->truncate_from != 0) {
            if (op->truncate_from < log->first || op->truncate_from > next) {
                return "APPEND truncate_from outside the stored log";
            }
            next = op->truncate_from;
        }
        for (uint32_t i = 0; i < op->count; i++) {
            if (op->entries[i].index != next + i) {
                return "APPEND entries not contiguous with the stored log";
            }
            if (op->entries[i].term == 0 && op->entries[i].type != YGGR_ENTRY_CONFIG) {
                return "APPEND entry with term 0 that is not a bootstrap CONFIG entry";
            }
        }
    }
    if (op->kind == POP_COMPACT && store->written.snap.present &&
        op->below > store->written.snap.meta.last.index + 1) {
        return "COMPACT above the stored snapshot";
    }
    if (op->kind == POP_COMPACT && !store->written.snap.present && op->below > 1) {
        return "COMPACT without a stored snapshot";
    }
    return NULL;
}

static void pop_copy(struct pop *dst, const struct pop *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->count = 0;
    memset(&dst->snap, 0, sizeof(dst->snap));
    ssnap_copy(&dst->snap, &src->snap);
    if (src->count > 0) {
        dst->entries = malloc((size_t)src->count * sizeof(dst->entries[0]));
        YGGR_ASSERT(dst->entries != NULL);
        for (uint32_t i = 0; i < src->count; i++) {
            slog_entry_copy(&dst->entries[i], &src->entries[i]);
        }
        dst->count = src->count;
    }
}

const char *store_submit(struct store *store, const struct pop *op)
{
    YGGR_ASSERT(store != NULL);
    YGGR_ASSERT(op != NULL);
    const char *why = store_validate(store, op);
    if (why != NULL) {
        return why;
    }
    if (store->op_count == store->op_cap) {
        uint32_t cap = store->op_cap == 0 ? 16 : store->op_cap * 2;
        struct pop *ops = malloc((size_t)cap * sizeof(ops[0]));
        YGGR_ASSERT(ops != NULL);
        for (uint32_t i = 0; i < store->op_count; i++) {
            ops[i] = store->ops[(store->op_head + i) % store->op_cap];
        }
        free(store->ops);
        store->ops = ops;
        store->op_head = 0;
        store->op_cap = cap;
    }
    struct pop *slot = &store->ops[(store->op_head + store->op_count) % store->op_cap];
    pop_copy(slot, op);
    store->op_count++;
    store_apply(&store->written, slot);
    return NULL;
}

uint32_t store_ready(const struct store *store, uint64_t step)
{
    uint32_t n = 0;
    while (n < store->op_count &&
           store->ops[(store->op_head + n) % store->op_cap].ready_step <= step) {
        n++;
    }
    return n;
}

void store_flush(struct store *store, uint32_t n, store_flushed_fn done, void *ctx)
{
    YGGR_ASSERT(n <= store->op_count);
    for (uint32_t i = 0; i < n; i++) {
        /* Pop before the callback: it may submit new writes (the engine's reaction). */
        struct pop op = store->ops[store->op_head];
        store->op_head = (store->op_head + 1) % store->op_cap;
        store->op_count--;
        store_apply(&store->durable, &op);
        if (done != NULL) {
            done(ctx, &op);
        }
        pop_release(&op);
    }
}

uint32_t store_crash(struct store *store, uint32_t survive, uint32_t torn_entries)
{
    YGGR_ASSERT(survive <= store->op_count);
    uint32_t torn = 0;
    store_flush(store, survive, NULL, NULL);
    if (store->op_count > 0 && torn_entries != UINT32_MAX) {
        struct pop *op = &store->ops[store->op_head];
        if (op->kind == POP_APPEND && torn_entries < op->count) {
            struct pop part = *op;
            part.count = torn_entries;
            store_apply(&store->durable, &part);
            torn = torn_entries + 1;
        }
    }
    store_drop_ops(store);
    sview_copy(&store->written, &store->durable);
    ssnap_release(&store->partial);
    store->partial_len = 0;
    YGGR_ASSERT(store->op_count == 0);
    return torn;
}

bool store_snapshot_pending(const struct store *store)
{
    for (uint32_t i = 0; i < store->op_count; i++) {
        if (store->ops[(store->op_head + i) % store->op_cap].kind == POP_SNAPSHOT) {
            return true;
        }
    }
    return false;
}
