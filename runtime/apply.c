/* SPDX-License-Identifier: MIT */
/* The apply actor: owns the user's state machine; applies committed entries in order,
 * completes proposals and reads, takes and restores snapshots.
 *
 * Design notes:
 * - Input: the driver -> apply SPSC ring, in log order. Because reads and snapshot
 *   requests travel in the same FIFO after the entries the driver pushed before them,
 *   a READ item observes every entry up to its read index, and a SNAPSHOT item captures
 *   exactly the state at the last applied index (REFERENCE 3.1).
 * - Output: proposal and read callbacks run here; snapshot and restore outcomes go back
 *   to the driver on the apply -> driver ring (it has capacity for every outstanding
 *   snapshot/restore request: at most one of each is in flight).
 * - The state machine's configuration view (apply_config) follows CONFIG entries, so a
 *   snapshot records the configuration as of its own index.
 * - Snapshot payload = runtime header (address book: every member's Raft address) + the
 *   state machine's bytes; restore reads the header back, so nodes learn addresses of
 *   members added after the founders even when the log that added them is compacted.
 * - Sleeping: park on the apply doorbell, re-check the ring, poll() its eventfd.
 * - Failure modes: restore failure is fatal (the state machine is in an unknown state);
 *   a declined or failed snapshot is reported and retried at the next hint; a failed
 *   snapshot fsync is fatal (the page cache can no longer be trusted).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "yggr_assert.h"

#define REPLY_INLINE 128
#define BOOK_MAGIC 0x4B425859u /* "YXBK" little-endian */

struct yggr_reply {
    uint8_t *data;
    uint32_t len;
    uint32_t cap;
    uint8_t inline_buf[REPLY_INLINE];
};

int yggr_reply_set(struct yggr_reply *reply, const void *data, uint32_t len)
{
    if (reply == NULL || (data == NULL && len > 0)) {
        return YGGR_ERR_INVALID;
    }
    if (len > reply->cap) {
        uint8_t *p = reply->data == reply->inline_buf ? NULL : reply->data;
        p = realloc(p, len);
        if (p == NULL) {
            return YGGR_ERR_NOMEM;
        }
        reply->data = p;
        reply->cap = len;
    }
    if (len > 0) {
        memcpy(reply->data, data, len);
    }
    reply->len = len;
    return 0;
}

struct yggr_snapshot_writer {
    struct yggr_node *node;
    struct yggr_storage_snapshot_writer *w;
    uint64_t size;
};

struct yggr_snapshot_reader {
    struct yggr_node *node;
    struct yggr_storage_snapshot_reader *r;
};

int yggr_snapshot_write(struct yggr_snapshot_writer *w, const void *data, size_t len)
{
    if (w == NULL || (data == NULL && len > 0)) {
        return YGGR_ERR_INVALID;
    }
    int rc = w->node->sops->snapshot_write(w->w, data, len);
    if (rc == 0) {
        w->size += len;
    }
    return rc;
}

long yggr_snapshot_read(struct yggr_snapshot_reader *r, void *data, size_t len)
{
    if (r == NULL || (data == NULL && len > 0)) {
        return YGGR_ERR_INVALID;
    }
    return r->node->sops->snapshot_read(r->r, data, len);
}

void apply_complete_propose(struct yggr_node *node, struct req *req, int err, uint64_t hint,
                            const uint8_t *reply, uint32_t len)
{
    YGGR_ASSERT(req->type == REQ_PROPOSE);
    YGGR_ASSERT(req->propose_cb != NULL);
    if (err == 0) {
        atomic_fetch_add_explicit(&node->proposals_completed, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&node->proposals_failed, 1, memory_order_relaxed);
    }
    req->propose_cb(req->ctx, err, req->index, hint, reply, len);
    node_req_free(node, req);
}

void apply_complete_read(struct yggr_node *node, struct req *req, int err, uint64_t hint,
                         void *sm_ctx)
{
    YGGR_ASSERT(req->type == REQ_READ);
    YGGR_ASSERT(req->read_cb != NULL);
    req->read_cb(req->ctx, err, hint, err == 0 ? sm_ctx : NULL);
    node_req_free(node, req);
}

static void apply_publish(struct yggr_node *node, uint64_t index, uint64_t term)
{
    node->applied_term = term;
    atomic_store_explicit(&node->applied_index, index, memory_order_release);
}

/* After a fatal error (a failed restore) the state machine is in an unknown state: drop
 * what is still queued instead of applying it on top. */
static void apply_drop(struct yggr_node *node, struct apply_item *it)
{
    if (it->req != NULL) {
        apply_complete_propose(node, it->req, YGGR_ERR_FATAL, 0, NULL, 0);
    }
    yggr_buf_release(it->buf);
}

static void apply_entry(struct yggr_node *node, struct apply_item *it, struct yggr_reply *reply)
{
    if (atomic_load(&node->health) == YGGR_HEALTH_FATAL) {
        apply_drop(node, it);
        return;
    }
    YGGR_ASSERT(it->index == atomic_load(&node->applied_index) + 1 ||
                atomic_load(&node->applied_index) == 0);
    if (it->entry_type == YGGR_ENTRY_COMMAND) {
        struct yggr_command cmd = {
            .index = it->index, .term = it->term, .data = it->data, .len = it->len};
        reply->len = 0;
        node->config.sm.apply(node->config.sm.ctx, &cmd, reply);
        /* Publish before completing: a proposer that sees its reply also sees it applied. */
        apply_publish(node, it->index, it->term);
        if (it->req != NULL) {
            apply_complete_propose(node, it->req, 0, 0, reply->data, reply->len);
        }
    } else {
        YGGR_ASSERT(it->req == NULL);
        if (it->entry_type == YGGR_ENTRY_CONFIG) {
            yggr_membership_apply(&node->apply_config, (enum yggr_change_type)it->change,
                                  it->node);
            if (it->len > 0) {
                node_book_set(node, it->node, (const char *)it->data, it->len);
            }
        }
    }
    apply_publish(node, it->index, it->term);
    /* Release references in runs of equal buffers (see driver_route_apply). */
    if (it->buf != node->apply_run_buf) {
        yggr_buf_release_n(node->apply_run_buf, node->apply_run_len);
        node->apply_run_buf = it->buf;
        node->apply_run_len = 0;
    }
    node->apply_run_len++;
}

static void apply_release_run(struct yggr_node *node)
{
    yggr_buf_release_n(node->apply_run_buf, node->apply_run_len);
    node->apply_run_buf = NULL;
    node->apply_run_len = 0;
}

/* Runtime header of every snapshot: magic, count, then (id, length, address) triples. */
static int apply_write_book(struct yggr_node *node, struct yggr_snapshot_writer *w)
{
    uint8_t buf[8 + YGGR_MAX_MEMBERS * 2 * (8 + 2 + 128)];
    size_t n = 8;
    uint32_t count = 0;
    pthread_mutex_lock(&node->book_mu);
    for (uint32_t i = 0; i < node->book_count; i++) {
        uint16_t len = (uint16_t)strlen(node->book[i].addr);
        memcpy(buf + n, &node->book[i].id, 8);
        memcpy(buf + n + 8, &len, 2);
        memcpy(buf + n + 10, node->book[i].addr, len);
        n += 10u + len;
        count++;
    }
    pthread_mutex_unlock(&node->book_mu);
    uint32_t magic = BOOK_MAGIC;
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &count, 4);
    YGGR_ASSERT(n <= sizeof(buf));
    return yggr_snapshot_write(w, buf, n);
}

static int read_exact(struct yggr_snapshot_reader *r, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        long got = yggr_snapshot_read(r, b, n);
        if (got < 0) {
            return (int)got;
        }
        if (got == 0) {
            return YGGR_ERR_CORRUPT;
        }
        b += got;
        n -= (size_t)got;
    }
    return 0;
}

static int apply_read_book(struct yggr_node *node, struct yggr_snapshot_reader *r)
{
    uint32_t head[2];
    int rc = read_exact(r, head, sizeof(head));
    if (rc != 0 || head[0] != BOOK_MAGIC || head[1] > YGGR_MAX_MEMBERS * 2) {
        return rc != 0 ? rc : YGGR_ERR_CORRUPT;
    }
    for (uint32_t i = 0; i < head[1]; i++) {
        uint64_t id;
        uint16_t len;
        char addr[128];
        rc = read_exact(r, &id, 8);
        if (rc == 0) {
            rc = read_exact(r, &len, 2);
        }
        if (rc == 0 && (len >= sizeof(addr) || id == 0)) {
            rc = YGGR_ERR_CORRUPT;
        }
        if (rc == 0) {
            rc = read_exact(r, addr, len);
        }
        if (rc != 0) {
            return rc;
        }
        if (id != node->config.node_id) {
            node_book_set(node, id, addr, len);
        }
    }
    return 0;
}

static void apply_emit(struct yggr_node *node, const struct apply_event *ev)
{
    /* The ring holds every outstanding snapshot/restore outcome; spin politely if the
     * driver is momentarily behind. */
    while (!apply_ev_ring_push(&node->from_apply, ev)) {
        doorbell_ring(&node->drv_bell);
        sched_yield();
    }
    doorbell_ring(&node->drv_bell);
}

static void apply_take_snapshot(struct yggr_node *node)
{
    struct apply_event ev = {.kind = APPLY_EV_SNAPSHOT_FAILED};
    uint64_t index = atomic_load(&node->applied_index);
    if (node->config.sm.snapshot == NULL || index == 0) {
        ev.err = YGGR_ERR_DECLINED;
        apply_emit(node, &ev);
        return;
    }
    struct yggr_snapshot_writer w = {.node = node};
    int rc = node->sops->snapshot_begin(node->storage, &w.w);
    if (rc == 0) {
        rc = apply_write_book(node, &w);
        if (rc == 0) {
            rc = node->config.sm.snapshot(node->config.sm.ctx, &w);
        }
        if (rc != 0) {
            node->sops->snapshot_abort(w.w);
        }
    }
    if (rc == 0) {
        struct yggr_snapshot_meta meta = {
            .last = {.index = index, .term = node->applied_term}, .size = w.size};
        meta.config = node->apply_config;
        char why[256] = "";
        rc = node->sops->snapshot_commit(w.w, &meta, why, sizeof(why));
        if (rc == YGGR_ERR_IO) {
            node_set_fatal(node, rc, why[0] != '\0' ? why : "snapshot commit failed");
            ev.kind = APPLY_EV_FATAL;
        } else if (rc != 0) {
            node_log(node, 1, "snapshot at %llu not written: %s (%s)",
                     (unsigned long long)index, why, yggr_strerror(rc));
        }
        if (rc == 0) {
            ev.kind = APPLY_EV_SNAPSHOT_DONE;
            ev.last = meta.last;
            ev.size = meta.size;
            atomic_fetch_add(&node->snapshots_taken, 1);
        }
    }
    ev.err = rc;
    apply_emit(node, &ev);
}

static void apply_restore(struct yggr_node *node, struct yggr_snapshot_meta *meta)
{
    struct apply_event ev = {.kind = APPLY_EV_RESTORED, .last = meta->last};
    struct yggr_snapshot_reader r = {.node = node};
    struct yggr_snapshot_meta found;
    int rc = node->sops->snapshot_open(node->storage, meta->last, &r.r, &found);
    if (rc == 0) {
        rc = apply_read_book(node, &r);
        if (rc == 0 && node->config.sm.restore == NULL) {
            rc = YGGR_ERR_INVALID;
        }
        if (rc == 0) {
            rc = node->config.sm.restore(node->config.sm.ctx, &r);
        }
        node->sops->snapshot_close(r.r);
    }
    if (rc != 0) {
        char why[160];
        snprintf(why, sizeof(why), "restoring the state machine from snapshot (%llu, %llu) "
                                   "failed%s",
                 (unsigned long long)meta->last.index, (unsigned long long)meta->last.term,
                 node->config.sm.restore == NULL ? ": sm.restore is NULL" : "");
        node_set_fatal(node, rc < 0 ? rc : YGGR_ERR_FATAL, why);
        ev.kind = APPLY_EV_FATAL;
        ev.err = rc;
    } else {
        node->apply_config = meta->config;
        apply_publish(node, meta->last.index, meta->last.term);
        atomic_fetch_add(&node->snapshots_restored, 1);
    }
    free(meta);
    apply_emit(node, &ev);
}

/* Returns false on APPLY_STOP. */
static bool apply_one(struct yggr_node *node, struct apply_item *it, struct yggr_reply *reply)
{
    switch ((enum apply_kind)it->kind) {
    case APPLY_ENTRY:
        apply_entry(node, it, reply);
        return true;
    case APPLY_READ:
        YGGR_ASSERT(it->req != NULL);
        if (atomic_load(&node->health) == YGGR_HEALTH_FATAL) {
            apply_complete_read(node, it->req, YGGR_ERR_FATAL, 0, NULL);
            return true;
        }
        apply_complete_read(node, it->req, 0, 0, node->config.sm.ctx);
        return true;
    case APPLY_RESTORE:
        apply_restore(node, it->meta);
        return true;
    case APPLY_SNAPSHOT:
        apply_take_snapshot(node);
        return true;
    case APPLY_STOP:
        return false;
    case APPLY_HOLE:
        break; /* driver-internal, never queued to apply */
    }
    YGGR_UNREACHABLE();
}

static void apply_sleep(struct yggr_node *node)
{
    apply_release_run(node);
    doorbell_park(&node->apply_bell);
    if (apply_ring_depth(&node->to_apply) == 0) {
        struct pollfd p = {.fd = node->apply_bell.fd, .events = POLLIN};
        int rc = poll(&p, 1, -1);
        YGGR_ASSERT(rc >= 0 || errno == EINTR);
        doorbell_drain(&node->apply_bell);
    }
    doorbell_unpark(&node->apply_bell);
}

void *apply_main(void *arg)
{
    struct yggr_node *node = arg;
    YGGR_ASSERT(node != NULL);
    threads_setup("yggr-apply", node->config.cpu_apply, node);
    struct yggr_reply reply = {.cap = REPLY_INLINE};
    reply.data = reply.inline_buf;
    for (;;) {
        struct apply_item it;
        if (!apply_ring_pop(&node->to_apply, &it)) {
            apply_sleep(node);
            continue;
        }
        if (!apply_one(node, &it, &reply)) {
            break;
        }
    }
    apply_release_run(node);
    if (reply.data != reply.inline_buf) {
        free(reply.data);
    }
    return NULL;
}
