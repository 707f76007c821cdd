/* SPDX-License-Identifier: MIT */
/* The driver actor: owns the engine; drains every input per wake-up, steps the engine and
 * routes its actions to the disk, network and apply actors. Never blocks on I/O.
 *
 * Design notes:
 * - Loop (one iteration = one wake-up): network inbound -> storage completions -> apply
 *   events -> client requests (all drained proposals become ONE batch step) -> ticks ->
 *   deferred work -> flush storage and transport -> publish status. Inbound messages are
 *   processed before ticks so a driver that was starved of CPU does not start an election
 *   while the leader's heartbeats sit unread in its queue.
 * - Ticks come from a timerfd; every expiration is fed (capped): a leader must never count
 *   less time than really passed (lease safety), and a follower that counts more only
 *   campaigns after it really heard nothing.
 * - Action routing follows the engine contract (yggr/engine.h): hard state, snapshot
 *   chunk, append, compact go to storage in order; sends go to the transport at once (the
 *   engine holds back anything that needs durability); sends that need bytes from disk
 *   (far-behind followers, snapshot chunks) become storage reads and leave when the read
 *   completes; committed entries go to the apply ring with their payload references.
 * - Backpressure: a full storage queue defers requests in order (copies, rare); a full
 *   apply ring spills into an overflow queue, and while it is non-empty the driver refuses
 *   proposals (BUSY) and drops inbound AppendEntries carrying entries (the leader resends),
 *   so a slow state machine slows replication instead of growing memory.
 * - Sleeping: park the driver doorbell, run one more iteration, then poll() the doorbell
 *   and the timer. Producers (clients, disk, network, apply) ring only when parked.
 * - Fatal: a storage failure fails every waiter with FATAL and stops stepping the engine.
 */
#include "driver.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "yggr_assert.h"

#define SEND_TAG_BIT  (UINT64_C(1) << 63)
#define HOLE_TAG_BIT  (UINT64_C(1) << 62)
#define HOLE_READ_MAX 4096u

uint64_t driver_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void driver_wake(void *arg)
{
    struct yggr_node *node = arg;
    doorbell_ring(&node->drv_bell);
}

/* ---------------------------------------------------------------------------------------
 * Storage submission (in order; deferred copies when the queue is full)
 * ------------------------------------------------------------------------------------- */

static void deferred_free(struct deferred_req *dr)
{
    if (dr->req.type == YGGR_STORAGE_APPEND) {
        for (uint32_t i = 0; i < dr->req.as.append.count; i++) {
            yggr_buf_release(dr->entries[i].buf);
        }
        free(dr->entries);
    } else if (dr->req.type == YGGR_STORAGE_SNAP_CHUNK) {
        yggr_buf_release(dr->req.as.snap_chunk.buf);
    }
    free(dr);
}

static void driver_defer(struct driver *d, const struct yggr_storage_req *req)
{
    struct deferred_req *dr = calloc(1, sizeof(*dr));
    YGGR_ASSERT(dr != NULL);
    dr->req = *req;
    if (req->type == YGGR_STORAGE_APPEND && req->as.append.count > 0) {
        uint32_t n = req->as.append.count;
        dr->entries = malloc(n * sizeof(*dr->entries));
        YGGR_ASSERT(dr->entries != NULL);
        memcpy(dr->entries, req->as.append.entries, n * sizeof(*dr->entries));
        for (uint32_t i = 0; i < n; i++) {
            yggr_buf_retain(dr->entries[i].buf);
        }
        dr->req.as.append.entries = dr->entries;
    } else if (req->type == YGGR_STORAGE_SNAP_CHUNK) {
        YGGR_ASSERT(req->as.snap_chunk.buf != NULL || req->as.snap_chunk.len == 0);
        yggr_buf_retain(req->as.snap_chunk.buf);
    }
    if (d->deferred_tail != NULL) {
        d->deferred_tail->next = dr;
    } else {
        d->deferred_head = dr;
    }
    d->deferred_tail = dr;
}

void driver_submit(struct driver *d, const struct yggr_storage_req *req)
{
    YGGR_ASSERT(req != NULL);
    /* Before the disk worker starts (the RECOVER step may append the bootstrap entries),
     * requests wait in the deferred queue, in order. */
    if (d->deferred_head == NULL && d->storage_started) {
        int rc = d->node->sops->submit(d->node->storage, req);
        if (rc == 0) {
            return;
        }
        YGGR_ASSERT(rc == YGGR_ERR_BUSY);
    }
    driver_defer(d, req);
}

static uint32_t driver_flush_deferred(struct driver *d)
{
    uint32_t n = 0;
    while (d->deferred_head != NULL) {
        struct deferred_req *dr = d->deferred_head;
        int rc = d->node->sops->submit(d->node->storage, &dr->req);
        if (rc == YGGR_ERR_BUSY) {
            break;
        }
        YGGR_ASSERT(rc == 0);
        d->deferred_head = dr->next;
        if (d->deferred_head == NULL) {
            d->deferred_tail = NULL;
        }
        deferred_free(dr);
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Apply queue (ring plus overflow)
 * ------------------------------------------------------------------------------------- */

static uint32_t overflow_len(const struct driver *d)
{
    return d->overflow_tail - d->overflow_head;
}

static void overflow_grow(struct driver *d)
{
    uint32_t cap = d->overflow_mask + 1;
    struct apply_item *bigger = malloc(2u * cap * sizeof(*bigger));
    YGGR_ASSERT(bigger != NULL);
    uint32_t n = overflow_len(d);
    for (uint32_t i = 0; i < n; i++) {
        bigger[i] = d->overflow[(d->overflow_head + i) & d->overflow_mask];
    }
    free(d->overflow);
    d->overflow = bigger;
    d->overflow_mask = 2u * cap - 1;
    d->overflow_head = 0;
    d->overflow_tail = n;
}

static void overflow_append(struct driver *d, const struct apply_item *it);

bool driver_apply_push(struct driver *d, const struct apply_item *it)
{
    if (overflow_len(d) == 0 && apply_ring_push(&d->node->to_apply, it)) {
        return true;
    }
    overflow_append(d, it);
    return false;
}

static void overflow_append(struct driver *d, const struct apply_item *it)
{
    if (overflow_len(d) == d->overflow_mask + 1) {
        overflow_grow(d);
    }
    d->overflow[d->overflow_tail & d->overflow_mask] = *it;
    d->overflow_tail++;
}

static void hole_read(struct driver *d, struct apply_hole *h)
{
    YGGR_ASSERT(!h->reading);
    YGGR_ASSERT(h->next_read < h->end);
    uint64_t left = h->end - h->next_read;
    struct yggr_storage_req req = {.type = YGGR_STORAGE_READ, .tag = HOLE_TAG_BIT | h->id};
    req.as.read.first = h->next_read;
    req.as.read.count = left < HOLE_READ_MAX ? (uint32_t)left : HOLE_READ_MAX;
    req.as.read.max_bytes = 64u << 20;
    h->reading = true;
    d->storage_reads++;
    driver_submit(d, &req);
}

/* APPLY.from_storage: hold everything after this point until the entries are read. */
static void driver_open_hole(struct driver *d, uint64_t first, uint32_t count)
{
    YGGR_ASSERT(count > 0);
    struct apply_hole *h = calloc(1, sizeof(*h));
    YGGR_ASSERT(h != NULL);
    h->id = ++d->hole_seq & ~(SEND_TAG_BIT | HOLE_TAG_BIT);
    h->next_read = first;
    h->next_push = first;
    h->end = first + count;
    h->next = d->holes;
    d->holes = h;
    struct apply_item it = {.kind = APPLY_HOLE, .index = h->end - 1, .hole = h};
    overflow_append(d, &it);
    hole_read(d, h);
}

static void driver_close_hole(struct driver *d, struct apply_hole *h)
{
    struct apply_hole **pp = &d->holes;
    while (*pp != h) {
        pp = &(*pp)->next;
    }
    *pp = h->next;
    for (uint32_t i = 0; i < h->item_count; i++) {
        yggr_buf_release(h->items[(h->item_head + i)].buf);
    }
    free(h->items);
    free(h);
}

/* Push what a hole has read; true once the hole is complete. */
static bool hole_drain(struct driver *d, struct apply_hole *h, uint32_t *pushed)
{
    while (h->item_count > 0) {
        struct apply_item *it = &h->items[h->item_head];
        if (!apply_ring_push(&d->node->to_apply, it)) {
            return false;
        }
        h->item_head++;
        h->item_count--;
        h->next_push++;
        (*pushed)++;
    }
    return h->next_push == h->end;
}

static uint32_t driver_flush_overflow(struct driver *d)
{
    uint32_t n = 0;
    while (overflow_len(d) > 0) {
        const struct apply_item *it = &d->overflow[d->overflow_head & d->overflow_mask];
        if (it->kind == APPLY_HOLE) {
            struct apply_hole *h = it->hole;
            if (!hole_drain(d, h, &n)) {
                break;
            }
            d->overflow_head++;
            driver_close_hole(d, h);
            continue;
        }
        if (!apply_ring_push(&d->node->to_apply, it)) {
            break;
        }
        d->overflow_head++;
        n++;
    }
    if (n > 0) {
        doorbell_ring(&d->node->apply_bell);
    }
    return n;
}

static bool driver_apply_pressure(const struct driver *d)
{
    return overflow_len(d) > 0;
}

/* ---------------------------------------------------------------------------------------
 * Action routing
 * ------------------------------------------------------------------------------------- */

static int driver_send_slot(struct driver *d)
{
    for (int i = 0; i < DRIVER_MAX_STORAGE_SENDS; i++) {
        if (!d->sends[i].used) {
            return i;
        }
    }
    return -1;
}

static void driver_route_send(struct driver *d, const struct yggr_msg *m)
{
    struct yggr_node *node = d->node;
    bool need_entries = m->type == YGGR_MSG_APPEND_REQUEST && m->as.append.from_storage;
    bool need_chunk = m->type == YGGR_MSG_SNAPSHOT_REQUEST && m->as.snapshot.data == NULL &&
                      m->as.snapshot.len > 0;
    if (!need_entries && !need_chunk) {
        node->tops->send(node->transport, m);
        return;
    }
    int slot = driver_send_slot(d);
    if (slot < 0) {
        return; /* dropped: the engine resends on its own cadence */
    }
    struct pending_send *ps = &d->sends[slot];
    ps->used = true;
    ps->msg = *m;
    struct yggr_storage_req req = {.tag = SEND_TAG_BIT | (uint64_t)(unsigned)slot};
    if (need_entries) {
        req.type = YGGR_STORAGE_READ;
        req.as.read.first = m->as.append.prev.index + 1;
        req.as.read.count = m->as.append.entry_count;
        req.as.read.max_bytes = 1u << 20;
    } else {
        if (m->as.snapshot.config != NULL) {
            ps->config = *m->as.snapshot.config;
            ps->msg.as.snapshot.config = &ps->config;
        }
        req.type = YGGR_STORAGE_SNAP_READ;
        req.as.snap_read.snapshot = m->as.snapshot.last;
        req.as.snap_read.offset = m->as.snapshot.offset;
        req.as.snap_read.len = m->as.snapshot.len;
    }
    d->storage_reads++;
    driver_submit(d, &req);
}

/* Learn addresses from CONFIG entries as soon as they are in our log. */
static void driver_scan_config(struct driver *d, const struct yggr_entry *e, uint32_t n)
{
    struct yggr_node *node = d->node;
    for (uint32_t i = 0; i < n; i++) {
        if (e[i].type != YGGR_ENTRY_CONFIG || e[i].len == 0 || e[i].node == node->config.node_id) {
            continue;
        }
        if (e[i].change == YGGR_CHANGE_ADD_VOTER || e[i].change == YGGR_CHANGE_ADD_LEARNER) {
            char addr[128];
            uint32_t len = e[i].len < sizeof(addr) - 1 ? e[i].len : (uint32_t)sizeof(addr) - 1;
            memcpy(addr, e[i].data, len);
            addr[len] = '\0';
            node_book_set(node, e[i].node, addr, len);
            node->tops->set_peer(node->transport, e[i].node, addr);
        }
    }
}

static void driver_route_storage(struct driver *d, const struct yggr_actions *a)
{
    if (a->flags & YGGR_ACT_HARD_STATE) {
        struct yggr_storage_req req = {.type = YGGR_STORAGE_HARD_STATE, .tag = ++d->storage_seq};
        req.as.hard_state.term = a->hard_state.term;
        req.as.hard_state.vote = a->hard_state.vote;
        driver_submit(d, &req);
    }
    if (a->flags & YGGR_ACT_SNAPSHOT_CHUNK) {
        struct yggr_storage_req req = {.type = YGGR_STORAGE_SNAP_CHUNK, .tag = ++d->storage_seq};
        req.as.snap_chunk.meta = a->snapshot_chunk.meta;
        req.as.snap_chunk.offset = a->snapshot_chunk.offset;
        req.as.snap_chunk.data = a->snapshot_chunk.data;
        req.as.snap_chunk.buf = a->snapshot_chunk.buf;
        req.as.snap_chunk.len = a->snapshot_chunk.len;
        req.as.snap_chunk.done = a->snapshot_chunk.done;
        driver_submit(d, &req);
    }
    if (a->flags & YGGR_ACT_APPEND) {
        driver_scan_config(d, a->append.entries, a->append.count);
        d->disk_appends++;
        d->disk_entries += a->append.count;
        for (uint32_t i = 0; i < a->append.count; i++) {
            d->disk_bytes += a->append.entries[i].len;
        }
        struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND, .tag = ++d->storage_seq};
        req.as.append.truncate_from = a->append.truncate_from;
        req.as.append.entries = a->append.entries;
        req.as.append.count = a->append.count;
        driver_submit(d, &req);
    }
    if (a->flags & YGGR_ACT_COMPACT) {
        struct yggr_storage_req req = {.type = YGGR_STORAGE_COMPACT, .tag = ++d->storage_seq};
        req.as.compact.below = a->compact_below;
        driver_submit(d, &req);
    }
}

/* One committed entry as an apply item (retains its payload; matches its proposal). */
static void driver_entry_item(struct driver *d, const struct yggr_entry *e, struct apply_item *it,
                              bool retain)
{
    struct yggr_node *node = d->node;
    *it = (struct apply_item){
        .kind = APPLY_ENTRY,
        .entry_type = e->type,
        .change = e->change,
        .len = e->len,
        .index = e->index,
        .term = e->term,
        .node = e->node,
        .data = e->data,
        .buf = retain ? yggr_buf_retain(e->buf) : e->buf,
    };
    driver_match_proposal(d, it);
    if (e->type == YGGR_ENTRY_CONFIG && e->change == YGGR_CHANGE_REMOVE_VOTER &&
        e->node != node->config.node_id) {
        node->tops->remove_peer(node->transport, e->node);
    }
}

static void driver_route_apply(struct driver *d, const struct yggr_actions *a)
{
    struct yggr_node *node = d->node;
    if (a->flags & YGGR_ACT_APPLY_SNAPSHOT) {
        struct apply_item it = {.kind = APPLY_RESTORE};
        it.meta = malloc(sizeof(*it.meta));
        YGGR_ASSERT(it.meta != NULL);
        *it.meta = a->apply_snapshot;
        it.index = a->apply_snapshot.last.index;
        driver_fail_pending(d, YGGR_ERR_STEPPED_DOWN);
        driver_apply_push(d, &it);
        if (it.index > d->pushed_index) {
            d->pushed_index = it.index;
        }
    }
    if ((a->flags & YGGR_ACT_APPLY) && a->apply.from_storage && a->apply.count > 0) {
        driver_open_hole(d, a->apply.first_index, a->apply.count);
        d->pushed_index = a->apply.first_index + a->apply.count - 1;
    } else if (a->flags & YGGR_ACT_APPLY) {
        /* Entries of a batch mostly share one payload chunk: take their references with
         * one atomic per run of equal buffers (the apply thread releases them the same
         * way), so the chunk's counter does not bounce between cores per entry. All of
         * them are taken BEFORE any item is published: the apply thread may release a
         * run as soon as it has seen it. */
        struct yggr_buf *run = NULL;
        uint32_t run_len = 0;
        for (uint32_t i = 0; i < a->apply.count; i++) {
            if (a->apply.entries[i].buf != run) {
                yggr_buf_retain_n(run, run_len);
                run = a->apply.entries[i].buf;
                run_len = 0;
            }
            run_len++;
        }
        yggr_buf_retain_n(run, run_len);
        for (uint32_t i = 0; i < a->apply.count; i++) {
            struct apply_item it;
            driver_entry_item(d, &a->apply.entries[i], &it, false);
            driver_apply_push(d, &it);
            d->pushed_index = it.index;
        }
    }
    if (a->flags & (YGGR_ACT_APPLY | YGGR_ACT_APPLY_SNAPSHOT)) {
        driver_push_ready_reads(d);
        doorbell_ring(&node->apply_bell);
    }
}

/* Entries read for an apply hole: queue them, read the rest, push what can go. */
static void driver_hole_read_done(struct driver *d, struct yggr_storage_done *done)
{
    struct yggr_node *node = d->node;
    uint64_t id = done->tag & ~HOLE_TAG_BIT;
    struct apply_hole *h = d->holes;
    while (h != NULL && h->id != id) {
        h = h->next;
    }
    YGGR_ASSERT(h != NULL);
    YGGR_ASSERT(h->reading);
    h->reading = false;
    if (done->err != 0 || done->count == 0 || done->entries[0].index != h->next_read) {
        node->sops->release(node->storage, done);
        node_set_fatal(node, YGGR_ERR_CORRUPT, "cannot read committed log entries to apply them");
        return;
    }
    struct apply_item *items = malloc((h->item_count + done->count) * sizeof(*items));
    YGGR_ASSERT(items != NULL);
    memcpy(items, h->items + h->item_head, h->item_count * sizeof(*items));
    for (uint32_t i = 0; i < done->count; i++) {
        driver_entry_item(d, &done->entries[i], &items[h->item_count + i], true);
    }
    free(h->items);
    h->items = items;
    h->item_head = 0;
    h->item_count += done->count;
    h->next_read += done->count;
    node->sops->release(node->storage, done);
    if (h->next_read < h->end) {
        hole_read(d, h);
    }
    driver_flush_overflow(d);
}

static void driver_note_summary(struct driver *d, const struct yggr_actions *a)
{
    bool was_leader = d->role == YGGR_ROLE_LEADER;
    d->role = a->role;
    d->term = a->term;
    d->leader = a->leader_id;
    d->commit = a->commit_index;
    d->last_index = a->last_index;
    d->transferring = a->transferring;
    if (a->removed && !d->removed) {
        node_log(d->node, 1, "removed from the cluster: requests are refused with \"%s\"",
                 yggr_strerror(YGGR_ERR_REMOVED));
    }
    d->removed = a->removed;
    if (was_leader && a->role != YGGR_ROLE_LEADER) {
        node_log(d->node, 2, "stepped down in term %llu (leader now %llu)",
                 (unsigned long long)a->term, (unsigned long long)a->leader_id);
        driver_fail_pending(d, YGGR_ERR_STEPPED_DOWN);
    } else if (!was_leader && a->role == YGGR_ROLE_LEADER) {
        node_log(d->node, 2, "became leader in term %llu", (unsigned long long)a->term);
    }
}

void driver_step(struct driver *d, const struct yggr_event *ev)
{
    YGGR_ASSERT(d != NULL && ev != NULL);
    if (atomic_load(&d->node->health) == YGGR_HEALTH_FATAL) {
        return;
    }
    struct yggr_actions *a = &d->act;
    yggr_engine_step(d->engine, ev, a);
    d->steps++;
    driver_route_storage(d, a);
    if (a->flags & YGGR_ACT_SEND) {
        for (uint32_t i = 0; i < a->send.count; i++) {
            driver_route_send(d, &a->send.msgs[i]);
        }
    }
    driver_route_apply(d, a);
    if (a->flags & YGGR_ACT_READS) {
        for (uint32_t i = 0; i < a->reads.count; i++) {
            driver_reads_result(d, &a->reads.results[i]);
        }
    }
    if (a->flags & YGGR_ACT_SNAPSHOT_HINT) {
        driver_request_snapshot(d);
    }
    driver_note_summary(d, a);
}

/* ---------------------------------------------------------------------------------------
 * Inputs
 * ------------------------------------------------------------------------------------- */

static uint32_t driver_drain_network(struct driver *d)
{
    struct yggr_node *node = d->node;
    struct yggr_inbound in;
    uint32_t n = 0;
    while (node->tops->poll(node->transport, &in)) {
        bool pressure = driver_apply_pressure(d);
        for (uint32_t i = 0; i < in.count; i++) {
            const struct yggr_msg *m = &in.msgs[i];
            if (pressure && m->type == YGGR_MSG_APPEND_REQUEST && m->as.append.entry_count > 0) {
                d->dropped_appends++;
                continue;
            }
            struct yggr_event ev = {.type = YGGR_EVENT_RECEIVE};
            ev.as.receive = *m;
            driver_step(d, &ev);
        }
        node->tops->release(node->transport, &in);
        n += in.count + 1;
    }
    return n;
}

static void driver_storage_send_done(struct driver *d, struct yggr_storage_done *done)
{
    struct yggr_node *node = d->node;
    uint64_t slot = done->tag & ~SEND_TAG_BIT;
    YGGR_ASSERT(slot < DRIVER_MAX_STORAGE_SENDS);
    struct pending_send *ps = &d->sends[slot];
    YGGR_ASSERT(ps->used);
    if (done->err == 0 && done->type == YGGR_STORAGE_READ_DONE && done->count > 0) {
        ps->msg.as.append.entries = done->entries;
        ps->msg.as.append.entry_count = done->count;
        ps->msg.as.append.from_storage = false;
        node->tops->send(node->transport, &ps->msg);
    } else if (done->err == 0 && done->type == YGGR_STORAGE_SNAP_READ_DONE && done->len > 0) {
        YGGR_ASSERT(done->len <= ps->msg.as.snapshot.len);
        if (done->len < ps->msg.as.snapshot.len) {
            /* A short read: a prefix is fine, but not as the final chunk (engine.h: the
             * follower would install the truncated snapshot as complete). */
            ps->msg.as.snapshot.done = false;
        }
        ps->msg.as.snapshot.data = done->data;
        ps->msg.as.snapshot.buf = done->buf;
        ps->msg.as.snapshot.len = done->len;
        node->tops->send(node->transport, &ps->msg);
    }
    ps->used = false;
    node->sops->release(node->storage, done);
}

static void driver_storage_failed(struct driver *d, const struct yggr_storage_done *done)
{
    char reason[160];
    snprintf(reason, sizeof(reason), "storage failed: %.140s", done->why);
    node_set_fatal(d->node, done->err < 0 ? done->err : YGGR_ERR_IO, reason);
}

static uint32_t driver_drain_storage(struct driver *d)
{
    struct yggr_node *node = d->node;
    struct yggr_storage_done done;
    uint32_t n = 0;
    while (node->sops->poll(node->storage, &done)) {
        n++;
        struct yggr_event ev;
        switch (done.type) {
        case YGGR_STORAGE_DURABLE:
            d->disk_durable++;
            if (done.has_hard_state) {
                ev = (struct yggr_event){.type = YGGR_EVENT_HARD_STATE_PERSISTED};
                ev.as.hard_state_persisted.term = done.term;
                ev.as.hard_state_persisted.vote = done.vote;
                driver_step(d, &ev);
            }
            if (done.log.index > 0) {
                ev = (struct yggr_event){.type = YGGR_EVENT_LOG_PERSISTED};
                ev.as.log_persisted = done.log;
                driver_step(d, &ev);
            }
            break;
        case YGGR_STORAGE_READ_DONE:
            if (done.tag & HOLE_TAG_BIT) {
                driver_hole_read_done(d, &done);
                break;
            }
            driver_storage_send_done(d, &done);
            break;
        case YGGR_STORAGE_SNAP_READ_DONE:
            driver_storage_send_done(d, &done);
            break;
        case YGGR_STORAGE_SNAP_INSTALLED:
            ev = (struct yggr_event){.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
            ev.as.snapshot_persisted = done.snapshot;
            driver_step(d, &ev);
            break;
        case YGGR_STORAGE_FAILED:
            driver_storage_failed(d, &done);
            break;
        }
    }
    return n;
}

static uint32_t driver_drain_apply_events(struct driver *d)
{
    struct apply_event ev;
    uint32_t n = 0;
    while (apply_ev_ring_pop(&d->node->from_apply, &ev)) {
        n++;
        switch ((enum apply_event_kind)ev.kind) {
        case APPLY_EV_SNAPSHOT_DONE: {
            struct yggr_event e = {.type = YGGR_EVENT_SNAPSHOT_TAKEN};
            e.as.snapshot_taken.last = ev.last;
            e.as.snapshot_taken.size = ev.size;
            driver_step(d, &e);
            driver_snapshot_done(d, 0);
            break;
        }
        case APPLY_EV_SNAPSHOT_FAILED:
            driver_snapshot_done(d, ev.err);
            break;
        case APPLY_EV_RESTORED:
            node_register_peers(d->node);
            break;
        case APPLY_EV_FATAL:
            driver_snapshot_done(d, YGGR_ERR_FATAL);
            break;
        }
    }
    return n;
}

static uint32_t driver_ticks(struct driver *d)
{
    uint64_t expirations = 0;
    ssize_t r = read(d->timer_fd, &expirations, sizeof(expirations));
    if (r != (ssize_t)sizeof(expirations) || expirations == 0) {
        YGGR_ASSERT(r >= 0 || errno == EAGAIN || errno == EINTR);
        return 0;
    }
    uint64_t cap = 4u * d->node->config.election_timeout_max_ticks;
    uint64_t n = expirations < cap ? expirations : cap;
    for (uint64_t i = 0; i < n; i++) {
        struct yggr_event ev = {.type = YGGR_EVENT_TICK};
        d->ticks++;
        driver_step(d, &ev);
    }
    return (uint32_t)n;
}

/* ---------------------------------------------------------------------------------------
 * Loop
 * ------------------------------------------------------------------------------------- */

static uint32_t driver_iteration(struct driver *d)
{
    struct yggr_node *node = d->node;
    uint32_t n = driver_drain_network(d);
    n += driver_drain_storage(d);
    n += driver_drain_apply_events(d);
    n += driver_flush_overflow(d);
    n += driver_drain_clients(d);
    n += driver_ticks(d);
    n += driver_flush_deferred(d);
    if (atomic_load(&node->health) == YGGR_HEALTH_FATAL && !d->fatal_handled) {
        d->fatal_handled = true;
        driver_fail_all(d, YGGR_ERR_FATAL);
    }
    driver_check_admins(d);
    node->sops->flush(node->storage);
    node->tops->flush(node->transport);
    driver_publish_status(d);
    return n;
}

static void driver_sleep(struct driver *d)
{
    struct yggr_node *node = d->node;
    doorbell_park(&node->drv_bell);
    if (driver_iteration(d) > 0 || atomic_load(&node->stopping)) {
        doorbell_unpark(&node->drv_bell);
        return;
    }
    struct pollfd p[2] = {
        {.fd = node->drv_bell.fd, .events = POLLIN},
        {.fd = d->timer_fd, .events = POLLIN},
    };
    int rc = poll(p, 2, -1);
    YGGR_ASSERT(rc >= 0 || errno == EINTR);
    doorbell_unpark(&node->drv_bell);
    if (p[0].revents & POLLIN) {
        doorbell_drain(&node->drv_bell);
    }
}

/* Shutdown: give uncommitted proposals a short grace period, then fail what is left. */
static bool driver_stop_ready(struct driver *d)
{
    if (d->stop_deadline_ms == 0) {
        uint64_t grace = 2u * d->node->config.election_timeout_max_ticks * d->node->config.tick_ms;
        d->stop_deadline_ms = driver_now_ms() + (grace < 5000 ? grace : 5000);
    }
    bool waiting = req_fifo_len(&d->pending) > 0 && d->role == YGGR_ROLE_LEADER &&
                   atomic_load(&d->node->health) != YGGR_HEALTH_FATAL;
    return !waiting || driver_now_ms() >= d->stop_deadline_ms;
}

static void driver_finish(struct driver *d)
{
    struct yggr_node *node = d->node;
    driver_fail_all(d, atomic_load(&node->health) == YGGR_HEALTH_FATAL ? YGGR_ERR_FATAL
                                                                       : YGGR_ERR_SHUTDOWN);
    driver_drain_clients(d);
    bool fatal = atomic_load(&node->health) == YGGR_HEALTH_FATAL;
    while (!fatal && (driver_flush_deferred(d), d->deferred_head != NULL)) {
        node->sops->flush(node->storage);
        struct yggr_storage_done done;
        while (node->sops->poll(node->storage, &done)) {
            if (done.type == YGGR_STORAGE_READ_DONE || done.type == YGGR_STORAGE_SNAP_READ_DONE) {
                d->sends[done.tag & ~SEND_TAG_BIT].used = false;
                node->sops->release(node->storage, &done);
            }
        }
        usleep(1000);
        fatal = atomic_load(&node->health) == YGGR_HEALTH_FATAL;
    }
    node->sops->flush(node->storage);
    node->tops->flush(node->transport);
    while (overflow_len(d) > 0) {
        if (driver_flush_overflow(d) == 0) {
            usleep(1000);
        }
    }
    struct apply_item stop = {.kind = APPLY_STOP};
    while (!apply_ring_push(&node->to_apply, &stop)) {
        doorbell_ring(&node->apply_bell);
        usleep(1000);
    }
    doorbell_ring(&node->apply_bell);
}

void *driver_main(void *arg)
{
    struct yggr_node *node = arg;
    struct driver *d = node->drv;
    YGGR_ASSERT(d != NULL);
    threads_setup("yggr-drv", node->config.cpu_driver, node);
    d->storage_started = true;
    driver_flush_deferred(d);
    node_register_peers(d->node);
    for (;;) {
        d->wakeups++;
        uint32_t n = driver_iteration(d);
        if (atomic_load(&node->stopping) && driver_stop_ready(d)) {
            break;
        }
        if (n == 0) {
            driver_sleep(d);
        }
    }
    driver_finish(d);
    /* The apply thread is told to stop by driver_finish; node_join_threads must not push
     * a second APPLY_STOP. */
    node->apply_started = false;
    pthread_join(node->apply_thread, NULL);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Create / destroy
 * ------------------------------------------------------------------------------------- */

static void driver_engine_config(const struct yggr_config *c, struct yggr_engine_config *ec)
{
    yggr_engine_config_init(ec, c->node_id);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t nanos = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    ec->seed = (nanos * 0x9E3779B97F4A7C15ull) ^ c->node_id;
    ec->election_timeout_min_ticks = c->election_timeout_min_ticks;
    ec->election_timeout_max_ticks = c->election_timeout_max_ticks;
    ec->heartbeat_interval_ticks = c->heartbeat_interval_ticks;
    ec->pre_vote = c->pre_vote;
    ec->check_quorum = c->check_quorum;
    ec->lease_duration_ticks = c->lease_duration_ticks;
    ec->log_cache_entries = c->log_cache_entries;
    ec->max_pending_reads = c->max_pending_reads;
    ec->snapshot_chunk_bytes = c->snapshot_chunk_bytes;
    ec->snapshot_threshold_entries = c->snapshot_threshold_entries;
    ec->max_log_entries = c->max_log_entries;
    ec->snapshot_trailing_entries = c->snapshot_trailing_entries;
    if (ec->max_step_entries < c->max_batch_entries * 2) {
        ec->max_step_entries = c->max_batch_entries * 2;
    }
}

static int driver_alloc(struct driver *d, const struct yggr_config *c)
{
    d->batch_cap = c->max_batch_entries;
    d->batch = calloc(d->batch_cap, sizeof(*d->batch));
    d->batch_entries = calloc(d->batch_cap, sizeof(*d->batch_entries));
    d->read_in_engine = calloc(d->node->pool_size, sizeof(*d->read_in_engine));
    d->overflow_mask = 1023;
    d->overflow = calloc(d->overflow_mask + 1, sizeof(*d->overflow));
    if (d->batch == NULL || d->batch_entries == NULL || d->overflow == NULL ||
        d->read_in_engine == NULL) {
        return YGGR_ERR_NOMEM;
    }
    if (req_fifo_init(&d->pending, c->max_pending_proposals + 1) != 0 ||
        req_fifo_init(&d->reads_ready, c->max_pending_reads + 1) != 0) {
        return YGGR_ERR_NOMEM;
    }
    d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (d->timer_fd < 0) {
        return YGGR_ERR_IO;
    }
    struct itimerspec its = {0};
    its.it_interval.tv_sec = c->tick_ms / 1000;
    its.it_interval.tv_nsec = (long)(c->tick_ms % 1000) * 1000000L;
    its.it_value = its.it_interval;
    if (timerfd_settime(d->timer_fd, 0, &its, NULL) != 0) {
        return YGGR_ERR_IO;
    }
    return 0;
}

static void driver_seed_apply(struct yggr_node *node, const struct yggr_storage_state *state)
{
    const struct yggr_recovered *r = &state->recovered;
    node->apply_config = r->has_snapshot ? r->snapshot.config : r->base_config;
    for (uint32_t i = 0; i < r->config_count; i++) {
        const struct yggr_entry *e = &r->configs[i];
        if (e->len > 0 && e->node != node->config.node_id) {
            node_book_set(node, e->node, (const char *)e->data, e->len);
        }
    }
    atomic_store(&node->applied_index, 0);
}

int driver_create(struct yggr_node *node, const struct yggr_storage_state *state)
{
    YGGR_ASSERT(node != NULL && state != NULL);
    struct driver *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return YGGR_ERR_NOMEM;
    }
    d->timer_fd = -1;
    d->node = node;
    node->drv = d;
    int rc = driver_alloc(d, &node->config);
    if (rc != 0) {
        return rc;
    }
    struct yggr_engine_config ec;
    driver_engine_config(&node->config, &ec);
    rc = yggr_engine_create(&ec, &d->engine);
    if (rc != 0) {
        return rc;
    }
    driver_seed_apply(node, state);
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    ev.as.recover = state->recovered;
    driver_step(d, &ev);
    if (state->recovered.has_snapshot) {
        struct apply_item it = {.kind = APPLY_RESTORE,
                                .index = state->recovered.snapshot.last.index};
        it.meta = malloc(sizeof(*it.meta));
        if (it.meta == NULL) {
            return YGGR_ERR_NOMEM;
        }
        *it.meta = state->recovered.snapshot;
        driver_apply_push(d, &it);
        d->pushed_index = it.index;
    }
    driver_publish_status(d);
    return 0;
}

void driver_destroy(struct yggr_node *node)
{
    struct driver *d = node->drv;
    if (d == NULL) {
        return;
    }
    while (d->deferred_head != NULL) {
        struct deferred_req *dr = d->deferred_head;
        d->deferred_head = dr->next;
        deferred_free(dr);
    }
    while (overflow_len(d) > 0) {
        struct apply_item *it = &d->overflow[d->overflow_head & d->overflow_mask];
        yggr_buf_release(it->buf);
        free(it->meta);
        d->overflow_head++;
    }
    while (d->holes != NULL) {
        driver_close_hole(d, d->holes);
    }
    if (d->engine != NULL) {
        yggr_engine_destroy(d->engine);
    }
    if (d->timer_fd >= 0) {
        close(d->timer_fd);
    }
    req_fifo_deinit(&d->pending);
    req_fifo_deinit(&d->reads_ready);
    free(d->overflow);
    free(d->read_in_engine);
    free(d->batch);
    free(d->batch_entries);
    free(d);
    node->drv = NULL;
}
