/* SPDX-License-Identifier: MIT */
/* Engine object: configuration, create/destroy, the step dispatcher, summaries and checks. */
/*
 * Design notes
 *
 * One object, one call: yggr_engine_step(engine, event, actions). Every step:
 *   begin   reset the actions and the per-step scratch counters;
 *   handle  one event (tick, message, request, persistence report, recovery);
 *   finish  hand out committed entries (APPLY, bounded per step), snapshot hints, the
 *           hard state if (term, vote) changed, the APPEND range written this step, the
 *           messages, read results and the summary.
 * The host executes the actions in the order documented in engine.h. Anything whose
 * correctness depends on state that is not yet durable is held INSIDE the engine until the
 * matching *_PERSISTED event (vote grants, RequestVotes, AppendEntries successes), so every
 * SEND may leave at once (REFERENCE 8.3 #25).
 *
 * Memory: everything is allocated in yggr_engine_create() and sized from the config; the
 * step path never allocates. When a scratch array fills up mid-step the engine stops
 * producing more of that output and continues on the next event (ticks keep coming), so
 * progress is delayed, never lost.
 *
 * Determinism: time only through TICK events, randomness only from the xorshift64 PRNG
 * seeded by config.seed (REFERENCE 1.5); peers are visited in slot order.
 *
 * Recovery (engine.h, struct yggr_recovered): the configuration is replayed from the log's
 * CONFIG entries (starting empty) or the snapshot's; a brand-new founder first appends its
 * bootstrap entries (term 0, committed by definition), and a founder whose log (or term-0
 * snapshot plus log, sim F13) holds only some of them completes them; commit starts at
 * max(snapshot, term-0 prefix); a log that disagrees with the durable snapshot is dropped
 * (the install rule) and storage is told so.
 *
 * Failure modes: host misuse (events before RECOVER, inconsistent recovery data, bad
 * config) is asserted; anything a peer sends is validated and dropped (counted in
 * messages_dropped) when malformed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* ------------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------- */

void yggr_engine_config_init(struct yggr_engine_config *c, uint64_t id)
{
    YGGR_ASSERT(c != NULL);
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->seed = id;
    c->election_timeout_min_ticks = 10;
    c->election_timeout_max_ticks = 20;
    c->heartbeat_interval_ticks = 3;
    c->pre_vote = true;
    c->check_quorum = true;
    c->lease_duration_ticks = 0;
    c->max_append_entries = 4096;
    c->max_append_bytes = 1u << 20;
    c->max_inflight_msgs = 256;
    c->max_inflight_bytes = 64ull << 20;
    c->log_cache_entries = 1u << 16;
    c->max_term_runs = 1u << 16;
    c->max_pending_reads = 4096;
    c->max_step_entries = 1u << 16;
    c->snapshot_chunk_bytes = 1u << 20;
    c->snapshot_chunks_inflight = 4;
    c->snapshot_threshold_entries = 0;
    c->max_log_entries = 0;
    c->snapshot_trailing_entries = 1024;
    c->reference_wire = false;
    YGGR_ASSERT(c->id == id);
}

static int invalid(char *why, size_t n, const char *fmt, unsigned long long a,
                   unsigned long long b)
{
    if (why != NULL && n > 0) {
        snprintf(why, n, fmt, a, b);
    }
    return YGGR_ERR_CONFIG;
}

static int validate_limits(const struct yggr_engine_config *c, char *why, size_t n)
{
    uint32_t cache = c->log_cache_entries;
    if (cache < 4 || (cache & (cache - 1)) != 0) {
        return invalid(why, n, "log_cache_entries (%llu) must be a power of two >= 4%.0llu",
                       cache, 0);
    }
    if (c->max_term_runs < 2) {
        return invalid(why, n, "max_term_runs (%llu) must be >= 2%.0llu", c->max_term_runs, 0);
    }
    if (c->max_pending_reads < 1 || c->max_step_entries < 1) {
        return invalid(why, n, "max_pending_reads (%llu) and max_step_entries (%llu) must be >= 1",
                       c->max_pending_reads, c->max_step_entries);
    }
    if (c->max_append_entries < 1 || c->max_append_bytes < 1) {
        return invalid(why, n, "max_append_entries (%llu) and max_append_bytes (%llu) must be >= 1",
                       c->max_append_entries, c->max_append_bytes);
    }
    if (c->max_inflight_msgs < 1 || c->max_inflight_msgs > (1u << 16) ||
        c->max_inflight_bytes < 1) {
        return invalid(why, n, "max_inflight_msgs (%llu) must be in [1, 65536] and "
                       "max_inflight_bytes (%llu) >= 1", c->max_inflight_msgs,
                       c->max_inflight_bytes);
    }
    if (c->snapshot_chunk_bytes < 1 || c->snapshot_chunks_inflight < 1) {
        return invalid(why, n, "snapshot_chunk_bytes (%llu) and snapshot_chunks_inflight (%llu) "
                       "must be >= 1", c->snapshot_chunk_bytes, c->snapshot_chunks_inflight);
    }
    return 0;
}

int yggr_engine_config_validate(const struct yggr_engine_config *c, char *why, size_t n)
{
    YGGR_ASSERT(c != NULL);
    if (why != NULL && n > 0) {
        why[0] = '\0';
    }
    if (c->id == 0) {
        return invalid(why, n, "id must be non-zero%.0llu%.0llu", 0, 0);
    }
    if (c->election_timeout_min_ticks < 1 ||
        c->election_timeout_min_ticks >= c->election_timeout_max_ticks) {
        return invalid(why, n, "election timeout range [%llu, %llu) is empty or starts at 0",
                       c->election_timeout_min_ticks, c->election_timeout_max_ticks);
    }
    if (c->heartbeat_interval_ticks < 1 ||
        c->heartbeat_interval_ticks >= c->election_timeout_min_ticks) {
        return invalid(why, n, "heartbeat_interval_ticks (%llu) must be in [1, "
                       "election_timeout_min_ticks = %llu)", c->heartbeat_interval_ticks,
                       c->election_timeout_min_ticks);
    }
    if (c->lease_duration_ticks > 0 &&
        c->lease_duration_ticks >= c->election_timeout_min_ticks - c->heartbeat_interval_ticks) {
        return invalid(why, n, "lease_duration_ticks (%llu) must be < election_timeout_min_ticks "
                       "- heartbeat_interval_ticks (%llu)", c->lease_duration_ticks,
                       c->election_timeout_min_ticks - c->heartbeat_interval_ticks);
    }
    if (c->lease_duration_ticks > 0 && !c->pre_vote) {
        return invalid(why, n, "lease_duration_ticks (%llu) requires pre_vote (leader "
                       "stickiness)%.0llu", c->lease_duration_ticks, 0);
    }
    return validate_limits(c, why, n);
}

/* ------------------------------------------------------------------------------------
 * Create / destroy
 * ---------------------------------------------------------------------------------- */

static int alloc_scratch(struct yggr_engine *e)
{
    const struct yggr_engine_config *c = &e->cfg;
    e->msg_cap = MSGS_PER_STEP;
    e->msgs = calloc(e->msg_cap, sizeof(*e->msgs));
    e->step_cap = c->max_step_entries;
    e->append_buf = calloc(e->step_cap, sizeof(*e->append_buf));
    e->apply_buf = calloc(e->step_cap, sizeof(*e->apply_buf));
    e->reads = calloc(c->max_pending_reads, sizeof(*e->reads));
    e->read_out_cap = c->max_pending_reads + 1;
    e->read_out = calloc(e->read_out_cap, sizeof(*e->read_out));
    if (e->msgs == NULL || e->append_buf == NULL || e->apply_buf == NULL || e->reads == NULL ||
        e->read_out == NULL) {
        return YGGR_ERR_NOMEM;
    }
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        struct progress *p = &e->peers[s];
        p->infl = calloc(c->max_inflight_msgs, sizeof(*p->infl));
        p->sent_cap = c->max_inflight_msgs + 8;
        p->sent = calloc(p->sent_cap, sizeof(*p->sent));
        if (p->infl == NULL || p->sent == NULL) {
            return YGGR_ERR_NOMEM;
        }
    }
    return 0;
}

int yggr_engine_create(const struct yggr_engine_config *config, struct yggr_engine **out)
{
    YGGR_ASSERT(config != NULL && out != NULL);
    *out = NULL;
    if (yggr_engine_config_validate(config, NULL, 0) != 0) {
        return YGGR_ERR_CONFIG;
    }
    struct yggr_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return YGGR_ERR_NOMEM;
    }
    e->cfg = *config;
    e->id = config->id;
    e->prng = config->seed != 0 ? config->seed : 0xDEADBEEFCAFEF00Dull;
    int rc = log_init(&e->log, config->max_term_runs, config->log_cache_entries);
    if (rc != 0) {
        free(e);
        return rc;
    }
    rc = alloc_scratch(e);
    if (rc == 0) {
        rc = config_pool_init(e);
    }
    if (rc != 0) {
        yggr_engine_destroy(e);
        return rc;
    }
    struct yggr_membership empty = {0};
    config_reset(&e->conf, &empty, 0);
    e->role = YGGR_ROLE_FOLLOWER;
    election_reset_timer(e);
    *out = e;
    YGGR_ASSERT(e->log.last == 0);
    return 0;
}

void yggr_engine_destroy(struct yggr_engine *e)
{
    if (e == NULL) {
        return;
    }
    yggr_buf_release(e->held_buf);
    log_deinit(&e->log);
    config_pool_deinit(e);
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        free(e->peers[s].infl);
        free(e->peers[s].sent);
    }
    free(e->msgs);
    free(e->append_buf);
    free(e->apply_buf);
    free(e->reads);
    free(e->read_out);
    free(e);
}

/* ------------------------------------------------------------------------------------
 * Helpers shared by the modules
 * ---------------------------------------------------------------------------------- */

uint32_t engine_draw_timeout(struct yggr_engine *e)
{
    uint64_t x = e->prng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e->prng = x;
    uint64_t span = e->cfg.election_timeout_max_ticks - e->cfg.election_timeout_min_ticks;
    uint32_t t = e->cfg.election_timeout_min_ticks + (uint32_t)(x % span);
    YGGR_ASSERT(t >= e->cfg.election_timeout_min_ticks && t < e->cfg.election_timeout_max_ticks);
    return t;
}

struct yggr_msg *engine_msg(struct yggr_engine *e, enum yggr_msg_type type, uint64_t to)
{
    YGGR_ASSERT(e->act != NULL);
    YGGR_ASSERT(to != 0 && to != e->id);
    if (e->act->send.count >= e->msg_cap) {
        return NULL;
    }
    struct yggr_msg *m = &e->msgs[e->act->send.count++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = e->id;
    m->to = to;
    m->term = e->term;
    return m;
}

void engine_result(struct yggr_engine *e, int err, uint64_t index, uint32_t count)
{
    YGGR_ASSERT(e->act != NULL);
    YGGR_ASSERT(err <= 0);
    e->act->flags |= YGGR_ACT_RESULT;
    e->act->result.err = err;
    e->act->result.index = index;
    e->act->result.count = count;
    e->act->result.term = err == 0 ? e->term : 0;
    e->act->result.leader_hint = err == YGGR_ERR_NOT_LEADER ? e->leader_id : 0;
}

void engine_result_not_leader(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role != YGGR_ROLE_LEADER);
    engine_result(e, e->leader_id != 0 ? YGGR_ERR_NOT_LEADER : YGGR_ERR_NO_LEADER, 0, 0);
}

void engine_read_result(struct yggr_engine *e, uint64_t id, enum yggr_read_status status,
                        uint64_t index)
{
    YGGR_ASSERT(e->act != NULL);
    YGGR_ASSERT(e->act->reads.count < e->read_out_cap);
    struct yggr_read_result *r = &e->read_out[e->act->reads.count++];
    r->id = id;
    r->status = status;
    r->index = status == YGGR_READ_READY ? index : 0;
    r->leader_hint = status == YGGR_READ_NOT_LEADER ? e->leader_id : 0;
    e->act->flags |= YGGR_ACT_READS;
    e->act->reads.results = e->read_out;
    if (status == YGGR_READ_READY) {
        e->m.reads_completed++;
    } else {
        e->m.reads_failed++;
    }
}

bool engine_term_durable(const struct yggr_engine *e)
{
    return e->durable_term == e->term;
}

struct progress *engine_peer(struct yggr_engine *e, uint64_t id)
{
    if (id == 0) {
        return NULL;
    }
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        if (e->peers[s].id == id) {
            return &e->peers[s];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * Recovery
 * ---------------------------------------------------------------------------------- */

/* Term of `index` according to the host's term runs (index inside the stored log). */
static uint64_t recovered_term_at(const struct yggr_recovered *r, uint64_t index)
{
    YGGR_ASSERT(index >= r->first_index && index <= r->last_index);
    uint64_t term = 0;
    for (uint32_t k = 0; k < r->term_count && r->terms[k].first_index <= index; k++) {
        term = r->terms[k].term;
    }
    return term;
}

/* The install rule (engine.h, YGGR_ACT_SNAPSHOT_CHUNK) applied to the durable state: with
 * a snapshot (I, T) the stored log is kept only if it starts right above I or holds I with
 * term T. Otherwise it is what a crash left behind the snapshot (writes lost, sim F4, or an
 * entry since replaced) and goes. */
static bool recover_keeps_log(const struct yggr_recovered *r, struct yggr_log_id snap)
{
    if (r->last_index < r->first_index) {
        return false;
    }
    YGGR_ASSERT(r->term_count > 0 && r->terms != NULL);
    YGGR_ASSERT(r->terms[0].first_index <= r->first_index);
    if (!r->has_snapshot) {
        YGGR_ASSERT(r->first_index == 1); /* no snapshot: the log starts at 1 */
        return true;
    }
    YGGR_ASSERT(r->first_index <= snap.index + 1); /* else a gap above the snapshot */
    if (r->first_index == snap.index + 1) {
        return true;
    }
    return r->last_index >= snap.index && recovered_term_at(r, snap.index) == snap.term;
}

static void recover_log(struct yggr_engine *e, const struct yggr_recovered *r,
                        struct yggr_log_id snap, bool keep)
{
    if (!keep) {
        log_reset(&e->log, snap.index + 1, snap.index, snap);
        if (r->has_snapshot && r->first_index <= snap.index) {
            /* Tell storage to drop the stale log, so that the log continues at I + 1 (a
             * storage that applies the install rule itself has nothing left to do). */
            e->truncate_from = r->last_index >= r->first_index ? r->first_index : 0;
            e->act->flags |= YGGR_ACT_COMPACT;
            e->act->compact_below = snap.index + 1;
        }
        return;
    }
    uint64_t first = r->first_index;
    uint64_t last = r->last_index;
    log_reset(&e->log, first, last, snap);
    for (uint32_t k = 0; k < r->term_count; k++) {
        const struct yggr_term_run *t = &r->terms[k];
        YGGR_ASSERT(t->first_index <= last);
        if (k + 1 < r->term_count && r->terms[k + 1].first_index <= first) {
            continue; /* wholly below the first stored index */
        }
        log_push_run(&e->log, t->term, t->first_index);
    }
    YGGR_ASSERT(snap.index < first || log_term_at(&e->log, snap.index) == snap.term);
}

/* Warm the cache with the part of the host's tail that is still in the kept log. A log
 * that ends below the durable snapshot is dropped whole (the snapshot is durable on its
 * own; the log writes behind it may be lost), so its tail is too (sim finding F4). */
static void recover_tail(struct yggr_engine *e, const struct yggr_recovered *r)
{
    if (r->tail_count == 0 || e->log.last < e->log.first) {
        return;
    }
    YGGR_ASSERT(r->tail != NULL);
    const struct yggr_entry *tail = r->tail;
    uint32_t count = r->tail_count;
    if (tail[count - 1].index != e->log.last) {
        return; /* not the newest entries of the kept log: nothing to warm */
    }
    while (count > 0 && tail[0].index < e->log.first) {
        tail++;
        count--;
    }
    if (count > 0) {
        log_warm(&e->log, tail, count);
    }
    YGGR_ASSERT(e->log.cache_first >= e->log.first);
}

static void recover_configs(struct yggr_engine *e, const struct yggr_recovered *r,
                            struct yggr_log_id snap)
{
    uint64_t prev = config_latest_index(&e->conf);
    uint64_t boot = log_bootstrap_end(&e->log);
    uint64_t boot_from = e->log.first > snap.index ? e->log.first : snap.index + 1;
    uint64_t boot_seen = 0;
    for (uint32_t k = 0; k < r->config_count; k++) {
        const struct yggr_entry *c = &r->configs[k];
        YGGR_ASSERT(c->type == YGGR_ENTRY_CONFIG);
        if (c->index <= snap.index) {
            continue; /* folded into the snapshot's configuration */
        }
        YGGR_ASSERT(c->index > prev && c->index <= e->log.last);
        config_push(&e->conf, c->index, (enum yggr_change_type)c->change, c->node);
        prev = c->index;
        boot_seen += c->index <= boot;
    }
    /* Every bootstrap entry is a CONFIG entry: a host that leaves them out of `configs`
     * would make the node forget the founders (host misuse). */
    YGGR_ASSERT(boot < boot_from || boot_seen == boot - boot_from + 1);
}

/* Sim F13: a term-0 snapshot (I, 0) above a stored bootstrap prefix [first, j], j < I,
 * that the install rule drops (truncation at `first`, COMPACT below I + 1), while the
 * bootstrap entries above I are completed. One APPEND must be contiguous from its
 * truncation point, so it rewrites the (identical) bootstrap entries [first, I] too; the
 * COMPACT that follows drops them again. */
static void recover_rewrite_bootstrap(struct yggr_engine *e, const struct yggr_membership *base)
{
    if (e->truncate_from == 0 || e->append_from <= e->truncate_from) {
        return;
    }
    uint64_t from = e->truncate_from;
    uint64_t mid = e->append_from;
    uint64_t count = e->log.last - from + 1;
    YGGR_ASSERT(e->log.snap.term == 0 && mid == e->log.snap.index + 1);
    YGGR_ASSERT(count <= e->step_cap);
    config_bootstrap_entries(base, from, mid - 1, e->append_buf);
    log_copy(&e->log, mid, (uint32_t)(e->log.last - mid + 1), e->append_buf + (mid - from));
    struct yggr_actions *act = e->act;
    act->flags |= YGGR_ACT_APPEND;
    act->append.truncate_from = from;
    act->append.entries = e->append_buf;
    act->append.count = (uint32_t)count;
    e->truncate_from = 0; /* the APPEND is complete: finish_append leaves it alone */
    e->append_from = 0;
}

static void recover(struct yggr_engine *e, const struct yggr_recovered *r)
{
    YGGR_ASSERT(!e->recovered);
    YGGR_ASSERT(r->vote == 0 || r->term > 0);
    e->recovered = true;
    e->term = e->durable_term = e->emitted_term = r->term;
    e->vote = e->durable_vote = e->emitted_vote = r->vote;
    struct yggr_log_id snap = {0, 0};
    struct yggr_membership empty = {0};
    if (r->has_snapshot) {
        YGGR_ASSERT(r->snapshot.last.index > 0); /* term 0: bootstrap entries only */
        snap = r->snapshot.last;
        e->has_snapshot = true;
        e->snap = r->snapshot;
    }
    /* The configuration is the snapshot's, or replayed from the log's CONFIG entries
     * starting EMPTY: the bootstrap configuration is log entries 1..k (term 0). */
    config_reset(&e->conf, r->has_snapshot ? &r->snapshot.config : &empty, snap.index);
    bool keep = recover_keeps_log(r, snap);
    recover_log(e, r, snap, keep);
    if (keep) {
        recover_configs(e, r, snap);
    }
    recover_tail(e, r);
    e->durable = e->log.last;
    e->commit = e->applied = snap.index;
    e->hint_last = snap.index;
    e->role = YGGR_ROLE_FOLLOWER;
    e->leader_id = 0;
    config_sync_peers(e);
    if (!r->has_snapshot || snap.term == 0) {
        /* A snapshot of term 0 may hold only a prefix of the bootstrap entries (taken while
         * the rest of them was not durable yet, sim F13): complete them like a torn write. */
        config_bootstrap(e, &r->base_config, keep ? r->configs : NULL, keep ? r->config_count : 0);
        recover_rewrite_bootstrap(e, &r->base_config);
    }
    replication_commit_bootstrap(e);
    election_reset_timer(e);
    YGGR_ASSERT(e->commit <= e->log.last);
    YGGR_ASSERT(e->durable <= e->log.last);
}

/* ------------------------------------------------------------------------------------
 * Step
 * ---------------------------------------------------------------------------------- */

static void begin_step(struct yggr_engine *e, struct yggr_actions *act)
{
    yggr_buf_release(e->held_buf);
    e->held_buf = NULL;
    memset(act, 0, sizeof(*act));
    act->send.msgs = e->msgs;
    act->reads.results = e->read_out;
    e->act = act;
    e->append_from = 0;
    e->truncate_from = 0;
    e->step_appended = 0;
    e->check_term = e->term;
    e->check_commit = e->commit;
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        e->peers[s].step_msgs = 0;
    }
}

static void receive(struct yggr_engine *e, const struct yggr_msg *msg)
{
    if (msg->from == 0 || msg->from == e->id || (msg->to != 0 && msg->to != e->id)) {
        e->m.messages_dropped++;
        return;
    }
    switch (msg->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        election_receive_vote_request(e, msg);
        return;
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        election_receive_vote_response(e, msg);
        return;
    case YGGR_MSG_APPEND_REQUEST:
        replication_receive_append(e, msg);
        return;
    case YGGR_MSG_APPEND_RESPONSE:
        replication_receive_append_response(e, msg);
        return;
    case YGGR_MSG_SNAPSHOT_REQUEST:
        snapshot_receive_request(e, msg);
        return;
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        snapshot_receive_response(e, msg);
        return;
    case YGGR_MSG_TIMEOUT_NOW:
        transfer_receive_timeout_now(e, msg);
        return;
    }
    e->m.messages_dropped++; /* not a message type: peer input, never asserted */
}

static void finish_append(struct yggr_engine *e)
{
    struct yggr_actions *act = e->act;
    if (e->append_from == 0 && e->truncate_from == 0) {
        return;
    }
    act->flags |= YGGR_ACT_APPEND;
    act->append.truncate_from = e->truncate_from;
    if (e->append_from == 0 || e->append_from > e->log.last) {
        act->append.entries = e->append_buf;
        act->append.count = 0;
        return;
    }
    uint64_t count = e->log.last - e->append_from + 1;
    YGGR_ASSERT(count <= e->step_cap);
    YGGR_ASSERT(e->truncate_from == 0 || e->truncate_from == e->append_from);
    const struct yggr_entry *run = NULL;
    uint32_t n = log_cached_run(&e->log, e->append_from, (uint32_t)count, &run);
    if (n == count) {
        act->append.entries = run; /* zero copy: the ring does not wrap here */
    } else {
        log_copy(&e->log, e->append_from, (uint32_t)count, e->append_buf);
        act->append.entries = e->append_buf;
    }
    act->append.count = (uint32_t)count;
}

static void finish_step(struct yggr_engine *e)
{
    struct yggr_actions *act = e->act;
    replication_apply(e);
    snapshot_hint(e);
    if (e->term != e->emitted_term || e->vote != e->emitted_vote) {
        act->flags |= YGGR_ACT_HARD_STATE;
        act->hard_state.term = e->term;
        act->hard_state.vote = e->vote;
        e->emitted_term = e->term;
        e->emitted_vote = e->vote;
    }
    finish_append(e);
    if (act->send.count > 0) {
        act->flags |= YGGR_ACT_SEND;
    }
    act->role = e->role;
    act->term = e->term;
    act->leader_id = e->role == YGGR_ROLE_LEADER ? e->id : e->leader_id;
    act->commit_index = e->commit;
    act->last_index = e->log.last;
    act->applied_index = e->applied;
    act->transferring = e->transfer_target != 0;
    act->removed = e->removed;
    e->act = NULL;
    YGGR_ASSERT(e->applied <= e->commit);
    YGGR_ASSERT(e->commit <= e->log.last);
}

static void on_tick(struct yggr_engine *e)
{
    e->tick++;
    if (e->role == YGGR_ROLE_LEADER) {
        replication_leader_tick(e);
    } else {
        election_tick(e);
    }
}

static void dispatch(struct yggr_engine *e, const struct yggr_event *ev)
{
    switch (ev->type) {
    case YGGR_EVENT_TICK:
        on_tick(e);
        return;
    case YGGR_EVENT_RECEIVE:
        receive(e, &ev->as.receive);
        return;
    case YGGR_EVENT_PROPOSE:
        replication_propose(e, ev->as.propose.entries, ev->as.propose.count);
        return;
    case YGGR_EVENT_CHANGE:
        config_change(e, ev);
        return;
    case YGGR_EVENT_READ:
        read_request(e, ev->as.read.id);
        return;
    case YGGR_EVENT_TRANSFER:
        transfer_request(e, ev->as.transfer.target);
        return;
    case YGGR_EVENT_LOG_PERSISTED:
        replication_log_persisted(e, ev->as.log_persisted);
        return;
    case YGGR_EVENT_HARD_STATE_PERSISTED:
        election_hard_state_persisted(e, ev->as.hard_state_persisted.term,
                                      ev->as.hard_state_persisted.vote);
        return;
    case YGGR_EVENT_SNAPSHOT_TAKEN:
        snapshot_taken(e, ev->as.snapshot_taken.last, ev->as.snapshot_taken.size);
        return;
    case YGGR_EVENT_SNAPSHOT_PERSISTED:
        snapshot_persisted(e, ev->as.snapshot_persisted);
        return;
    case YGGR_EVENT_RECOVER:
        recover(e, &ev->as.recover);
        return;
    }
    YGGR_UNREACHABLE(); /* not an event type: host misuse */
}

void yggr_engine_step(struct yggr_engine *e, const struct yggr_event *ev,
                      struct yggr_actions *act)
{
    YGGR_ASSERT(e != NULL && ev != NULL && act != NULL);
    YGGR_ASSERT(e->recovered || ev->type == YGGR_EVENT_RECOVER);
    begin_step(e, act);
    dispatch(e, ev);
    finish_step(e);
}

/* ------------------------------------------------------------------------------------
 * Introspection
 * ---------------------------------------------------------------------------------- */

void yggr_engine_metrics(const struct yggr_engine *e, struct yggr_engine_metrics *out)
{
    YGGR_ASSERT(e != NULL && out != NULL);
    *out = e->m;
    out->current_term = e->term;
    out->commit_index = e->commit;
    out->last_applied = e->applied;
    out->log_len = e->log.last - e->log.snap.index;
    out->role_code = (uint64_t)e->role;
    YGGR_ASSERT(out->last_applied <= out->commit_index);
}

uint32_t yggr_engine_progress(const struct yggr_engine *e, struct yggr_peer_progress *out,
                              uint32_t max)
{
    YGGR_ASSERT(e != NULL);
    YGGR_ASSERT(max == 0 || out != NULL);
    uint32_t n = 0;
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        const struct progress *p = &e->peers[s];
        if (p->id == 0) {
            continue;
        }
        if (n < max) {
            struct yggr_peer_progress *o = &out[n];
            o->id = p->id;
            o->match_index = p->match;
            o->next_index = p->next;
            o->inflight_msgs = p->infl_count;
            o->inflight_bytes = p->infl_bytes;
            o->state = p->state;
            o->learner = !p->voter;
            o->recent_active = e->role == YGGR_ROLE_LEADER &&
                               e->tick - p->heard_tick < e->cfg.election_timeout_min_ticks;
        }
        n++;
    }
    return n;
}

void yggr_engine_config_latest(const struct yggr_engine *e, struct yggr_membership *out)
{
    YGGR_ASSERT(e != NULL && out != NULL);
    *out = *config_latest(&e->conf);
}

void yggr_engine_config_committed(const struct yggr_engine *e, struct yggr_membership *out)
{
    YGGR_ASSERT(e != NULL && out != NULL);
    const struct yggr_membership *m = config_at(&e->conf, e->commit);
    *out = m != NULL ? *m : e->conf.base;
}

uint64_t yggr_engine_term_at(const struct yggr_engine *e, uint64_t index)
{
    YGGR_ASSERT(e != NULL);
    return log_term_at(&e->log, index);
}

static int check_fail(char *why, size_t n, const char *msg, uint64_t a, uint64_t b)
{
    if (why != NULL && n > 0) {
        snprintf(why, n, "%s (%llu, %llu)", msg, (unsigned long long)a, (unsigned long long)b);
    }
    return -1;
}

static int check_peers(const struct yggr_engine *e, char *why, size_t n)
{
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        const struct progress *p = &e->peers[s];
        if (p->id == 0) {
            continue;
        }
        if (p->id == e->id || !config_is_member(e, p->id)) {
            return check_fail(why, n, "tracked peer not in the configuration", p->id, e->id);
        }
        if (p->state != YGGR_PROGRESS_SNAPSHOT && p->next <= p->match) {
            return check_fail(why, n, "peer next <= match", p->next, p->match);
        }
        if (e->role == YGGR_ROLE_LEADER && p->match > e->log.last) {
            return check_fail(why, n, "peer match beyond the leader's log", p->match, e->log.last);
        }
    }
    return 0;
}

int yggr_engine_check(const struct yggr_engine *e, char *why, size_t n)
{
    YGGR_ASSERT(e != NULL);
    if (e->term < e->check_term) {
        return check_fail(why, n, "term decreased", e->check_term, e->term);
    }
    if (e->commit < e->check_commit) {
        return check_fail(why, n, "commit decreased", e->check_commit, e->commit);
    }
    if (e->commit > e->log.last) {
        return check_fail(why, n, "commit beyond last index", e->commit, e->log.last);
    }
    if (e->applied > e->commit) {
        return check_fail(why, n, "applied beyond commit", e->applied, e->commit);
    }
    if (e->durable > e->log.last) {
        return check_fail(why, n, "durable beyond last index", e->durable, e->log.last);
    }
    if (e->log.snap.index > e->commit) {
        return check_fail(why, n, "snapshot beyond commit", e->log.snap.index, e->commit);
    }
    if (e->durable_term > e->term) {
        return check_fail(why, n, "durable term beyond term", e->durable_term, e->term);
    }
    if ((e->role == YGGR_ROLE_CANDIDATE || e->role == YGGR_ROLE_LEADER) && e->vote != e->id) {
        return check_fail(why, n, "candidate or leader without its self-vote", e->vote, e->id);
    }
    if (log_check(&e->log, why, n) != 0 || config_check(&e->conf, why, n) != 0) {
        return -1;
    }
    return check_peers(e, why, n);
}
