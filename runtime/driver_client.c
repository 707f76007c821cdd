/* SPDX-License-Identifier: MIT */
/* The driver's side of client requests: proposal batches, reads, administration, waiters,
 * status and metrics.
 *
 * Design notes:
 * - All proposals drained in one wake-up become ONE PROPOSE step (natural batching: no
 *   timer; under load batches grow by themselves). Commands are already in the payload
 *   arena (copied by the proposing thread): entries reference them, zero copy.
 * - Proposals wait in `pending` (index order) until their entry is applied. A reply is
 *   matched by (index, term): an entry at that index with another term means our entry
 *   was replaced by another leader's, so the proposer gets NOT_LEADER, never another
 *   command's result (fixes REFERENCE 8.1 #5). Losing leadership fails every pending
 *   proposal at once with STEPPED_DOWN (outcome unknown; fixes 8.2 #20).
 * - Reads: LOCAL reads go straight to the apply queue; others go through the engine
 *   (ReadIndex or lease) and, once READY at index i, are queued for apply behind every
 *   entry up to i.
 * - Admin requests (membership, transfer, snapshot, metrics) wait in a small table; each
 *   iteration checks their completion conditions and deadlines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "yggr_assert.h"

int req_fifo_init(struct req_fifo *f, uint32_t min_cap)
{
    uint32_t cap = 2;
    while (cap < min_cap) {
        cap <<= 1;
    }
    f->items = calloc(cap, sizeof(*f->items));
    f->mask = cap - 1;
    f->head = 0;
    f->tail = 0;
    return f->items != NULL ? 0 : -1;
}

void req_fifo_deinit(struct req_fifo *f)
{
    free(f->items);
    f->items = NULL;
}

uint32_t req_fifo_len(const struct req_fifo *f)
{
    return f->tail - f->head;
}

bool req_fifo_push(struct req_fifo *f, struct req *r)
{
    YGGR_ASSERT(r != NULL);
    if (req_fifo_len(f) > f->mask) {
        return false;
    }
    f->items[f->tail & f->mask] = r;
    f->tail++;
    return true;
}

struct req *req_fifo_peek(const struct req_fifo *f)
{
    return req_fifo_len(f) > 0 ? f->items[f->head & f->mask] : NULL;
}

struct req *req_fifo_pop(struct req_fifo *f)
{
    struct req *r = req_fifo_peek(f);
    if (r != NULL) {
        f->head++;
    }
    return r;
}

/* NOT_LEADER on a node that was removed is REMOVED (its leader hint is stale and it will
 * never lead again); without a known leader it is NO_LEADER for the caller. */
static int map_not_leader(const struct driver *d, int err, uint64_t hint)
{
    if (err != YGGR_ERR_NOT_LEADER && err != YGGR_ERR_NO_LEADER) {
        return err;
    }
    if (d->removed) {
        return YGGR_ERR_REMOVED;
    }
    return hint == 0 ? YGGR_ERR_NO_LEADER : err;
}

static uint64_t hint_of(const struct driver *d)
{
    return d->role == YGGR_ROLE_LEADER ? 0 : d->leader;
}

static void fail_req(struct driver *d, struct req *req, int err)
{
    struct yggr_node *node = d->node;
    uint64_t hint = hint_of(d);
    switch (req->type) {
    case REQ_PROPOSE:
        apply_complete_propose(node, req, map_not_leader(d, err, hint), hint, NULL, 0);
        return;
    case REQ_READ:
        d->read_in_engine[req->slot] = false;
        apply_complete_read(node, req, map_not_leader(d, err, hint), hint, NULL);
        return;
    case REQ_ADMIN:
        req->admin->leader_hint = hint;
        node_admin_complete(req->admin, err);
        node_req_free(node, req);
        return;
    }
    YGGR_UNREACHABLE();
}

void driver_fail_pending(struct driver *d, int err)
{
    struct req *r;
    while ((r = req_fifo_pop(&d->pending)) != NULL) {
        fail_req(d, r, err);
    }
}

void driver_match_proposal(struct driver *d, struct apply_item *it)
{
    struct req *r;
    while ((r = req_fifo_peek(&d->pending)) != NULL && r->index <= it->index) {
        req_fifo_pop(&d->pending);
        if (r->index == it->index && r->term == it->term && it->entry_type == YGGR_ENTRY_COMMAND) {
            it->req = r;
            return;
        }
        /* Our entry at this index was replaced by another leader's: it was never applied. */
        fail_req(d, r, YGGR_ERR_NOT_LEADER);
    }
}

/* ---------------------------------------------------------------------------------------
 * Proposals
 * ------------------------------------------------------------------------------------- */

static void flush_batch(struct driver *d, uint32_t n)
{
    if (n == 0) {
        return;
    }
    if (d->overflow_tail != d->overflow_head) {
        for (uint32_t i = 0; i < n; i++) {
            atomic_fetch_add(&d->node->proposals_busy, 1);
            fail_req(d, d->batch[i], YGGR_ERR_BUSY);
        }
        return;
    }
    uint32_t ok = n;
    for (uint32_t i = 0; i < n; i++) {
        struct yggr_entry *e = &d->batch_entries[i];
        memset(e, 0, sizeof(*e));
        e->type = YGGR_ENTRY_COMMAND;
        e->len = d->batch[i]->len;
        e->data = e->len > 0 ? d->batch[i]->cmd_data : NULL;
        e->buf = d->batch[i]->cmd_buf; /* the engine takes its own references */
    }
    struct yggr_event ev = {.type = YGGR_EVENT_PROPOSE};
    ev.as.propose.entries = d->batch_entries;
    ev.as.propose.count = ok;
    driver_step(d, &ev);
    d->batches++;
    const struct yggr_result *res = &d->act.result;
    YGGR_ASSERT(d->act.flags & YGGR_ACT_RESULT);
    uint32_t accepted = res->err == 0 ? res->count : 0;
    YGGR_ASSERT(accepted <= ok);
    for (uint32_t i = 0; i < n; i++) {
        struct req *r = d->batch[i];
        if (i < accepted) {
            r->index = res->index + i;
            r->term = res->term;
            bool pushed = req_fifo_push(&d->pending, r);
            YGGR_ASSERT(pushed);
            continue;
        }
        int err = res->err != 0 ? res->err : YGGR_ERR_BUSY;
        if (err == YGGR_ERR_BUSY) {
            atomic_fetch_add(&d->node->proposals_busy, 1);
        }
        fail_req(d, r, map_not_leader(d, err, res->leader_hint));
    }
}

/* ---------------------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------------------- */

static void push_read(struct driver *d, struct req *r)
{
    struct apply_item it = {.kind = APPLY_READ, .req = r, .index = r->read_index};
    driver_apply_push(d, &it);
    doorbell_ring(&d->node->apply_bell);
}

void driver_push_ready_reads(struct driver *d)
{
    struct req *r;
    while ((r = req_fifo_peek(&d->reads_ready)) != NULL && r->read_index <= d->pushed_index) {
        req_fifo_pop(&d->reads_ready);
        push_read(d, r);
    }
}

static void handle_read(struct driver *d, struct req *r)
{
    if (r->mode == YGGR_READ_LOCAL) {
        r->read_index = d->pushed_index;
        push_read(d, r);
        return;
    }
    d->read_in_engine[r->slot] = true;
    struct yggr_event ev = {.type = YGGR_EVENT_READ};
    ev.as.read.id = r->slot;
    driver_step(d, &ev);
}

void driver_reads_result(struct driver *d, const struct yggr_read_result *res)
{
    struct yggr_node *node = d->node;
    if (res->id >= node->pool_size || !d->read_in_engine[res->id]) {
        return; /* already failed (shutdown/fatal) */
    }
    struct req *r = &node->pool[res->id];
    d->read_in_engine[res->id] = false;
    YGGR_ASSERT(r->type == REQ_READ);
    switch (res->status) {
    case YGGR_READ_READY:
        r->read_index = res->index;
        if (res->index <= d->pushed_index && req_fifo_len(&d->reads_ready) == 0) {
            push_read(d, r);
        } else {
            bool ok = req_fifo_push(&d->reads_ready, r);
            YGGR_ASSERT(ok);
        }
        return;
    case YGGR_READ_NOT_LEADER:
        apply_complete_read(node, r, map_not_leader(d, YGGR_ERR_NOT_LEADER, res->leader_hint),
                            res->leader_hint, NULL);
        return;
    case YGGR_READ_NOT_READY:
        apply_complete_read(node, r, YGGR_ERR_NOT_READY, res->leader_hint, NULL);
        return;
    case YGGR_READ_STEPPED_DOWN:
        apply_complete_read(node, r, YGGR_ERR_STEPPED_DOWN, res->leader_hint, NULL);
        return;
    case YGGR_READ_BUSY:
        apply_complete_read(node, r, YGGR_ERR_BUSY, res->leader_hint, NULL);
        return;
    }
    YGGR_UNREACHABLE();
}

/* ---------------------------------------------------------------------------------------
 * Admin
 * ------------------------------------------------------------------------------------- */

static void admin_park(struct driver *d, struct admin *a)
{
    if (d->admin_count == DRIVER_MAX_ADMIN) {
        node_admin_complete(a, YGGR_ERR_BUSY);
        return;
    }
    d->admins[d->admin_count++] = a;
}

static void fill_metrics(struct driver *d, struct yggr_metrics *m);

static void handle_change(struct driver *d, struct admin *a)
{
    struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
    ev.as.change.type = a->change;
    ev.as.change.node = a->target;
    ev.as.change.addr = (const uint8_t *)a->addr;
    ev.as.change.addr_len = (uint32_t)strlen(a->addr);
    driver_step(d, &ev);
    const struct yggr_result *res = &d->act.result;
    YGGR_ASSERT(d->act.flags & YGGR_ACT_RESULT);
    if (res->err != 0) {
        a->leader_hint = res->leader_hint;
        node_admin_complete(a, map_not_leader(d, res->err, res->leader_hint));
        return;
    }
    if (a->addr[0] != '\0') {
        node_book_set(d->node, a->target, a->addr, (uint32_t)strlen(a->addr));
    }
    a->wait_index = res->index;
    a->wait_term = res->term;
    admin_park(d, a);
}

static void handle_admin(struct driver *d, struct req *r)
{
    struct admin *a = r->admin;
    node_req_free(d->node, r);
    uint64_t tick_ms = d->node->config.tick_ms;
    a->deadline_tick = a->timeout_ms > 0 ? d->ticks + a->timeout_ms / tick_ms + 1 : 0;
    switch (a->type) {
    case ADMIN_CHANGE:
        handle_change(d, a);
        return;
    case ADMIN_TRANSFER: {
        struct yggr_event ev = {.type = YGGR_EVENT_TRANSFER};
        ev.as.transfer.target = a->target;
        driver_step(d, &ev);
        const struct yggr_result *res = &d->act.result;
        if (res->err != 0) {
            a->leader_hint = res->leader_hint;
            node_admin_complete(a, map_not_leader(d, res->err, res->leader_hint));
            return;
        }
        admin_park(d, a);
        return;
    }
    case ADMIN_SNAPSHOT:
        driver_request_snapshot(d);
        admin_park(d, a);
        return;
    case ADMIN_METRICS:
        fill_metrics(d, a->metrics);
        node_admin_complete(a, 0);
        return;
    }
    YGGR_UNREACHABLE();
}

/* Returns the completion error, or 1 while the request must keep waiting. */
static int admin_status(struct driver *d, struct admin *a)
{
    switch (a->type) {
    case ADMIN_CHANGE:
        if (d->commit >= a->wait_index) {
            if (yggr_engine_term_at(d->engine, a->wait_index) != a->wait_term) {
                return YGGR_ERR_NOT_LEADER;
            }
            yggr_engine_config_committed(d->engine, &a->config);
            return 0;
        }
        if (d->role != YGGR_ROLE_LEADER) {
            return YGGR_ERR_STEPPED_DOWN;
        }
        break;
    case ADMIN_TRANSFER:
        if (d->leader == a->target) {
            return 0;
        }
        if (d->role == YGGR_ROLE_LEADER && !d->transferring) {
            /* The engine gives a transfer one election timeout (the target may have been
             * unreachable or behind); keep trying until the caller's deadline. */
            struct yggr_event ev = {.type = YGGR_EVENT_TRANSFER};
            ev.as.transfer.target = a->target;
            driver_step(d, &ev);
        }
        break;
    case ADMIN_SNAPSHOT:
    case ADMIN_METRICS:
        break;
    }
    if (a->deadline_tick != 0 && d->ticks >= a->deadline_tick) {
        return YGGR_ERR_TIMEOUT;
    }
    return 1;
}

void driver_check_admins(struct driver *d)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < d->admin_count; i++) {
        struct admin *a = d->admins[i];
        int st = admin_status(d, a);
        if (st == 1) {
            d->admins[keep++] = a;
            continue;
        }
        a->leader_hint = hint_of(d);
        node_admin_complete(a, map_not_leader(d, st, a->leader_hint));
    }
    d->admin_count = keep;
}

void driver_request_snapshot(struct driver *d)
{
    if (d->snapshot_in_flight) {
        return;
    }
    struct apply_item it = {.kind = APPLY_SNAPSHOT, .index = d->pushed_index};
    driver_apply_push(d, &it);
    doorbell_ring(&d->node->apply_bell);
    d->snapshot_in_flight = true;
}

void driver_snapshot_done(struct driver *d, int err)
{
    d->snapshot_in_flight = false;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < d->admin_count; i++) {
        struct admin *a = d->admins[i];
        if (a->type == ADMIN_SNAPSHOT) {
            node_admin_complete(a, err);
        } else {
            d->admins[keep++] = a;
        }
    }
    d->admin_count = keep;
}

/* ---------------------------------------------------------------------------------------
 * Draining clients, failing everything
 * ------------------------------------------------------------------------------------- */

static int refusal(const struct driver *d)
{
    if (atomic_load(&d->node->health) == YGGR_HEALTH_FATAL) {
        return YGGR_ERR_FATAL;
    }
    return atomic_load(&d->node->stopping) ? YGGR_ERR_SHUTDOWN : 0;
}

uint32_t driver_drain_clients(struct driver *d)
{
    struct yggr_node *node = d->node;
    uint32_t n = 0;
    uint32_t nb = 0;
    struct req *r;
    while ((r = mpsc_ring_pop(&node->to_drv)) != NULL) {
        n++;
        int err = refusal(d);
        if (err != 0) {
            fail_req(d, r, err);
            continue;
        }
        switch (r->type) {
        case REQ_PROPOSE:
            d->batch[nb++] = r;
            if (nb == d->batch_cap) {
                flush_batch(d, nb);
                nb = 0;
            }
            break;
        case REQ_READ:
            handle_read(d, r);
            break;
        case REQ_ADMIN:
            handle_admin(d, r);
            break;
        }
    }
    flush_batch(d, nb);
    return n;
}

void driver_fail_all(struct driver *d, int err)
{
    struct yggr_node *node = d->node;
    driver_fail_pending(d, err);
    struct req *r;
    while ((r = req_fifo_pop(&d->reads_ready)) != NULL) {
        fail_req(d, r, err);
    }
    for (uint32_t i = 0; i < node->pool_size; i++) {
        if (d->read_in_engine[i]) {
            fail_req(d, &node->pool[i], err);
        }
    }
    for (uint32_t i = 0; i < d->admin_count; i++) {
        d->admins[i]->leader_hint = hint_of(d);
        node_admin_complete(d->admins[i], err);
    }
    d->admin_count = 0;
}

/* ---------------------------------------------------------------------------------------
 * Status and metrics
 * ------------------------------------------------------------------------------------- */

void driver_publish_status(struct driver *d)
{
    struct yggr_node *node = d->node;
    struct yggr_status *s = &node->status.status;
    struct yggr_engine_metrics em;
    yggr_engine_metrics(d->engine, &em);
    pthread_mutex_lock(&node->status.mu);
    bool same = s->role == d->role && s->term == d->term && s->leader == d->leader &&
                s->removed == d->removed && s->commit_index == d->commit &&
                s->last_log_index == d->last_index &&
                s->snapshot_index == d->last_index - em.log_len && s->id != 0;
    if (!same) {
        s->id = node->config.node_id;
        s->role = d->role;
        s->term = d->term;
        s->leader = d->leader;
        s->removed = d->removed;
        s->commit_index = d->commit;
        s->last_log_index = d->last_index;
        s->snapshot_index = d->last_index - em.log_len;
        yggr_engine_config_latest(d->engine, &s->config);
    }
    pthread_mutex_unlock(&node->status.mu);
}

static void fill_engine_metrics(struct driver *d, struct yggr_metrics *m)
{
    struct yggr_engine_metrics e;
    yggr_engine_metrics(d->engine, &e);
    m->elections_started = e.elections_started;
    m->pre_votes_granted = e.pre_votes_granted;
    m->pre_votes_denied = e.pre_votes_denied;
    m->votes_granted = e.votes_granted;
    m->votes_denied = e.votes_denied;
    m->leader_elections_won = e.leader_elections_won;
    m->higher_term_stepdowns = e.higher_term_stepdowns;
    m->append_entries_sent = e.append_entries_sent;
    m->append_entries_received = e.append_entries_received;
    m->append_entries_rejected = e.append_entries_rejected;
    m->entries_appended = e.entries_appended;
    m->entries_committed = e.entries_committed;
    m->entries_applied = e.entries_applied;
    m->snapshots_sent = e.snapshots_sent;
    m->snapshots_installed = e.snapshots_installed;
    m->read_index_started = e.read_index_started;
    m->reads_completed = e.reads_completed;
    m->reads_failed = e.reads_failed;
    m->check_quorum_stepdowns = e.check_quorum_stepdowns;
    m->transfers_started = e.transfers_started;
    m->transfers_completed = e.transfers_completed;
    m->transfers_timed_out = e.transfers_timed_out;
    m->current_term = e.current_term;
    m->commit_index = e.commit_index;
    m->last_applied = e.last_applied;
    m->log_len = e.log_len;
    m->role_code = e.role_code;
}

static void fill_metrics(struct driver *d, struct yggr_metrics *m)
{
    struct yggr_node *node = d->node;
    memset(m, 0, sizeof(*m));
    fill_engine_metrics(d, m);
    m->proposals_submitted = atomic_load(&node->proposals_submitted);
    m->proposals_completed = atomic_load(&node->proposals_completed);
    m->proposals_failed = atomic_load(&node->proposals_failed);
    m->proposals_busy = atomic_load(&node->proposals_busy);
    m->driver_wakeups = d->wakeups;
    m->driver_steps = d->steps;
    m->proposal_batches = d->batches;
    m->disk_writes = d->disk_appends;
    m->disk_syncs = d->disk_durable;
    m->disk_bytes_written = d->disk_bytes;
    m->disk_entries_written = d->disk_entries;
    m->disk_reads = d->storage_reads;
    m->snapshots_taken = atomic_load(&node->snapshots_taken);
    m->snapshots_restored = atomic_load(&node->snapshots_restored);
    m->ring_client_depth = mpsc_ring_depth(&node->to_drv);
    m->ring_apply_depth = apply_ring_depth(&node->to_apply) + (d->overflow_tail - d->overflow_head);
    struct yggr_peer_progress pp[YGGR_MAX_MEMBERS];
    uint32_t n = yggr_engine_progress(d->engine, pp, YGGR_MAX_MEMBERS);
    n = n < YGGR_MAX_MEMBERS ? n : YGGR_MAX_MEMBERS;
    for (uint32_t i = 0; i < n; i++) {
        struct yggr_peer_metrics *p = &m->peers[i];
        node->tops->peer_metrics(node->transport, pp[i].id, p);
        p->id = pp[i].id;
        p->learner = pp[i].learner;
        p->match_index = pp[i].match_index;
        p->next_index = pp[i].next_index;
        p->inflight_msgs = pp[i].inflight_msgs;
        p->state = (uint8_t)pp[i].state;
    }
    m->peer_count = n;
}
