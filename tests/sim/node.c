/* SPDX-License-Identifier: MIT */
/* One simulated node: its engine, disk and state machine; carries out the engine's actions. */

/*
 * Design notes
 *
 * The host duties of engine.h, in order, for every step:
 *   1. HARD_STATE  -> pending write (checked: term never decreases, a vote never changes
 *                     within a term);
 *   2. SNAPSHOT_CHUNK, APPEND, COMPACT -> pending writes, applied to the written view at
 *                     once (checked: contiguity, a leader never truncates its own log,
 *                     every written entry goes through the Log Matching history);
 *   3. commit index -> newly committed entries enter the commit history;
 *   4. SEND        -> from_storage entries / snapshot bytes are read from the written view
 *                     and the message is deep-copied into the network (checked: vote
 *                     grants, RequestVotes and AppendEntries successes only carry state
 *                     that is already DURABLE);
 *   5. APPLY_SNAPSHOT, APPLY -> the state machine (checked: contiguous, committed, same
 *                     entry and same state as every other node at that index; a proposal
 *                     applied by the node that appended it is acknowledged);
 *   6. READS       -> linearizability checks;
 *   7. the summary -> role/term/commit/applied checks; a new leader is checked for
 *                     Leader Completeness against every committed entry.
 * Durability is reported only by node_flush (a "fsync"), one event per write, in order.
 *
 * A node's life: absent -> node_start (bootstrap: founders get the founders' config,
 * joiners an empty one) -> alive -> node_crash -> down -> node_start (RECOVER from the
 * durable view only; the state machine restarts from the durable snapshot) -> alive ...
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

#define U(v) ((unsigned long long)(v))

static void note(struct sim *sim, enum trace_kind kind, const struct sim_node *n,
                 uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
    sim_note(sim, kind, n->id, 0, a0, a1, a2, a3);
}

/* ---- 1. hard state ------------------------------------------------------------------ */

static void do_hard_state(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    const struct sview *w = &n->store.written;
    uint64_t term = a->hard_state.term;
    uint64_t vote = a->hard_state.vote;
    if (term < w->term) {
        sim_violate(sim, "hard state: n%llu term went back from %llu to %llu", U(n->id),
                    U(w->term), U(term));
    } else if (term == w->term && w->vote != 0 && vote != w->vote) {
        sim_violate(sim, "hard state: n%llu changed its vote in term %llu from n%llu to n%llu",
                    U(n->id), U(term), U(w->vote), U(vote));
    }
    note(sim, TR_HARD, n, term, vote, 0, 0);
    struct pop op = {.kind = POP_HARD, .term = term, .vote = vote};
    op.ready_step = sim->now_step + n->disk_latency;
    (void)store_submit(&n->store, &op);
}

/* ---- 2. log and snapshot writes ----------------------------------------------------- */

static void configs_forget_from(struct sim_node *n, uint64_t index)
{
    while (n->config_count > 0 && n->config_idx[n->config_count - 1] >= index) {
        n->config_count--;
    }
}

static void configs_forget_below(struct sim_node *n, uint64_t index)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->config_count; i++) {
        if (n->config_idx[i] >= index) {
            n->config_idx[k++] = n->config_idx[i];
        }
    }
    n->config_count = k;
}

static void configs_add(struct sim_node *n, uint64_t index)
{
    const uint32_t max = (uint32_t)(sizeof(n->config_idx) / sizeof(n->config_idx[0]));
    if (n->config_count == max) {
        memmove(n->config_idx, n->config_idx + 1, (max - 1) * sizeof(n->config_idx[0]));
        n->config_count--;
    }
    n->config_idx[n->config_count++] = index;
}

/* Term of the entry before `index` in the written view, UINT64_MAX when unknown. */
static uint64_t prev_term_of(const struct sview *w, uint64_t index)
{
    if (index == 1) {
        return 0;
    }
    const struct yggr_entry *e = slog_at(&w->log, index - 1);
    if (e != NULL) {
        return e->term;
    }
    if (w->snap.present && w->snap.meta.last.index == index - 1) {
        return w->snap.meta.last.term;
    }
    return UINT64_MAX;
}

static void do_append(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    const struct sview *w = &n->store.written;
    uint64_t from = a->append.truncate_from;
    uint32_t count = a->append.count;
    if (from != 0 && from <= slog_last(&w->log) && n->role == YGGR_ROLE_LEADER &&
        a->role == YGGR_ROLE_LEADER && a->term == n->term) {
        sim_violate(sim, "leader append-only: leader n%llu truncated its log from %llu",
                    U(n->id), U(from));
        return;
    }
    uint64_t first = count > 0 ? a->append.entries[0].index : 0;
    note(sim, TR_APPEND, n, from, first, count, count > 0 ? a->append.entries[count - 1].term : 0);
    struct pop op = {.kind = POP_APPEND, .truncate_from = from, .count = count};
    op.entries = (struct yggr_entry *)a->append.entries;
    op.ready_step = sim->now_step + n->disk_latency;
    uint64_t prev = count > 0 ? prev_term_of(w, first) : 0;
    const char *why = store_submit(&n->store, &op);
    if (why != NULL) {
        sim_violate(sim, "storage contract: n%llu: %s (truncate_from=%llu first=%llu, log=[%llu,%llu])",
                    U(n->id), why, U(from), U(first), U(w->log.first), U(slog_last(&w->log)));
        return;
    }
    if (from != 0) {
        configs_forget_from(n, from);
    }
    for (uint32_t i = 0; i < count; i++) {
        const struct yggr_entry *e = &a->append.entries[i];
        if (!check_log_entry(&sim->check, n->id, e, prev)) {
            sim_violate(sim, "%s", sim->check.why);
            return;
        }
        if (e->type == YGGR_ENTRY_CONFIG) {
            configs_add(n, e->index);
            sim_note(sim, TR_CONFIG, n->id, e->node, e->index, e->term, e->change, 0);
        }
        prev = e->term;
    }
}

static void chunk_reserve(struct store *s, uint64_t need)
{
    if (need <= s->partial_cap) {
        return;
    }
    uint64_t cap = s->partial_cap < 256 ? 256 : s->partial_cap;
    while (cap < need) {
        cap *= 2;
    }
    s->partial_data = realloc(s->partial_data, cap);
    YGGR_ASSERT(s->partial_data != NULL);
    s->partial_cap = cap;
}

/* The chunk's meta.size is 0 until the done chunk (the wire carries no total size). */
static void chunk_done(struct sim *sim, struct sim_node *n, const struct yggr_snapshot_meta *meta)
{
    struct store *s = &n->store;
    if (s->partial_len != meta->size || meta->size > UINT32_MAX) {
        sim_violate(sim, "snapshot chunk: n%llu done at %llu bytes, meta says %llu", U(n->id),
                    U(s->partial_len), U(meta->size));
        return;
    }
    struct pop op = {.kind = POP_SNAPSHOT};
    op.snap.present = true;
    op.snap.meta = *meta;
    op.snap.bytes = yggr_buf_alloc((uint32_t)meta->size);
    YGGR_ASSERT(op.snap.bytes != NULL);
    memcpy(op.snap.bytes->data, s->partial_data, meta->size);
    op.ready_step = sim->now_step + n->disk_latency;
    (void)store_submit(s, &op);
    ssnap_release(&op.snap);
    if (slog_at(&s->written.log, meta->last.index + 1) == NULL) {
        n->config_count = 0;
    } else {
        configs_forget_below(n, meta->last.index + 1);
    }
    ssnap_release(&s->partial);
    s->partial_len = 0;
    note(sim, TR_INSTALL, n, meta->last.index, meta->last.term, meta->size, 1);
}

static void do_chunk(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    struct store *s = &n->store;
    uint64_t offset = a->snapshot_chunk.offset;
    uint32_t len = a->snapshot_chunk.len;
    const struct yggr_snapshot_meta *meta = &a->snapshot_chunk.meta;
    if (offset == 0) {
        ssnap_release(&s->partial);
        s->partial.present = true;
        s->partial.meta = *meta;
        s->partial_len = 0;
    }
    /* Contiguous chunks only, like storage/snapshot.c (it asserts offset == bytes held):
     * neither a gap nor an overlap. */
    if (!s->partial.present || s->partial.meta.last.index != meta->last.index ||
        s->partial.meta.last.term != meta->last.term || offset != s->partial_len ||
        (len > 0 && a->snapshot_chunk.data == NULL)) {
        sim_violate(sim, "storage contract: snapshot chunk: n%llu got offset %llu len %u of "
                    "(%llu,%llu) while holding %llu bytes (chunks must be contiguous)",
                    U(n->id), U(offset), len, U(meta->last.index), U(meta->last.term),
                    U(s->partial_len));
        return;
    }
    chunk_reserve(s, offset + len);
    if (len > 0) {
        memcpy(s->partial_data + offset, a->snapshot_chunk.data, len);
    }
    s->partial_len = offset + len;
    if (a->snapshot_chunk.done) {
        chunk_done(sim, n, meta);
    }
}

static void do_compact(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    struct pop op = {.kind = POP_COMPACT, .below = a->compact_below};
    op.ready_step = sim->now_step + n->disk_latency;
    note(sim, TR_COMPACT, n, a->compact_below, 0, 0, 0);
    const char *why = store_submit(&n->store, &op);
    if (why != NULL) {
        sim_violate(sim, "storage contract: n%llu: %s (below=%llu)", U(n->id), why,
                    U(a->compact_below));
        return;
    }
    configs_forget_below(n, a->compact_below);
}

/* ---- 3. commit ---------------------------------------------------------------------- */

static void do_commit(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    uint64_t c = a->commit_index;
    if (c < n->commit) {
        sim_violate(sim, "commit index of n%llu went back from %llu to %llu", U(n->id),
                    U(n->commit), U(c));
        return;
    }
    if (c > a->last_index && c > n->store.written.snap.meta.last.index) {
        sim_violate(sim, "n%llu commit %llu beyond its last index %llu", U(n->id), U(c),
                    U(a->last_index));
        return;
    }
    const struct sview *w = &n->store.written;
    for (uint64_t i = n->commit + 1; i <= c; i++) {
        const struct yggr_entry *e = slog_at(&w->log, i);
        if (e == NULL) {
            if (w->snap.present && i <= w->snap.meta.last.index) {
                continue; /* committed through the snapshot */
            }
            sim_violate(sim, "n%llu committed index %llu that is not in its log [%llu,%llu]",
                        U(n->id), U(i), U(w->log.first), U(slog_last(&w->log)));
            return;
        }
        if (!check_commit(&sim->check, n->id, i, e->term, rng_entry_digest(e), a->term)) {
            sim_violate(sim, "%s", sim->check.why);
            return;
        }
    }
    if (c > n->commit) {
        note(sim, TR_COMMIT, n, n->commit, c, 0, 0);
    }
    n->commit = c;
}

/* ---- 4. sends ----------------------------------------------------------------------- */

/* The engine promised never to send what is not durable: check it against the disk. */
static bool send_durable(struct sim *sim, struct sim_node *n, const struct yggr_msg *m)
{
    const struct sview *d = &n->store.durable;
    if (m->type == YGGR_MSG_VOTE_REQUEST &&
        (d->term < m->term || (d->term == m->term && d->vote != n->id))) {
        return sim_violate(sim, "persist before send: n%llu requests votes in term %llu but "
                           "its durable hard state is (%llu, n%llu)", U(n->id), U(m->term),
                           U(d->term), U(d->vote));
    }
    if (m->type == YGGR_MSG_VOTE_RESPONSE && m->as.vote_response.granted &&
        (d->term != m->term || d->vote != m->to)) {
        return sim_violate(sim, "persist before send: n%llu grants its term-%llu vote to n%llu "
                           "but its durable hard state is (%llu, n%llu)", U(n->id), U(m->term),
                           U(m->to), U(d->term), U(d->vote));
    }
    if (m->type == YGGR_MSG_APPEND_RESPONSE && m->as.append_response.success) {
        uint64_t la = m->as.append_response.last_appended;
        const struct yggr_entry *de = slog_at(&d->log, la);
        uint64_t term = yggr_engine_term_at(n->engine, la);
        bool snap_covers = d->snap.present && la <= d->snap.meta.last.index;
        if (la > 0 && !snap_covers && (de == NULL || (term != 0 && de->term != term))) {
            return sim_violate(sim, "persist before send: n%llu acknowledges index %llu that "
                               "is not durable (durable log [%llu,%llu])", U(n->id), U(la),
                               U(d->log.first), U(slog_last(&d->log)));
        }
    }
    return true;
}

/* Fill what the engine left to storage; false when storage no longer has it. */
static bool send_fill(struct sim_node *n, struct yggr_msg *m, struct yggr_entry *scratch,
                      uint32_t scratch_cap)
{
    const struct sview *w = &n->store.written;
    if (m->type == YGGR_MSG_APPEND_REQUEST && m->as.append.from_storage) {
        uint32_t count = m->as.append.entry_count;
        YGGR_ASSERT(count <= scratch_cap);
        for (uint32_t i = 0; i < count; i++) {
            const struct yggr_entry *e = slog_at(&w->log, m->as.append.prev.index + 1 + i);
            if (e == NULL) {
                return false;
            }
            scratch[i] = *e;
        }
        m->as.append.entries = scratch;
        m->as.append.from_storage = false;
    }
    if (m->type == YGGR_MSG_SNAPSHOT_REQUEST && m->as.snapshot.data == NULL &&
        m->as.snapshot.len > 0) {
        const struct ssnap *s = &w->snap;
        const struct yggr_msg_snapshot_request *r = &m->as.snapshot;
        if (!s->present || s->meta.last.index != r->last.index ||
            s->meta.last.term != r->last.term || r->offset + r->len > s->meta.size) {
            return false;
        }
        m->as.snapshot.buf = s->bytes;
        m->as.snapshot.data = s->bytes->data + r->offset;
    }
    return true;
}

/* `shortread`: the host's snapshot read returned a prefix. engine.h allows sending it with
 * len reduced and done cleared; the follower's offsets then stop being multiples of the
 * chunk size, and a rewound stream overlaps what it holds. */
static void short_read(struct sim *sim, struct yggr_msg *m)
{
    struct yggr_msg_snapshot_request *r = &m->as.snapshot;
    if (m->type != YGGR_MSG_SNAPSHOT_REQUEST || r->len < 2 || sim->healed ||
        !(sim->opt.features & SIM_F_SHORTREAD) || !rng_chance(&sim->rng, 1, 4)) {
        return;
    }
    r->len = (uint32_t)rng_range(&sim->rng, 1, r->len - 1);
    r->done = false;
}

static void do_send(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    static struct yggr_entry scratch[4096];
    for (uint32_t i = 0; i < a->send.count && !sim->check.failed; i++) {
        struct yggr_msg m = a->send.msgs[i];
        if (m.from != n->id || m.to == n->id || m.to == 0) {
            sim_violate(sim, "send: n%llu emitted a message from n%llu to n%llu", U(n->id),
                        U(m.from), U(m.to));
            return;
        }
        if (!send_durable(sim, n, &m)) {
            return;
        }
        if (!send_fill(n, &m, scratch, (uint32_t)(sizeof(scratch) / sizeof(scratch[0])))) {
            trace_msg(&sim->trace, sim->now_step, TR_LOST, n->id, &m, 4);
            continue;
        }
        short_read(sim, &m);
        trace_msg(&sim->trace, sim->now_step, TR_SEND, n->id, &m, 0);
        net_send(&sim->net, &m, sim->now_step);
    }
}

/* ---- 5. apply ----------------------------------------------------------------------- */

static void reads_serve(struct sim *sim, struct sim_node *n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->read_count; i++) {
        struct read_req *r = &n->reads[i];
        if (r->ready && r->index <= n->sm.applied) {
            if (!check_read_serve(&sim->check, n->id, r->id, r->bound, n->sm.applied,
                                  n->sm.hash)) {
                sim_violate(sim, "%s", sim->check.why);
            }
            sim->stats.reads++;
            continue;
        }
        n->reads[k++] = *r;
    }
    n->read_count = k;
}

static void do_apply_snapshot(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    const struct yggr_snapshot_meta *meta = &a->apply_snapshot;
    const struct ssnap *d = &n->store.durable.snap;
    if (!d->present || d->meta.last.index != meta->last.index ||
        d->meta.last.term != meta->last.term) {
        sim_violate(sim, "apply snapshot: n%llu restores (%llu,%llu) which is not its durable "
                    "snapshot", U(n->id), U(meta->last.index), U(meta->last.term));
        return;
    }
    if (!sm_restore(&n->sm, d->bytes->data, d->meta.size)) {
        sim_violate(sim, "apply snapshot: n%llu snapshot (%llu,%llu) bytes are corrupt",
                    U(n->id), U(meta->last.index), U(meta->last.term));
        return;
    }
    if (n->sm.applied != meta->last.index || n->sm.applied_term != meta->last.term) {
        sim_violate(sim, "apply snapshot: n%llu bytes say (%llu,%llu), meta (%llu,%llu)",
                    U(n->id), U(n->sm.applied), U(n->sm.applied_term), U(meta->last.index),
                    U(meta->last.term));
        return;
    }
    note(sim, TR_INSTALL, n, meta->last.index, meta->last.term, meta->size, 2);
    if (!check_restore(&sim->check, n->id, n->sm.applied, n->sm.hash)) {
        sim_violate(sim, "%s", sim->check.why);
    }
    sim->stats.installs++;
}

static void acknowledge(struct sim *sim, struct sim_node *n, const struct yggr_entry *e,
                        uint64_t digest)
{
    while (n->prop_count > 0 && n->props[0].index <= e->index) {
        struct proposal p = n->props[0];
        memmove(n->props, n->props + 1, (n->prop_count - 1) * sizeof(n->props[0]));
        n->prop_count--;
        if (p.index == e->index && p.term == e->term && p.digest == digest) {
            note(sim, TR_ACK, n, e->index, e->term, 0, 0);
            sim->stats.acked++;
            if (!check_ack(&sim->check, n->id, e->index, e->term, digest, sim->now_step)) {
                sim_violate(sim, "%s", sim->check.why);
            }
        }
    }
}

/* The i-th entry of an APPLY action; from_storage ones come from the log on disk. */
static const struct yggr_entry *apply_entry(struct sim *sim, struct sim_node *n,
                                            const struct yggr_actions *a, uint32_t i)
{
    if (!a->apply.from_storage) {
        return &a->apply.entries[i];
    }
    const struct yggr_entry *e = slog_at(&n->store.durable.log, a->apply.first_index + i);
    if (e == NULL) {
        sim_violate(sim, "apply: n%llu must apply index %llu from storage but its durable log "
                    "is [%llu,%llu]", U(n->id), U(a->apply.first_index + i),
                    U(n->store.durable.log.first), U(slog_last(&n->store.durable.log)));
    }
    return e;
}

static void do_apply(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    uint32_t count = a->apply.count;
    uint64_t first = 0;
    uint64_t last = 0;
    for (uint32_t i = 0; i < count && !sim->check.failed; i++) {
        const struct yggr_entry *e = apply_entry(sim, n, a, i);
        if (e == NULL) {
            return;
        }
        first = i == 0 ? e->index : first;
        last = e->index;
        if (e->index != n->sm.applied + 1 || e->index > n->commit ||
            e->term < n->sm.applied_term || (e->len > 0 && e->data == NULL)) {
            sim_violate(sim, "apply: n%llu applies (%llu,%llu) after (%llu,%llu) with commit "
                        "%llu", U(n->id), U(e->index), U(e->term), U(n->sm.applied),
                        U(n->sm.applied_term), U(n->commit));
            return;
        }
        sm_apply(&n->sm, e);
        uint64_t digest = rng_entry_digest(e);
        if (!check_apply(&sim->check, n->id, e->index, e->term, digest, n->sm.hash)) {
            sim_violate(sim, "%s", sim->check.why);
            return;
        }
        if (e->type == YGGR_ENTRY_CONFIG && n->role == YGGR_ROLE_LEADER) {
            sim->stats.changes++;
        }
        acknowledge(sim, n, e, digest);
    }
    if (count > 0) {
        note(sim, TR_APPLY, n, first, last, a->apply.from_storage, 0);
    }
}

/* ---- 6. reads ----------------------------------------------------------------------- */

static void do_reads(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    for (uint32_t i = 0; i < a->reads.count; i++) {
        const struct yggr_read_result *r = &a->reads.results[i];
        note(sim, TR_READ_DONE, n, r->id, (uint64_t)r->status, r->index, 0);
        for (uint32_t k = 0; k < n->read_count; k++) {
            struct read_req *q = &n->reads[k];
            if (q->id != r->id) {
                continue;
            }
            if (r->status == YGGR_READ_READY) {
                if (!check_read_ready(&sim->check, n->id, q->id, q->bound, r->index)) {
                    sim_violate(sim, "%s", sim->check.why);
                }
                q->index = r->index;
                q->ready = true;
            } else {
                n->reads[k] = n->reads[--n->read_count];
            }
            break;
        }
    }
}

/* ---- 7. summary --------------------------------------------------------------------- */

static void do_summary(struct sim *sim, struct sim_node *n, const struct yggr_actions *a)
{
    if (a->term < n->term) {
        sim_violate(sim, "n%llu term went back from %llu to %llu", U(n->id), U(n->term),
                    U(a->term));
        return;
    }
    if (a->applied_index != n->sm.applied || a->applied_index > a->commit_index) {
        sim_violate(sim, "n%llu reports applied %llu (commit %llu) but handed out %llu",
                    U(n->id), U(a->applied_index), U(a->commit_index), U(n->sm.applied));
        return;
    }
    /* While an installed snapshot is being written, the disk already applied the log
     * rule of SNAPSHOT_CHUNK but the engine applies it at SNAPSHOT_PERSISTED. */
    uint64_t host_last = slog_last(&n->store.written.log);
    const struct ssnap *ws = &n->store.written.snap;
    if (ws->present && ws->meta.last.index > host_last) {
        host_last = ws->meta.last.index; /* a log wholly below the snapshot is garbage */
    }
    if (a->last_index != host_last && !store_snapshot_pending(&n->store)) {
        sim_violate(sim, "n%llu reports last index %llu but its log ends at %llu", U(n->id),
                    U(a->last_index), U(host_last));
        return;
    }
    const struct ssnap *snap = &n->store.written.snap;
    const struct ssnap *durable = &n->store.durable.snap;
    if (durable->present && durable->meta.last.index > a->commit_index) {
        sim_violate(sim, "n%llu snapshot floor %llu above its commit %llu", U(n->id),
                    U(durable->meta.last.index), U(a->commit_index));
        return;
    }
    bool new_leader = a->role == YGGR_ROLE_LEADER &&
                      (n->role != YGGR_ROLE_LEADER || n->term != a->term);
    if (a->role != n->role || a->term != n->term || a->leader_id != n->leader) {
        sim_note(sim, TR_ROLE, n->id, 0, (uint64_t)a->role, a->term, a->leader_id, 0);
    }
    n->role = a->role;
    n->term = a->term;
    n->leader = a->leader_id;
    n->last_index = a->last_index;
    n->applied = a->applied_index;
    if (new_leader) {
        if (!check_leader(&sim->check, a->term, n->id) ||
            !check_leader_log(&sim->check, n->id, a->term, &n->store.written.log, snap)) {
            sim_violate(sim, "%s", sim->check.why);
        }
    }
}

/* Bounded leadership checks (in the node's own ticks; the limits are three maximum
 * election timeouts): a transfer completes or gives up, and with check-quorum a leader
 * that hears nobody steps down (REFERENCE 8.2 #16, #19). */
static void check_leader_liveness(struct sim *sim, struct sim_node *n,
                                  const struct yggr_actions *a)
{
    uint64_t limit = 3ull * n->cfg.election_timeout_max_ticks;
    if (a->role != YGGR_ROLE_LEADER || !a->transferring) {
        n->transfer_clock = 0;
    } else if (n->transfer_clock == 0) {
        n->transfer_clock = n->clock + 1;
    } else if (n->clock + 1 - n->transfer_clock > limit) {
        sim_violate(sim, "transfer: leader n%llu has refused proposals for a transfer for "
                    "%llu ticks", U(n->id), U(n->clock + 1 - n->transfer_clock));
        return;
    }
    if (a->role != YGGR_ROLE_LEADER || !n->cfg.check_quorum) {
        return;
    }
    struct yggr_membership m;
    yggr_engine_config_latest(n->engine, &m);
    if (m.voter_count <= 1) {
        n->heard_clock = n->clock; /* a single voter needs nobody: the silence starts later */
    } else if (n->clock > n->heard_clock + limit) {
        sim_violate(sim, "check-quorum: n%llu still leads after %llu ticks without hearing "
                    "from anyone", U(n->id), U(n->clock - n->heard_clock));
    }
}

static void engine_check(struct sim *sim, struct sim_node *n)
{
    char why[256];
    if (yggr_engine_check(n->engine, why, sizeof(why)) != 0) {
        sim_violate(sim, "engine check: n%llu: %s", U(n->id), why);
    }
}

void node_step(struct sim *sim, struct sim_node *n, const struct yggr_event *ev)
{
    YGGR_ASSERT(n->alive);
    YGGR_ASSERT(n->engine != NULL);
    struct yggr_actions *a = &sim->actions;
    yggr_engine_step(n->engine, ev, a);
    if (sim->check.failed) {
        return;
    }
    if (a->flags & YGGR_ACT_HARD_STATE) {
        do_hard_state(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_SNAPSHOT_CHUNK) && !sim->check.failed) {
        do_chunk(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_APPEND) && !sim->check.failed) {
        do_append(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_COMPACT) && !sim->check.failed) {
        do_compact(sim, n, a);
    }
    if (!sim->check.failed) {
        do_commit(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_SEND) && !sim->check.failed) {
        do_send(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_APPLY_SNAPSHOT) && !sim->check.failed) {
        do_apply_snapshot(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_APPLY) && !sim->check.failed) {
        do_apply(sim, n, a);
    }
    if ((a->flags & YGGR_ACT_READS) && !sim->check.failed) {
        do_reads(sim, n, a);
    }
    if (a->flags & YGGR_ACT_SNAPSHOT_HINT) {
        n->hinted = true; /* taken by the scheduler's next SNAPSHOT action */
    }
    if (!sim->check.failed) {
        reads_serve(sim, n);
        do_summary(sim, n, a);
    }
    if (ev->type == YGGR_EVENT_RECEIVE || n->role != YGGR_ROLE_LEADER) {
        n->heard_clock = n->clock;
    }
    if (!sim->check.failed) {
        check_leader_liveness(sim, n, a);
    }
    if (!sim->check.failed) {
        engine_check(sim, n);
    }
}

/* ---- lifecycle ---------------------------------------------------------------------- */

/* Engine options for a node, drawn once (the node keeps them across restarts). Small
 * caches and windows on purpose: they force from_storage reads, flow control and
 * multi-chunk snapshots in short runs. */
static void configure(struct sim *sim, struct sim_node *n)
{
    struct sim_rng *rng = &sim->rng;
    struct yggr_engine_config *c = &n->cfg;
    yggr_engine_config_init(c, n->id);
    c->election_timeout_min_ticks = 10;
    c->election_timeout_max_ticks = 20;
    c->heartbeat_interval_ticks = 3;
    c->pre_vote = sim->pre_vote;
    c->check_quorum = sim->check_quorum;
    c->lease_duration_ticks = 0;
    if (sim->opt.features & SIM_F_LEASE) {
        /* Safe under the model's bounded clock drift (see sched.c). */
        uint32_t by_skew = c->election_timeout_min_ticks - 1 - (uint32_t)sim->clock_skew;
        uint32_t by_engine = c->election_timeout_min_ticks - c->heartbeat_interval_ticks - 1;
        c->lease_duration_ticks = by_skew < by_engine ? by_skew : by_engine;
    }
    if (sim->opt.fixed_config) {
        /* Scripted tests: one entry per AppendEntries, no flow-control surprises, and
         * long election timeouts so that only the node a test ticks on purpose
         * campaigns (cluster_elect ticks the others past leader stickiness first). */
        c->election_timeout_max_ticks = 1000;
        c->max_append_entries = 1;
        c->max_inflight_msgs = 64;
        c->log_cache_entries = 256;
        c->max_term_runs = 1024;
        c->max_pending_reads = 16;
        c->max_step_entries = 1024;
        c->snapshot_chunk_bytes = 64;
        c->snapshot_chunks_inflight = 1;
        c->snapshot_trailing_entries = 0;
        c->reference_wire = false;
        n->disk_latency = 0;
        n->clock_rate = 1;
        return;
    }
    c->max_append_entries = (uint32_t)rng_range(rng, 1, 16);
    c->max_append_bytes = (uint32_t)rng_range(rng, 64, 4096);
    c->max_inflight_msgs = (uint32_t)rng_range(rng, 1, 8);
    c->log_cache_entries = 1u << rng_range(rng, 4, 8);
    c->max_term_runs = 1024;
    c->max_pending_reads = 16;
    c->max_step_entries = 1024;
    c->snapshot_chunk_bytes = (uint32_t)rng_range(rng, 16, 256);
    c->snapshot_chunks_inflight = (uint32_t)rng_range(rng, 1, 4);
    c->snapshot_threshold_entries = 0;
    c->max_log_entries = 0;
    if (sim->opt.features & SIM_F_SNAPSHOT) {
        /* Half the nodes ask for snapshots themselves (SNAPSHOT_HINT); the host obeys. */
        c->snapshot_threshold_entries = rng_chance(rng, 1, 2) ? rng_range(rng, 8, 64) : 0;
    }
    c->snapshot_trailing_entries = rng_range(rng, 0, 4);
    c->reference_wire = (sim->opt.features & SIM_F_REFWIRE) && rng_chance(rng, 1, 3);
    n->clock_rate = 1;
    if ((sim->opt.features & SIM_F_DRIFT) || sim->opt.clock_skew != 0) {
        n->clock_rate = (uint32_t)rng_range(rng, 1, 4); /* up to 4x faster clocks */
    }
    n->disk_latency = 0;
    if (sim->opt.features & SIM_F_SLOWDISK) {
        /* Most disks are fast; some are slow, one in four very slow. */
        n->disk_latency = rng_chance(rng, 1, 2) ? 0 : rng_range(rng, 1, 40);
    }
}

static struct yggr_term_run *term_runs(const struct slog *log, uint32_t *count)
{
    struct yggr_term_run *runs = malloc(((size_t)log->count + 1) * sizeof(runs[0]));
    YGGR_ASSERT(runs != NULL);
    uint32_t k = 0;
    for (uint32_t i = 0; i < log->count; i++) {
        if (k == 0 || runs[k - 1].term != log->e[i].term) {
            runs[k++] = (struct yggr_term_run){log->e[i].term, log->e[i].index};
        }
    }
    *count = k;
    return runs;
}

static struct yggr_entry *config_entries(const struct sview *d, uint32_t *count)
{
    struct yggr_entry *out = malloc(((size_t)d->log.count + 1) * sizeof(out[0]));
    YGGR_ASSERT(out != NULL);
    uint64_t floor = d->snap.present ? d->snap.meta.last.index : 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < d->log.count; i++) {
        if (d->log.e[i].type == YGGR_ENTRY_CONFIG && d->log.e[i].index > floor) {
            out[k++] = d->log.e[i];
        }
    }
    *count = k;
    return out;
}

/* Rebuild the volatile host state of a node from its durable view. */
static bool restore_host(struct sim *sim, struct sim_node *n)
{
    const struct sview *d = &n->store.durable;
    /* The configuration is replayed from the log (the bootstrap CONFIG entries at term
     * 0 come first) or restored from the snapshot: the state machine starts empty. */
    sm_init(&n->sm, NULL);
    if (d->snap.present) {
        if (!sm_restore(&n->sm, d->snap.bytes->data, d->snap.meta.size)) {
            return sim_violate(sim, "restart: n%llu durable snapshot is corrupt", U(n->id));
        }
        if (!check_restore(&sim->check, n->id, n->sm.applied, n->sm.hash)) {
            return sim_violate(sim, "%s", sim->check.why);
        }
    }
    n->role = YGGR_ROLE_FOLLOWER;
    n->term = d->term;
    n->leader = 0;
    n->commit = 0;
    n->applied = n->sm.applied;
    n->last_index = slog_last(&d->log);
    n->prop_count = 0;
    n->read_count = 0;
    n->config_count = 0;
    for (uint32_t i = 0; i < d->log.count; i++) {
        if (d->log.e[i].type == YGGR_ENTRY_CONFIG) {
            configs_add(n, d->log.e[i].index);
        }
    }
    n->clock = sim->clock;
    n->heard_clock = n->clock;
    n->transfer_clock = 0;
    return true;
}

static void recover(struct sim *sim, struct sim_node *n)
{
    const struct sview *d = &n->store.durable;
    struct yggr_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = YGGR_EVENT_RECOVER;
    struct yggr_recovered *r = &ev.as.recover;
    r->term = d->term;
    r->vote = d->vote;
    r->has_snapshot = d->snap.present;
    if (d->snap.present) {
        r->snapshot = d->snap.meta;
    }
    if (n->founder) {
        r->base_config = sim->founders; /* bootstrap entries; ignored once logged */
    }
    r->first_index = d->log.first;
    r->last_index = slog_last(&d->log);
    struct yggr_term_run *runs = term_runs(&d->log, &r->term_count);
    struct yggr_entry *configs = config_entries(d, &r->config_count);
    r->terms = runs;
    r->configs = configs;
    uint32_t tail = (uint32_t)rng_range(&sim->rng, 0, d->log.count);
    if (tail > n->cfg.log_cache_entries) {
        tail = n->cfg.log_cache_entries;
    }
    r->tail = d->log.e + (d->log.count - tail);
    r->tail_count = tail;
    struct trace_rec rec = {.step = sim->now_step, .kind = TR_RESTART, .node = (uint8_t)n->id};
    rec.a[0] = d->term;
    rec.a[1] = d->vote;
    rec.a[2] = d->log.first;
    rec.a[3] = slog_last(&d->log);
    rec.a[4] = d->snap.present ? d->snap.meta.last.index : 0;
    trace_add(&sim->trace, &rec);
    node_step(sim, n, &ev);
    free(runs);
    free(configs);
}

void node_start(struct sim *sim, uint64_t id)
{
    YGGR_ASSERT(id >= 1 && id <= sim->id_count);
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(!n->alive);
    if (!n->exists) {
        store_init(&n->store);
        n->exists = true;
        n->founder = id <= sim->opt.node_count;
        configure(sim, n);
    }
    n->cfg.seed = rng_next(&sim->rng);
    char why[256];
    if (yggr_engine_config_validate(&n->cfg, why, sizeof(why)) != 0) {
        sim_violate(sim, "sim: engine rejected the config of n%llu: %s", U(id), why);
        return;
    }
    if (yggr_engine_create(&n->cfg, &n->engine) != 0) {
        sim_violate(sim, "sim: yggr_engine_create failed for n%llu", U(id));
        return;
    }
    n->starts++;
    if (n->starts > 1) {
        sim->stats.restarts++;
    }
    n->alive = true;
    if (restore_host(sim, n)) {
        recover(sim, n);
    }
}

void node_crash(struct sim *sim, uint64_t id, uint32_t survive, uint32_t torn_entries)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    uint32_t pending = n->store.op_count;
    YGGR_ASSERT(survive <= pending);
    yggr_engine_destroy(n->engine);
    n->engine = NULL;
    n->alive = false;
    uint32_t torn = store_crash(&n->store, survive, torn_entries);
    sim->stats.crashes++;
    if (torn != 0) {
        sim->stats.torn++;
    }
    n->prop_count = 0;
    n->read_count = 0;
    n->role = YGGR_ROLE_FOLLOWER;
    sim_note(sim, TR_CRASH, id, 0, pending, survive, torn, 0);
}

struct flush_ctx {
    struct sim *sim;
    struct sim_node *n;
};

static void flushed(void *arg, const struct pop *op)
{
    struct flush_ctx *ctx = arg;
    struct sim_node *n = ctx->n;
    struct yggr_event ev;
    memset(&ev, 0, sizeof(ev));
    switch (op->kind) {
    case POP_HARD:
        ev.type = YGGR_EVENT_HARD_STATE_PERSISTED;
        ev.as.hard_state_persisted.term = op->term;
        ev.as.hard_state_persisted.vote = op->vote;
        break;
    case POP_APPEND: {
        ev.type = YGGR_EVENT_LOG_PERSISTED;
        if (op->count > 0) {
            ev.as.log_persisted.index = op->entries[op->count - 1].index;
            ev.as.log_persisted.term = op->entries[op->count - 1].term;
            break;
        }
        /* A pure truncation: the durable log now ends just below it. */
        uint64_t index = op->truncate_from - 1;
        const struct sview *d = &n->store.durable;
        const struct yggr_entry *e = slog_at(&d->log, index);
        if (index == 0 || e == NULL) {
            return;
        }
        ev.as.log_persisted.index = index;
        ev.as.log_persisted.term = e->term;
        break;
    }
    case POP_SNAPSHOT:
        ev.type = YGGR_EVENT_SNAPSHOT_PERSISTED;
        ev.as.snapshot_persisted = op->snap.meta.last;
        break;
    case POP_COMPACT:
        return;
    }
    if (n->alive && !ctx->sim->check.failed) {
        node_step(ctx->sim, n, &ev);
    }
}

void node_flush(struct sim *sim, uint64_t id, uint32_t count)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    YGGR_ASSERT(count <= n->store.op_count);
    sim_note(sim, TR_FLUSH, id, 0, count, n->store.op_count - count, 0, 0);
    struct flush_ctx ctx = {sim, n};
    store_flush(&n->store, count, flushed, &ctx);
}

void node_destroy(struct sim_node *n)
{
    if (n->engine != NULL) {
        yggr_engine_destroy(n->engine);
        n->engine = NULL;
    }
    if (n->exists) {
        store_deinit(&n->store);
    }
    free(n->props);
    n->props = NULL;
    n->alive = false;
    n->exists = false;
}
