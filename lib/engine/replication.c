/* SPDX-License-Identifier: MIT */
/* Log replication: proposals, AppendEntries both ways, flow control, commit and apply. */
/*
 * Design notes
 *
 * Leader side (Raft paper 5.3, thesis 10.2.1):
 *   - Proposals are appended to the local log and go to storage as ONE APPEND action per
 *     step; AppendEntries leave in the same step, while the local write is in flight. The
 *     leader counts itself toward the commit quorum only up to its own durable index.
 *   - Per-peer flow control (progress.c): PROBE sends one AppendEntries at a time;
 *     REPLICATE pipelines up to max_inflight_msgs / max_inflight_bytes, each message
 *     carrying at most max_append_entries entries and max_append_bytes payload (at least
 *     one entry). Entries older than the cache go out as `from_storage` messages that the
 *     host fills from its log. Heartbeats carry no entries; in PROBE they double as the
 *     probe (prev = next - 1), in REPLICATE they name prev = match.
 *   - Conflicts (fast backtracking, thesis 5.3 "the follower can include the term of the
 *     conflicting entry and the first index it stores for that term"): next = (the
 *     leader's last index of conflict_term) + 1 when the leader has that term, else hint.
 *   - Commit: "If there exists an N such that N > commitIndex, a majority of
 *     matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N" (Figure 2);
 *     prior-term entries commit only indirectly (5.4.2).
 *
 * Follower side:
 *   - An AppendEntries proves the follower's log matches the leader's up to
 *     `verified` = prev.index + the entries processed. The success it answers claims
 *     min(verified, durable): never more than it holds durably, never its whole log
 *     (REFERENCE 8.1 #9). When the request added entries that are not durable yet the
 *     success is deferred and coalesced: one success goes out when LOG_PERSISTED covers
 *     it. Follower commit = min(leader_commit, verified) (Figure 2, "index of last new
 *     entry"); entries of term 0 (the bootstrap configuration) are committed as soon as
 *     they are in the log.
 *   - Indexes at or below our commit index match the leader's log by Leader
 *     Completeness, so they are skipped without comparison.
 *   - Malformed requests (non-contiguous indexes, decreasing terms, terms above the
 *     message term, bad entry types, term-0 entries that are not CONFIG) are dropped and
 *     counted, never asserted. Term 0 is a real term here (prev may be (k, 0)): whether an
 *     index is in the log is log_knows(), never "term_at == 0".
 *
 * Apply: committed entries of every type are handed out in index order, at most
 * max_step_entries per step; entries older than the cache are handed out `from_storage`.
 * The cache evicts any durable entry, applied or not (sim F5: a cache full of durable,
 * uncommitted entries must not refuse appends, or nothing ever commits).
 *
 * Stale responses (sim F7): a success that moves nothing sends nothing and leaves the probe
 * in flight alone; a replicating peer ignores a rejection from a round older than its last
 * match-moving success (every entry above match went out in that round or later).
 */
#include <string.h>

#include "engine_internal.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Cached entries that may make room: every durable one. Unapplied ones included: APPLY
 * hands out entries older than the cache `from_storage`, and a follower whose cache holds
 * only unapplied entries must still append, or nothing commits and nothing is ever
 * applied again (sim F5). The ring drops the oldest first, so applied ones go first. */
static uint64_t evict_limit(const struct yggr_engine *e)
{
    return e->durable;
}

bool replication_append_entry(struct yggr_engine *e, const struct yggr_entry *en,
                              uint64_t evict_upto)
{
    if (e->step_appended >= e->step_cap || en->term < log_last_term(&e->log)) {
        return false;
    }
    if (!log_append(&e->log, en, evict_upto)) {
        return false;
    }
    if (e->append_from == 0) {
        e->append_from = en->index;
    }
    e->step_appended++;
    if (en->type == YGGR_ENTRY_CONFIG) {
        config_on_append(e, log_get(&e->log, en->index));
    }
    YGGR_ASSERT(e->log.last == en->index);
    return true;
}

bool replication_append_local(struct yggr_engine *e, const struct yggr_entry *in)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
    YGGR_ASSERT(in->type <= YGGR_ENTRY_CONFIG);
    struct yggr_entry en = *in;
    en.index = e->log.last + 1;
    en.term = e->term;
    en.reserved = 0;
    if (en.len == 0) {
        en.data = NULL;
    }
    return replication_append_entry(e, &en, evict_limit(e));
}

void replication_propose(struct yggr_engine *e, const struct yggr_entry *entries, uint32_t count)
{
    YGGR_ASSERT(count == 0 || entries != NULL);
    if (e->role != YGGR_ROLE_LEADER || e->transfer_target != 0) {
        if (e->role != YGGR_ROLE_LEADER) {
            engine_result_not_leader(e);
        } else {
            engine_result(e, YGGR_ERR_TRANSFER_IN_PROGRESS, 0, 0);
        }
        e->m.proposals_refused += count;
        return;
    }
    uint64_t first = e->log.last + 1;
    uint32_t n = 0;
    while (n < count) {
        struct yggr_entry en = entries[n];
        en.type = YGGR_ENTRY_COMMAND;
        en.change = 0;
        en.node = 0;
        if (!replication_append_local(e, &en)) {
            break;
        }
        n++;
    }
    e->m.proposals_accepted += n;
    e->m.proposals_refused += count - n;
    if (n == 0 && count > 0) {
        engine_result(e, YGGR_ERR_BUSY, 0, 0);
        return;
    }
    engine_result(e, 0, n > 0 ? first : 0, n);
    replication_send_all(e);
    replication_maybe_commit(e);
}

/* ------------------------------------------------------------------------------------
 * Leader: sending
 * ---------------------------------------------------------------------------------- */

static bool needs_snapshot(const struct yggr_engine *e, const struct progress *p)
{
    uint64_t prev = p->next - 1;
    return p->next < e->log.first || !log_knows(&e->log, prev);
}

static void fill_append(struct yggr_engine *e, struct yggr_msg *m, uint64_t prev)
{
    m->as.append.leader_id = e->id;
    m->as.append.prev.index = prev;
    m->as.append.prev.term = log_term_at(&e->log, prev);
    m->as.append.leader_commit = e->commit;
    m->as.append.round = e->cfg.reference_wire ? 0 : e->round;
    YGGR_ASSERT(log_knows(&e->log, prev));
}

/* One AppendEntries with entries from p->next. */
static bool send_entries(struct yggr_engine *e, struct progress *p)
{
    uint64_t next = p->next;
    YGGR_ASSERT(next <= e->log.last && next >= e->log.first);
    struct yggr_msg *m = engine_msg(e, YGGR_MSG_APPEND_REQUEST, p->id);
    if (m == NULL) {
        return false;
    }
    fill_append(e, m, next - 1);
    uint64_t bytes = 0;
    uint32_t count;
    if (log_is_cached(&e->log, next)) {
        const struct yggr_entry *run = NULL;
        uint32_t avail = log_cached_run(&e->log, next, e->cfg.max_append_entries, &run);
        for (count = 0; count < avail; count++) {
            if (count > 0 && bytes + run[count].len > e->cfg.max_append_bytes) {
                break;
            }
            bytes += run[count].len;
        }
        m->as.append.entries = run;
    } else {
        count = (uint32_t)min_u64(e->cfg.max_append_entries, e->log.cache_first - next);
        m->as.append.from_storage = true; /* the host reads them from its log */
    }
    m->as.append.entry_count = count;
    uint64_t end = next + count - 1;
    if (p->state == YGGR_PROGRESS_REPLICATE) {
        progress_sent_data(p, end, bytes, e->cfg.max_inflight_msgs);
    } else {
        p->probe_sent = true;
    }
    progress_sent_push(p, e->round);
    p->step_msgs++;
    e->m.append_entries_sent++;
    YGGR_ASSERT(count >= 1);
    return true;
}

void replication_send(struct yggr_engine *e, struct progress *p)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
    YGGR_ASSERT(p->id != 0);
    if (!engine_term_durable(e)) {
        return;
    }
    for (;;) {
        if (p->step_msgs >= PEER_MSGS_PER_STEP) {
            return;
        }
        if (p->state != YGGR_PROGRESS_SNAPSHOT && needs_snapshot(e, p) && e->has_snapshot) {
            progress_become_snapshot(p, e->snap.last, e->tick);
        }
        if (p->state == YGGR_PROGRESS_SNAPSHOT) {
            snapshot_send(e, p);
            return;
        }
        if (p->next > e->log.last || needs_snapshot(e, p)) {
            return;
        }
        if (p->state == YGGR_PROGRESS_PROBE && p->probe_sent) {
            return;
        }
        if (p->state == YGGR_PROGRESS_REPLICATE && progress_window_full(p, &e->cfg)) {
            e->m.append_windows_full++;
            return;
        }
        if (!send_entries(e, p) || p->state != YGGR_PROGRESS_REPLICATE) {
            return;
        }
    }
}

void replication_send_all(struct yggr_engine *e)
{
    if (e->role != YGGR_ROLE_LEADER || !engine_term_durable(e)) {
        return;
    }
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        if (e->peers[s].id != 0) {
            replication_send(e, &e->peers[s]);
        }
    }
}

static void send_heartbeat(struct yggr_engine *e, struct progress *p)
{
    uint64_t at = 0;
    if (p->state == YGGR_PROGRESS_REPLICATE) {
        at = p->match;
    } else if (p->state == YGGR_PROGRESS_PROBE) {
        at = p->next - 1;
    }
    if (!log_knows(&e->log, at)) {
        at = 0; /* compacted: claim nothing */
    }
    struct yggr_msg *m = engine_msg(e, YGGR_MSG_APPEND_REQUEST, p->id);
    if (m == NULL) {
        return;
    }
    fill_append(e, m, at);
    progress_sent_push(p, e->round);
    e->m.append_entries_sent++;
    YGGR_ASSERT(m->as.append.entry_count == 0);
}

void replication_heartbeat(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
    if (!engine_term_durable(e)) {
        return;
    }
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        struct progress *p = &e->peers[s];
        if (p->id == 0) {
            continue;
        }
        if (p->state == YGGR_PROGRESS_REPLICATE && p->infl_count > 0 &&
            e->tick - p->stall_tick >= e->cfg.election_timeout_min_ticks) {
            progress_become_probe(p, p->match + 1, e->tick); /* lost messages: re-probe */
        }
        if (p->state != YGGR_PROGRESS_SNAPSHOT && e->has_snapshot && needs_snapshot(e, p)) {
            /* Compacted under a probe in flight (its answers, all heartbeats claiming
             * nothing, move nothing): stream the snapshot instead. */
            progress_become_snapshot(p, e->snap.last, e->tick);
            snapshot_send(e, p);
        }
        send_heartbeat(e, p);
        if (p->state == YGGR_PROGRESS_SNAPSHOT) {
            snapshot_leader_tick(e, p);
        }
    }
}

void replication_leader_tick(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
    election_check_quorum(e);
    if (e->role != YGGR_ROLE_LEADER) {
        return;
    }
    transfer_tick(e);
    if (++e->heartbeat_elapsed < e->cfg.heartbeat_interval_ticks) {
        return;
    }
    e->heartbeat_elapsed = 0;
    read_round_bump(e);
    e->read_round_wanted = false;
    replication_heartbeat(e);
    read_release(e); /* a single voter confirms its rounds alone */
}

void replication_become_leader(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_CANDIDATE);
    YGGR_ASSERT(e->vote == e->id);
    e->role = YGGR_ROLE_LEADER;
    e->leader_id = e->id;
    e->votes_pending = false;
    e->heartbeat_elapsed = 0;
    e->quorum_elapsed = 0;
    e->lease_revoked = false;
    e->transfer_target = 0;
    e->read_round_wanted = false;
    e->m.leader_elections_won++;
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        if (e->peers[s].id != 0) {
            progress_reset(&e->peers[s], e->log.last + 1, e->tick);
        }
    }
    /* Raft paper 8: "each leader commit a blank no-op entry at the start of its term". */
    struct yggr_entry noop = {.type = YGGR_ENTRY_NOOP};
    if (!replication_append_local(e, &noop)) {
        election_become_follower(e, e->term); /* cache full of undurable entries */
        return;
    }
    read_round_bump(e);
    replication_send_all(e);
    replication_maybe_commit(e);
}

/* ------------------------------------------------------------------------------------
 * Commit and apply
 * ---------------------------------------------------------------------------------- */

void replication_advance_commit(struct yggr_engine *e, uint64_t commit)
{
    YGGR_ASSERT(commit > e->commit);
    YGGR_ASSERT(commit <= e->log.last);
    e->m.entries_committed += commit - e->commit;
    e->commit = commit;
    config_on_commit(e);
    if (e->role == YGGR_ROLE_LEADER) {
        read_release(e);
    }
}

/* Bootstrap entries (term 0, the founders' configuration) are committed by definition:
 * every founder writes the same ones, and a joiner gets them only from a leader. */
void replication_commit_bootstrap(struct yggr_engine *e)
{
    uint64_t end = log_bootstrap_end(&e->log);
    if (end > e->commit) {
        replication_advance_commit(e, end);
    }
    YGGR_ASSERT(e->commit >= end);
}

void replication_maybe_commit(struct yggr_engine *e)
{
    if (e->role != YGGR_ROLE_LEADER) {
        return;
    }
    uint64_t vals[YGGR_MAX_MEMBERS];
    uint32_t n = 0;
    if (config_self_voter(e)) {
        vals[n++] = e->durable;
    }
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS && n < YGGR_MAX_MEMBERS; s++) {
        const struct progress *p = &e->peers[s];
        if (p->id != 0 && p->voter) {
            vals[n++] = p->match;
        }
    }
    if (n == 0) {
        return;
    }
    uint64_t q = progress_quorum_value(vals, n);
    if (q > e->commit && log_term_at(&e->log, q) == e->term) {
        replication_advance_commit(e, q);
    }
}

void replication_apply(struct yggr_engine *e)
{
    if (e->applied >= e->commit) {
        return;
    }
    struct yggr_actions *act = e->act;
    uint64_t first = e->applied + 1;
    uint64_t count = min_u64(e->commit - e->applied, e->step_cap);
    act->apply.first_index = first;
    if (!log_is_cached(&e->log, first)) {
        YGGR_ASSERT(first >= e->log.first && first < e->log.cache_first);
        count = min_u64(count, e->log.cache_first - first);
        act->apply.entries = NULL;
        act->apply.from_storage = true;
    } else {
        const struct yggr_entry *run = NULL;
        uint32_t n = log_cached_run(&e->log, first, (uint32_t)count, &run);
        if (n == count) {
            act->apply.entries = run;
        } else {
            log_copy(&e->log, first, (uint32_t)count, e->apply_buf);
            act->apply.entries = e->apply_buf;
        }
    }
    act->apply.count = (uint32_t)count;
    act->flags |= YGGR_ACT_APPLY;
    e->applied += count;
    e->m.entries_applied += count;
    YGGR_ASSERT(e->applied <= e->commit);
}

/* ------------------------------------------------------------------------------------
 * Follower: AppendEntries requests
 * ---------------------------------------------------------------------------------- */

static bool append_valid(const struct yggr_msg *msg)
{
    const struct yggr_msg_append_request *req = &msg->as.append;
    if (req->from_storage || (req->entry_count > 0 && req->entries == NULL)) {
        return false;
    }
    if ((req->prev.index == 0 && req->prev.term != 0) || req->prev.term > msg->term) {
        return false;
    }
    uint64_t term = req->prev.term;
    for (uint32_t k = 0; k < req->entry_count; k++) {
        const struct yggr_entry *en = &req->entries[k];
        if (en->index != req->prev.index + 1 + k || en->term < term || en->term > msg->term ||
            en->type > YGGR_ENTRY_CONFIG || (en->len > 0 && en->data == NULL)) {
            return false;
        }
        if (en->term == 0 && en->type != YGGR_ENTRY_CONFIG) {
            return false; /* term 0 is reserved for the bootstrap configuration */
        }
        if (en->type == YGGR_ENTRY_CONFIG &&
            (en->node == 0 || en->change < YGGR_CHANGE_ADD_VOTER ||
             en->change > YGGR_CHANGE_PROMOTE_LEARNER)) {
            return false;
        }
        term = en->term;
    }
    return true;
}

static void reply_append(struct yggr_engine *e, uint64_t to, bool success, uint64_t value,
                         uint64_t conflict_term, uint64_t round)
{
    struct yggr_msg *m = engine_msg(e, YGGR_MSG_APPEND_RESPONSE, to);
    if (m == NULL) {
        return;
    }
    m->as.append_response.success = success;
    if (success) {
        m->as.append_response.last_appended = value;
    } else {
        m->as.append_response.hint = value > 0 ? value : 1;
        e->m.append_entries_rejected++;
    }
    if (!e->cfg.reference_wire) {
        m->as.append_response.conflict_term = conflict_term;
        m->as.append_response.round = round;
    }
}

static void send_ack(struct yggr_engine *e)
{
    YGGR_ASSERT(engine_term_durable(e));
    YGGR_ASSERT(e->ack.term == e->term);
    uint64_t claim = min_u64(e->ack.verified, e->durable);
    reply_append(e, e->ack.leader, true, claim, 0, e->ack.round);
    if (claim > e->ack.sent) {
        e->ack.sent = claim;
    }
    if (claim >= e->ack.verified) {
        e->ack.pending = false;
    }
}

void replication_flush_ack(struct yggr_engine *e)
{
    if (!e->ack.pending || e->ack.term != e->term || e->role != YGGR_ROLE_FOLLOWER ||
        !engine_term_durable(e)) {
        return;
    }
    uint64_t claim = min_u64(e->ack.verified, e->durable);
    if (claim > e->ack.sent || claim >= e->ack.verified) {
        send_ack(e);
    }
}

static void truncate_at(struct yggr_engine *e, uint64_t index)
{
    YGGR_ASSERT(index > e->commit);
    YGGR_ASSERT(e->truncate_from == 0 && e->append_from == 0);
    log_truncate(&e->log, index);
    config_on_truncate(e, index);
    e->truncate_from = index;
    e->durable = min_u64(e->durable, index - 1);
    e->ack.verified = min_u64(e->ack.verified, index - 1);
    e->ack.sent = min_u64(e->ack.sent, index - 1);
}

/* Walk the entries (Figure 2, receiver steps 3-4); returns the last verified index. */
static uint64_t process_entries(struct yggr_engine *e, const struct yggr_msg_append_request *req)
{
    uint64_t verified = req->prev.index;
    if (e->in.installing) {
        return verified; /* storage installs a snapshot first: append nothing meanwhile */
    }
    for (uint32_t k = 0; k < req->entry_count; k++) {
        const struct yggr_entry *en = &req->entries[k];
        if (en->index <= e->commit) {
            verified = en->index; /* committed: matches the leader's log */
            continue;
        }
        if (en->index <= e->log.last) {
            if (log_term_at(&e->log, en->index) == en->term) {
                verified = en->index;
                continue;
            }
            truncate_at(e, en->index);
        }
        if (!replication_append_entry(e, en, evict_limit(e))) {
            break; /* out of room: accept a prefix, claim less */
        }
        e->m.entries_appended++;
        verified = en->index;
    }
    return verified;
}

/* Prefix check; returns false after replying with a conflict. */
static bool prefix_matches(struct yggr_engine *e, const struct yggr_msg *msg)
{
    const struct yggr_msg_append_request *req = &msg->as.append;
    uint64_t prev = req->prev.index;
    if (prev <= e->commit) {
        return true;
    }
    if (!log_knows(&e->log, prev)) {
        reply_append(e, msg->from, false, e->log.last + 1, 0, req->round);
        return false;
    }
    uint64_t t = log_term_at(&e->log, prev);
    if (t == req->prev.term) {
        return true;
    }
    /* prev > commit >= the bootstrap prefix, so our entry there has a real term. */
    YGGR_ASSERT(t != 0 && prev >= e->log.first);
    uint64_t hint = log_term_first(&e->log, prev);
    reply_append(e, msg->from, false, hint > e->commit ? hint : e->commit + 1, t, req->round);
    return false;
}

void replication_receive_append(struct yggr_engine *e, const struct yggr_msg *msg)
{
    const struct yggr_msg_append_request *req = &msg->as.append;
    if (req->leader_id != msg->from || !append_valid(msg) ||
        (msg->term == e->term && e->role == YGGR_ROLE_LEADER)) {
        e->m.messages_dropped++;
        return;
    }
    e->m.append_entries_received++;
    if (msg->term < e->term) {
        reply_append(e, msg->from, false, e->log.last + 1, 0, req->round);
        return;
    }
    if (msg->term > e->term || e->role != YGGR_ROLE_FOLLOWER) {
        election_become_follower(e, msg->term);
    }
    election_accept_leader(e, msg->from);
    if (!prefix_matches(e, msg)) {
        return;
    }
    uint64_t verified = process_entries(e, req);
    replication_commit_bootstrap(e);
    uint64_t commit = min_u64(req->leader_commit, verified);
    if (commit > e->commit) {
        replication_advance_commit(e, commit);
    }
    if (verified > e->ack.verified) {
        e->ack.verified = verified;
    }
    if (req->round > e->ack.round) {
        e->ack.round = req->round;
    }
    e->ack.pending = true;
    if (verified <= e->durable && engine_term_durable(e)) {
        send_ack(e); /* nothing new to persist: answer now */
    }
}

/* ------------------------------------------------------------------------------------
 * Leader: AppendEntries responses
 * ---------------------------------------------------------------------------------- */

static void on_success(struct yggr_engine *e, struct progress *p, uint64_t index,
                       uint64_t round)
{
    bool at_probe = p->state == YGGR_PROGRESS_PROBE && index + 1 == p->next;
    bool moved = progress_record_success(p, index, e->tick);
    if (!moved && !at_probe) {
        return; /* stale (reordered, duplicated): says nothing new, so sends nothing (F7) */
    }
    if (moved && round > p->success_round) {
        p->success_round = round;
    }
    p->probe_sent = false;
    if (p->state == YGGR_PROGRESS_PROBE && (moved || at_probe)) {
        progress_become_replicate(p, e->tick);
    } else if (p->state == YGGR_PROGRESS_SNAPSHOT && moved && p->match + 1 >= e->log.first) {
        progress_become_replicate(p, e->tick);
    }
    if (p->state == YGGR_PROGRESS_REPLICATE) {
        progress_free_upto(p, p->match, e->cfg.max_inflight_msgs);
    }
    if (moved) {
        replication_maybe_commit(e);
        if (e->role != YGGR_ROLE_LEADER) {
            return;
        }
        transfer_on_progress(e, p);
    }
    replication_send(e, p);
}

static void on_conflict(struct yggr_engine *e, struct progress *p,
                        const struct yggr_msg_append_response *r)
{
    if (p->state == YGGR_PROGRESS_SNAPSHOT) {
        return;
    }
    /* A rejection of a request sent in a round before the last success that moved match
     * is stale: every entry above match went out in that round or later, so a real gap
     * shows up as a rejection of such a round. Demoting a replicating peer on a stale one
     * resends what it holds and restarts the window (sim F7). Without a round (reference
     * peers) every rejection counts. */
    if (p->state == YGGR_PROGRESS_REPLICATE && r->round != 0 && r->round < p->success_round) {
        return;
    }
    uint64_t next = r->hint > 0 ? r->hint : 1;
    if (r->conflict_term > 0) {
        uint64_t last_of_term = log_term_last(&e->log, r->conflict_term);
        if (last_of_term > 0) {
            next = last_of_term + 1; /* our run of that term ends before the conflict */
        }
    }
    next = min_u64(next, e->log.last + 1);
    if (next <= p->match) {
        next = p->match + 1;
    }
    if (p->state == YGGR_PROGRESS_PROBE && p->probe_sent && next == p->next) {
        return; /* a stale answer to an earlier probe of the same point */
    }
    progress_become_probe(p, next, e->tick);
    replication_send(e, p);
}

/* A response of the current term from p (AppendEntries or InstallSnapshot): p is alive,
 * and the round it echoes confirms reads and leases. A response without a round (a
 * reference peer) is credited, for read and lease confirmation only, with the round of
 * the OLDEST outstanding request: a lower bound. */
void replication_heard(struct yggr_engine *e, struct progress *p, uint64_t round)
{
    p->recent_active = true;
    p->heard_tick = e->tick;
    if (round == 0) {
        struct sent_req s = {0};
        (void)progress_sent_pop(p, &s);
        round = s.round;
    } else {
        progress_sent_drop_upto(p, round);
    }
    if (round > p->acked_round && round <= e->round) {
        p->acked_round = round;
    }
}

void replication_receive_append_response(struct yggr_engine *e, const struct yggr_msg *msg)
{
    struct progress *p = engine_peer(e, msg->from);
    const struct yggr_msg_append_response *r = &msg->as.append_response;
    if (p == NULL) {
        e->m.messages_dropped++;
        return;
    }
    if (election_observe_term(e, msg->term) || msg->term < e->term ||
        e->role != YGGR_ROLE_LEADER) {
        return;
    }
    if (r->round > e->round || (r->success && r->last_appended > e->log.last)) {
        e->m.messages_dropped++;
        return;
    }
    /* Replication never depends on which request a response answers: a success of this
     * term names an index that matches our log and is durable there, whatever it answers
     * (capping a round-less one at the oldest request, usually a heartbeat at match, held
     * a reference peer to one entry per heartbeat: sim F11). */
    replication_heard(e, p, r->round);
    if (r->success) {
        on_success(e, p, r->last_appended, r->round);
    } else {
        on_conflict(e, p, r);
    }
    if (e->role == YGGR_ROLE_LEADER) {
        read_release(e);
    }
}

void replication_log_persisted(struct yggr_engine *e, struct yggr_log_id id)
{
    if (id.index == 0 || id.index > e->log.last || log_term_at(&e->log, id.index) != id.term) {
        return; /* a report for entries since replaced */
    }
    if (id.index > e->durable) {
        e->durable = id.index;
    }
    if (e->role == YGGR_ROLE_LEADER) {
        replication_maybe_commit(e);
    } else {
        replication_flush_ack(e);
    }
    YGGR_ASSERT(e->durable <= e->log.last);
}
