/* SPDX-License-Identifier: MIT */
/* Cluster membership: the configuration history, peer tracking and single-server changes. */
/*
 * Design notes
 *
 * A configuration is the FULL membership (every voter and learner, this node included;
 * REFERENCE 8.1 #1 and #8). This node is a voter iff it is in `voters`.
 *
 * "The new configuration takes effect on each server as soon as it is added to that
 * server's log" (Raft thesis 4.1). So the engine keeps
 *   - `base`: the configuration in effect from `base_index` on (EMPTY at 0, or the
 *     snapshot's config at its index),
 *   - `hist`: every CONFIG entry above base_index, ascending, with the configuration that
 *     results from it.
 * latest = the last hist entry (or base); config_at(i) = the last entry <= i; the
 * committed configuration is config_at(commit). Truncating the log drops hist entries at
 * or above the truncation point, so a reverted entry restores the exact previous
 * configuration (REFERENCE 8.1 #2, 8.3 #30: nothing is ever recomputed by scanning the
 * log). Compaction folds entries <= the snapshot index into base. When hist is full its
 * oldest entry is folded: every CONFIG entry in a log except the last one is committed
 * cluster-wide (a leader appends a change only once the previous one committed), so a
 * folded entry can never be truncated.
 *
 * Bootstrap (etcd-style, sim F1): the founders' configuration is log entries 1..k of term 0
 * (config_bootstrap: ADD_VOTER per voter, then ADD_LEARNER per learner, ascending), written
 * by every founder at its first RECOVER and committed by definition. So any node, a joiner
 * included, rebuilds the configuration from its log alone, and replaying the entries from
 * an empty configuration is idempotent.
 *
 * Changes (Raft thesis 4.1, one server at a time) are refused while another change is
 * uncommitted and until the leader committed an entry of its own term (the single-server
 * change bug, REFERENCE 8.1 #6). A leader that removes itself stops counting itself as
 * soon as the entry is in its log and steps down once it commits (thesis 4.2.2, 8.1 #7).
 *
 * The address a CONFIG entry carries lives in a small engine-owned pool of buffers
 * (config changes are rare); a slot returns to the pool when its last reference drops,
 * from whichever thread that happens on (atomic flag, no lock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

void config_reset(struct config *c, const struct yggr_membership *base, uint64_t base_index)
{
    YGGR_ASSERT(base != NULL);
    YGGR_ASSERT(base->voter_count <= YGGR_MAX_MEMBERS);
    c->base = *base;
    c->base_index = base_index;
    c->count = 0;
}

const struct yggr_membership *config_latest(const struct config *c)
{
    return c->count > 0 ? &c->hist[c->count - 1].m : &c->base;
}

uint64_t config_latest_index(const struct config *c)
{
    return c->count > 0 ? c->hist[c->count - 1].index : c->base_index;
}

const struct yggr_membership *config_at(const struct config *c, uint64_t index)
{
    if (index < c->base_index) {
        return NULL;
    }
    for (uint32_t k = c->count; k > 0; k--) {
        if (c->hist[k - 1].index <= index) {
            return &c->hist[k - 1].m;
        }
    }
    return &c->base;
}

static void fold_oldest(struct config *c)
{
    YGGR_ASSERT(c->count > 0);
    c->base = c->hist[0].m;
    c->base_index = c->hist[0].index;
    memmove(&c->hist[0], &c->hist[1], (c->count - 1) * sizeof(c->hist[0]));
    c->count--;
}

void config_push(struct config *c, uint64_t index, enum yggr_change_type type, uint64_t node)
{
    YGGR_ASSERT(index > config_latest_index(c));
    YGGR_ASSERT(node != 0);
    struct yggr_membership m = *config_latest(c);
    (void)yggr_membership_apply(&m, type, node);
    if (c->count == CONFIG_HISTORY) {
        fold_oldest(c);
    }
    c->hist[c->count].index = index;
    c->hist[c->count].m = m;
    c->count++;
}

void config_truncate(struct config *c, uint64_t from)
{
    YGGR_ASSERT(from > c->base_index);
    while (c->count > 0 && c->hist[c->count - 1].index >= from) {
        c->count--;
    }
    YGGR_ASSERT(config_latest_index(c) < from);
}

void config_compact(struct config *c, uint64_t upto)
{
    while (c->count > 0 && c->hist[0].index <= upto) {
        fold_oldest(c);
    }
    if (upto > c->base_index) {
        c->base_index = upto;
    }
    YGGR_ASSERT(c->count == 0 || c->hist[0].index > c->base_index);
}


int config_check(const struct config *c, char *why, size_t n)
{
    if (!yggr_membership_valid(&c->base)) {
        snprintf(why, n, "config: base not sorted, unique and disjoint");
        return -1;
    }
    for (uint32_t k = 0; k < c->count; k++) {
        uint64_t prev = k == 0 ? c->base_index : c->hist[k - 1].index;
        if (c->hist[k].index <= prev || !yggr_membership_valid(&c->hist[k].m)) {
            snprintf(why, n, "config: history entry %u invalid (index %llu)", k,
                     (unsigned long long)c->hist[k].index);
            return -1;
        }
    }
    return 0;
}

/* The i-th bootstrap entry of `m` (i < voters + learners): ADD_VOTER for every voter, then
 * ADD_LEARNER for every learner, ascending ids, term 0, no address. */
static void bootstrap_entry(const struct yggr_membership *m, uint32_t i, struct yggr_entry *out)
{
    YGGR_ASSERT(i < m->voter_count + m->learner_count);
    memset(out, 0, sizeof(*out));
    out->index = (uint64_t)i + 1;
    out->term = 0;
    out->type = YGGR_ENTRY_CONFIG;
    if (i < m->voter_count) {
        out->change = YGGR_CHANGE_ADD_VOTER;
        out->node = m->voters[i];
    } else {
        out->change = YGGR_CHANGE_ADD_LEARNER;
        out->node = m->learners[i - m->voter_count];
    }
    YGGR_ASSERT(out->node != 0);
}

void config_bootstrap_entries(const struct yggr_membership *base, uint64_t from, uint64_t to,
                              struct yggr_entry *dst)
{
    YGGR_ASSERT(from >= 1 && to <= base->voter_count + base->learner_count);
    for (uint64_t i = from; i <= to; i++) {
        bootstrap_entry(base, (uint32_t)(i - 1), &dst[i - from]);
    }
    YGGR_ASSERT(from > to || dst[to - from].index == to);
}

void config_bootstrap(struct yggr_engine *e, const struct yggr_membership *base,
                      const struct yggr_entry *configs, uint32_t config_count)
{
    uint32_t k = base->voter_count + base->learner_count;
    uint64_t have = e->log.last;
    if (k == 0 || have >= k || (have > 0 && log_last_term(&e->log) != 0)) {
        return; /* a joiner, or the log already holds the bootstrap entries: the log wins */
    }
    YGGR_ASSERT(yggr_membership_valid(base));
    /* A torn bootstrap write left a prefix: it must be the prefix of these very entries
     * (every founder must be given the same base_config). A snapshot of term 0 (sim F13)
     * holds the first `floor` of them; the stored ones above it are in `configs` (which may
     * also list some at or below the floor). */
    uint64_t floor = e->log.snap.index;
    YGGR_ASSERT(e->log.snap.term == 0 && floor <= have);
    uint32_t skip = 0;
    while (skip < config_count && configs[skip].index <= floor) {
        skip++;
    }
    YGGR_ASSERT(config_count - skip >= have - floor);
    struct yggr_entry en;
    for (uint32_t i = (uint32_t)floor; i < have; i++) {
        bootstrap_entry(base, i, &en);
        const struct yggr_entry *c = &configs[skip + i - floor];
        YGGR_ASSERT(c->index == en.index && c->node == en.node);
        YGGR_ASSERT(c->change == en.change);
    }
    /* The entries are appended before anything is durable or applied: they must fit. */
    YGGR_ASSERT(k <= e->log.ring_mask + 1 && k <= e->step_cap);
    for (uint32_t i = (uint32_t)have; i < k; i++) {
        bootstrap_entry(base, i, &en);
        bool ok = replication_append_entry(e, &en, 0);
        YGGR_ASSERT(ok);
    }
    YGGR_ASSERT(e->log.last == k);
    YGGR_ASSERT(yggr_membership_equal(config_latest(&e->conf), base));
}

bool config_self_voter(const struct yggr_engine *e)
{
    return yggr_membership_is_voter(config_latest(&e->conf), e->id);
}

bool config_is_voter(const struct yggr_engine *e, uint64_t id)
{
    return yggr_membership_is_voter(config_latest(&e->conf), id);
}

bool config_is_member(const struct yggr_engine *e, uint64_t id)
{
    const struct yggr_membership *m = config_latest(&e->conf);
    return yggr_membership_is_voter(m, id) || yggr_membership_is_learner(m, id);
}

bool config_committed_member(const struct yggr_engine *e, uint64_t id)
{
    const struct yggr_membership *m = config_at(&e->conf, e->commit);
    if (m == NULL) {
        m = &e->conf.base;
    }
    return yggr_membership_is_voter(m, id) || yggr_membership_is_learner(m, id);
}

uint32_t config_voter_count(const struct yggr_engine *e)
{
    return config_latest(&e->conf)->voter_count;
}

static void track(struct yggr_engine *e, uint64_t id, bool voter)
{
    struct progress *p = engine_peer(e, id);
    if (p == NULL) {
        for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
            if (e->peers[s].id == 0) {
                p = &e->peers[s];
                break;
            }
        }
        YGGR_ASSERT(p != NULL);
        p->id = id;
        p->vote_granted = false;
        /* A newly added peer starts probing at the entry that added it, and counts as
         * recently active until the next check-quorum (as etcd): a leader whose quorum
         * needs it must not step down before it had a whole period to answer (sim F9). */
        progress_reset(p, e->log.last > 0 ? e->log.last : 1, e->tick);
        p->recent_active = true;
    }
    p->voter = voter;
}

/* Make the peer slots match the latest configuration (every member but self). */
void config_sync_peers(struct yggr_engine *e)
{
    const struct yggr_membership *m = config_latest(&e->conf);
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        struct progress *p = &e->peers[s];
        if (p->id != 0 && !yggr_membership_is_voter(m, p->id) &&
            !yggr_membership_is_learner(m, p->id)) {
            if (e->transfer_target == p->id) {
                transfer_end(e, false);
            }
            p->id = 0;
        }
    }
    for (uint32_t i = 0; i < m->voter_count; i++) {
        if (m->voters[i] != e->id) {
            track(e, m->voters[i], true);
        }
    }
    for (uint32_t i = 0; i < m->learner_count; i++) {
        if (m->learners[i] != e->id) {
            track(e, m->learners[i], false);
        }
    }
}

void config_on_append(struct yggr_engine *e, const struct yggr_entry *entry)
{
    YGGR_ASSERT(entry->type == YGGR_ENTRY_CONFIG);
    YGGR_ASSERT(entry->index == e->log.last);
    config_push(&e->conf, entry->index, (enum yggr_change_type)entry->change, entry->node);
    e->removed = false;
    config_sync_peers(e);
}

void config_on_truncate(struct yggr_engine *e, uint64_t from)
{
    if (config_latest_index(&e->conf) >= from) {
        config_truncate(&e->conf, from);
        config_sync_peers(e);
    }
}

/* A leader whose removal committed steps down (it is no longer a voter: never campaigns). */
void config_on_commit(struct yggr_engine *e)
{
    if (e->role != YGGR_ROLE_LEADER) {
        return;
    }
    const struct yggr_membership *c = config_at(&e->conf, e->commit);
    if (c != NULL && !yggr_membership_is_voter(c, e->id) && !config_self_voter(e)) {
        election_become_follower(e, e->term);
        YGGR_ASSERT(e->role == YGGR_ROLE_FOLLOWER);
    }
}

static int validate_change(const struct yggr_membership *m, enum yggr_change_type type,
                           uint64_t node)
{
    bool voter = yggr_membership_is_voter(m, node);
    bool learner = yggr_membership_is_learner(m, node);
    bool full = m->voter_count + m->learner_count >= YGGR_MAX_MEMBERS;
    if (node == 0) {
        return YGGR_ERR_INVALID;
    }
    switch (type) {
    case YGGR_CHANGE_ADD_VOTER:
        if (voter) {
            return YGGR_ERR_ALREADY_VOTER;
        }
        return !learner && full ? YGGR_ERR_BUSY : 0;
    case YGGR_CHANGE_REMOVE_VOTER:
        if (!voter && !learner) {
            return YGGR_ERR_UNKNOWN_NODE;
        }
        return voter && m->voter_count == 1 ? YGGR_ERR_INVALID : 0;
    case YGGR_CHANGE_ADD_LEARNER:
        if (voter || learner) {
            return YGGR_ERR_ALREADY_LEARNER;
        }
        return full ? YGGR_ERR_BUSY : 0;
    case YGGR_CHANGE_PROMOTE_LEARNER:
        return learner ? 0 : YGGR_ERR_NOT_LEARNER;
    }
    return YGGR_ERR_INVALID; /* not a change type: host misuse, reported */
}

static void pool_return(struct yggr_buf *buf)
{
    struct addr_slot *slot = buf->owner;
    /* Release: the slot's bytes are no longer read once in_use is seen false. */
    atomic_store_explicit(&slot->in_use, false, memory_order_release);
}

static struct yggr_buf *pool_take(struct yggr_engine *e, const uint8_t *addr, uint32_t len)
{
    for (uint32_t k = 0; k < ADDR_POOL; k++) {
        struct addr_slot *s = &e->addr_pool[k];
        /* Acquire pairs with pool_return's release: the last user is done with it. */
        if (!atomic_load_explicit(&s->in_use, memory_order_acquire)) {
            atomic_store_explicit(&s->in_use, true, memory_order_relaxed);
            atomic_store_explicit(&s->buf.refs, 1, memory_order_relaxed);
            memcpy(s->data, addr, len);
            return &s->buf;
        }
    }
    return NULL;
}

int config_pool_init(struct yggr_engine *e)
{
    e->addr_pool = calloc(ADDR_POOL, sizeof(*e->addr_pool));
    if (e->addr_pool == NULL) {
        return YGGR_ERR_NOMEM;
    }
    for (uint32_t k = 0; k < ADDR_POOL; k++) {
        struct addr_slot *s = &e->addr_pool[k];
        atomic_init(&s->buf.refs, 0);
        atomic_init(&s->in_use, false);
        s->buf.size = ADDR_BYTES;
        s->buf.free_fn = pool_return;
        s->buf.owner = s;
        s->buf.data = s->data;
    }
    return 0;
}

void config_pool_deinit(struct yggr_engine *e)
{
    free(e->addr_pool);
    e->addr_pool = NULL;
}

static int change_precheck(const struct yggr_engine *e)
{
    if (e->transfer_target != 0) {
        return YGGR_ERR_TRANSFER_IN_PROGRESS;
    }
    if (config_latest_index(&e->conf) > e->commit) {
        return YGGR_ERR_CHANGE_IN_PROGRESS;
    }
    if (log_term_at(&e->log, e->commit) != e->term) {
        return YGGR_ERR_NOT_READY;
    }
    return 0;
}

void config_change(struct yggr_engine *e, const struct yggr_event *ev)
{
    YGGR_ASSERT(ev->type == YGGR_EVENT_CHANGE);
    YGGR_ASSERT(ev->as.change.addr_len == 0 || ev->as.change.addr != NULL);
    if (e->role != YGGR_ROLE_LEADER) {
        engine_result_not_leader(e);
        return;
    }
    int err = change_precheck(e);
    if (err == 0) {
        err = validate_change(config_latest(&e->conf), ev->as.change.type, ev->as.change.node);
    }
    if (err == 0 && ev->as.change.addr_len > ADDR_BYTES) {
        err = YGGR_ERR_TOO_LARGE;
    }
    struct yggr_entry entry = {.type = YGGR_ENTRY_CONFIG,
                               .change = (uint8_t)ev->as.change.type,
                               .node = ev->as.change.node};
    if (err == 0 && ev->as.change.addr_len > 0) {
        entry.buf = pool_take(e, ev->as.change.addr, ev->as.change.addr_len);
        entry.data = entry.buf != NULL ? entry.buf->data : NULL;
        entry.len = ev->as.change.addr_len;
        err = entry.buf == NULL ? YGGR_ERR_BUSY : 0;
    }
    if (err == 0 && !replication_append_local(e, &entry)) {
        err = YGGR_ERR_BUSY;
    }
    yggr_buf_release(entry.buf); /* the log holds its own reference */
    if (err != 0) {
        engine_result(e, err, 0, 0);
        return;
    }
    e->m.config_changes_accepted++;
    engine_result(e, 0, e->log.last, 1);
    replication_send_all(e);
    replication_maybe_commit(e);
}
