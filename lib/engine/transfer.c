/* SPDX-License-Identifier: MIT */
/* Leadership transfer: catch the target up, send TimeoutNow, time out, resume. */
/*
 * Design notes (Raft thesis 3.10)
 *
 * "The prior leader stops accepting new client requests", brings the target's log up to
 * date, then sends it TimeoutNow; the target starts an election at once. Fixes REFERENCE
 * 8.2 #16: the target skips pre-vote and sets `transfer` in its RequestVote so followers
 * that still hear from the old leader grant anyway (stickiness is bypassed for it only).
 *
 * States on the leader: idle ──TRANSFER──▶ catching up ──match == last──▶ TimeoutNow sent
 *   └─ election_timeout_min ticks without stepping down: abandoned (transfers_timed_out),
 *      proposals resume. Stepping down to a higher term after TimeoutNow counts as done.
 * While a transfer runs, PROPOSE and CHANGE answer TRANSFER_IN_PROGRESS, and once
 * TimeoutNow is out the lease is revoked for the rest of the term.
 */
#include "engine_internal.h"

void transfer_end(struct yggr_engine *e, bool completed)
{
    YGGR_ASSERT(e->transfer_target != 0);
    if (completed) {
        e->m.transfers_completed++;
    }
    e->transfer_target = 0;
    e->transfer_sent = false;
}

void transfer_on_progress(struct yggr_engine *e, struct progress *p)
{
    if (e->transfer_target != p->id || e->transfer_sent || p->match != e->log.last ||
        !engine_term_durable(e)) {
        return;
    }
    struct yggr_msg *m = engine_msg(e, YGGR_MSG_TIMEOUT_NOW, p->id);
    if (m == NULL) {
        return;
    }
    m->as.timeout_now.leader_id = e->id;
    e->transfer_sent = true;
    e->lease_revoked = true;
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
}

void transfer_request(struct yggr_engine *e, uint64_t target)
{
    if (e->role != YGGR_ROLE_LEADER) {
        engine_result_not_leader(e);
        return;
    }
    if (e->transfer_target != 0) {
        engine_result(e, YGGR_ERR_TRANSFER_IN_PROGRESS, 0, 0);
        return;
    }
    struct progress *p = engine_peer(e, target);
    if (target == e->id || p == NULL || !p->voter) {
        engine_result(e, YGGR_ERR_INVALID_TARGET, 0, 0);
        return;
    }
    e->transfer_target = target;
    e->transfer_start = e->tick;
    e->transfer_sent = false;
    e->m.transfers_started++;
    engine_result(e, 0, 0, 0);
    transfer_on_progress(e, p);
    if (!e->transfer_sent) {
        replication_send(e, p);
    }
    YGGR_ASSERT(e->transfer_target == target);
}

void transfer_tick(struct yggr_engine *e)
{
    if (e->transfer_target != 0 &&
        e->tick - e->transfer_start >= e->cfg.election_timeout_min_ticks) {
        e->m.transfers_timed_out++;
        transfer_end(e, false);
    }
}

void transfer_receive_timeout_now(struct yggr_engine *e, const struct yggr_msg *msg)
{
    if (msg->as.timeout_now.leader_id != msg->from) {
        e->m.messages_dropped++;
        return;
    }
    if (msg->term != e->term || e->role != YGGR_ROLE_FOLLOWER || e->leader_id != msg->from ||
        !election_can_campaign(e)) {
        return;
    }
    election_campaign(e, true);
    YGGR_ASSERT(e->role != YGGR_ROLE_FOLLOWER);
}
