/* SPDX-License-Identifier: MIT */
/* Linearizable reads: ReadIndex with per-request rounds, and leader leases. */
/*
 * Design notes
 *
 * ReadIndex (Raft thesis 6.4): the leader records its commit index as the read index,
 * confirms it is still the leader by a round of heartbeats acknowledged by a majority,
 * and the read runs once the state machine applied up to the read index (the host waits
 * for that: READY carries the index).
 *
 * Rounds fix REFERENCE 8.1 #3: every AppendEntries carries the leader's current round;
 * a follower echoes the highest round it received this term, so an acknowledgement is
 * credited with the round of a request the follower really saw. A read queued at round R
 * is ready when a majority of voters (the leader counts with its current round) have
 * acknowledged a round >= R. Reads batch: while one read round is in flight, new reads
 * wait for the next round, sent as soon as the in-flight one is confirmed (or by the next
 * heartbeat, which always starts a new round). Responses without a round are credited
 * with the oldest outstanding request (progress.c), a lower bound.
 *
 * Leases (thesis 6.4.1; REFERENCE 8.1 #4): a lease starts at the SEND tick of the round a
 * majority acknowledged and lasts lease_duration_ticks, which validation keeps below
 * election_timeout_min - heartbeat and allows only with pre-vote (stickiness: followers
 * that heard from the leader refuse to vote). Sending TimeoutNow revokes the lease for the
 * rest of the term (a transfer vote bypasses stickiness); a new term starts without one.
 *
 * Invariants: queued reads are in non-decreasing round order; read_count <=
 * max_pending_reads; only a leader has queued reads (step-down fails them all).
 */
#include "engine_internal.h"

uint64_t read_round_bump(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
    e->round++;
    struct round_tick *rt = &e->round_ticks[e->round % ROUND_TICKS];
    rt->round = e->round;
    rt->tick = e->tick;
    YGGR_ASSERT(e->round > 0);
    return e->round;
}

uint64_t read_majority_round(const struct yggr_engine *e)
{
    uint64_t vals[YGGR_MAX_MEMBERS];
    uint32_t n = 0;
    if (config_self_voter(e)) {
        vals[n++] = e->round;
    }
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS && n < YGGR_MAX_MEMBERS; s++) {
        const struct progress *p = &e->peers[s];
        if (p->id != 0 && p->voter) {
            vals[n++] = p->acked_round;
        }
    }
    return n == 0 ? 0 : progress_quorum_value(vals, n);
}

static bool lease_valid(const struct yggr_engine *e)
{
    if (e->cfg.lease_duration_ticks == 0 || e->lease_revoked) {
        return false;
    }
    uint64_t r = read_majority_round(e);
    const struct round_tick *rt = &e->round_ticks[r % ROUND_TICKS];
    if (r == 0 || rt->round != r) {
        return false; /* too old to remember: no lease */
    }
    return e->tick < rt->tick + e->cfg.lease_duration_ticks;
}

static bool self_quorum(const struct yggr_engine *e)
{
    return config_self_voter(e) && config_voter_count(e) == 1;
}

static struct pending_read *read_at(struct yggr_engine *e, uint32_t k)
{
    return &e->reads[(e->read_head + k) % e->cfg.max_pending_reads];
}

void read_request(struct yggr_engine *e, uint64_t id)
{
    if (e->role != YGGR_ROLE_LEADER) {
        engine_read_result(e, id, e->leader_id != 0 ? YGGR_READ_NOT_LEADER : YGGR_READ_NOT_READY,
                           0);
        return;
    }
    if (log_term_at(&e->log, e->commit) != e->term) {
        engine_read_result(e, id, YGGR_READ_NOT_READY, 0);
        return;
    }
    if (lease_valid(e) && e->applied >= e->commit) {
        engine_read_result(e, id, YGGR_READ_READY, e->commit);
        return;
    }
    if (e->read_count == e->cfg.max_pending_reads) {
        engine_read_result(e, id, YGGR_READ_BUSY, 0);
        return;
    }
    e->m.read_index_started++;
    if (self_quorum(e)) {
        engine_read_result(e, id, YGGR_READ_READY, e->commit);
        return;
    }
    struct pending_read *r = read_at(e, e->read_count);
    r->id = id;
    r->index = e->commit;
    if (e->read_count > 0 && read_at(e, e->read_count - 1)->round >= e->round) {
        r->round = e->round + 1; /* a read round is in flight: batch into the next */
        e->read_round_wanted = true;
    } else {
        r->round = read_round_bump(e);
        replication_heartbeat(e);
    }
    e->read_count++;
    YGGR_ASSERT(e->read_count <= e->cfg.max_pending_reads);
}

void read_release(struct yggr_engine *e)
{
    if (e->role != YGGR_ROLE_LEADER || e->read_count == 0) {
        return;
    }
    uint64_t confirmed = read_majority_round(e);
    while (e->read_count > 0 && read_at(e, 0)->round <= confirmed) {
        struct pending_read *r = read_at(e, 0);
        engine_read_result(e, r->id, YGGR_READ_READY, r->index);
        e->read_head = (e->read_head + 1) % e->cfg.max_pending_reads;
        e->read_count--;
    }
    if (e->read_round_wanted && e->read_count > 0 && read_at(e, 0)->round > e->round) {
        e->read_round_wanted = false;
        read_round_bump(e);
        replication_heartbeat(e);
    }
}

void read_fail_all(struct yggr_engine *e)
{
    while (e->read_count > 0) {
        engine_read_result(e, read_at(e, 0)->id, YGGR_READ_STEPPED_DOWN, 0);
        e->read_head = (e->read_head + 1) % e->cfg.max_pending_reads;
        e->read_count--;
    }
    e->read_round_wanted = false;
    YGGR_ASSERT(e->read_count == 0);
}
