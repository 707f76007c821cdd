/* SPDX-License-Identifier: MIT */
/* Leader election: timers, pre-vote, RequestVote, stickiness, check-quorum, step-down. */
/*
 * Design notes
 *
 * Roles (Raft paper 5.2, thesis 9.6 for pre-vote):
 *
 *   FOLLOWER ──timeout, pre_vote──▶ PRE_CANDIDATE ──majority of pre-votes──▶ CANDIDATE
 *      ▲  └──timeout, no pre_vote / TimeoutNow──────────────────────────────▶ CANDIDATE
 *      │                                                                        │
 *      └──── higher term, current-term leader, check-quorum, removal ◀── LEADER ◀┘ majority
 *
 * "If election timeout elapses without receiving AppendEntries RPC from current leader or
 * granting vote to candidate: convert to candidate" (Figure 2). Only voters of the latest
 * configuration campaign; learners, joiners (empty configuration) and nodes a leader told
 * they were removed only re-arm their timer (REFERENCE 8.2 #14, #21). Every node, member or
 * not, ANSWERS (pre-)votes by term, log and stickiness alone (thesis 4.1, as etcd): a new
 * voter may not know yet that it is one, and its vote is needed.
 *
 * Durability: a candidate's RequestVotes go out only once storage reported its (term,
 * vote = self) durable, and a vote grant only once (term, vote = candidate) is durable: the
 * engine keeps them pending and emits them on HARD_STATE_PERSISTED. A single voter, whose
 * own vote is a quorum, likewise becomes leader only once (term, self) is durable: a leader
 * of a term it could forget after a crash would reuse that term (sim finding F2).
 * Rejections and the pre-vote exchange persist nothing.
 *
 * Leader stickiness (thesis 4.2.3): a node that heard from a live leader within the
 * minimum election timeout (or is the leader) refuses pre-votes and real RequestVotes
 * unless the request carries the transfer flag; a refused real vote does not bump the term.
 * Check-quorum: a leader that has not heard from a majority of voters (itself included)
 * within one minimum election timeout steps down at the same term (REFERENCE 8.2 #19).
 *
 * Invariants: at most one vote per term (vote only changes from 0 in a term); a candidate
 * and a leader have voted for themselves; the term never decreases.
 */
#include <string.h>

#include "engine_internal.h"

void election_reset_timer(struct yggr_engine *e)
{
    e->election_elapsed = 0;
    e->election_timeout = engine_draw_timeout(e);
    YGGR_ASSERT(e->election_timeout >= 1);
}

/* A voter of the latest configuration campaigns; so does a voter of the committed one
 * whose removal is still uncommitted in its log (a leader that appended its own removal and
 * crashed may hold the only copy of that entry, and the others cannot win without its vote
 * while it refuses them as less up to date: it must be able to finish the change itself).
 * Either way the votes are counted in the latest configuration, self counted only if in it. */
bool election_can_campaign(const struct yggr_engine *e)
{
    if (e->removed) {
        return false;
    }
    const struct yggr_membership *committed = config_at(&e->conf, e->commit);
    return config_self_voter(e) ||
           (committed != NULL && yggr_membership_is_voter(committed, e->id));
}

bool election_leader_recent(const struct yggr_engine *e)
{
    if (e->role == YGGR_ROLE_LEADER) {
        return true;
    }
    return e->role == YGGR_ROLE_FOLLOWER && e->leader_id != 0 &&
           e->tick - e->leader_contact_tick < e->cfg.election_timeout_min_ticks;
}

/* Record `leader` as the current leader (an accepted AppendEntries or snapshot chunk). */
void election_accept_leader(struct yggr_engine *e, uint64_t leader)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_FOLLOWER);
    YGGR_ASSERT(leader != 0 && leader != e->id);
    e->leader_id = leader;
    e->leader_contact_tick = e->tick;
    election_reset_timer(e);
    if (e->ack.term != e->term || e->ack.leader != leader) {
        memset(&e->ack, 0, sizeof(e->ack));
        e->ack.term = e->term;
        e->ack.leader = leader;
    }
}

void election_become_follower(struct yggr_engine *e, uint64_t term)
{
    YGGR_ASSERT(term >= e->term);
    bool higher = term > e->term;
    if (higher) {
        e->term = term;
        e->vote = 0;
        e->m.higher_term_stepdowns++;
    }
    if (e->role == YGGR_ROLE_LEADER) {
        read_fail_all(e);
        if (e->transfer_target != 0) {
            transfer_end(e, e->transfer_sent && higher);
        }
    }
    e->role = YGGR_ROLE_FOLLOWER;
    e->leader_id = 0;
    e->votes_pending = false;
    YGGR_ASSERT(e->role == YGGR_ROLE_FOLLOWER);
}

bool election_observe_term(struct yggr_engine *e, uint64_t term)
{
    if (term <= e->term) {
        return false;
    }
    election_become_follower(e, term);
    return true;
}

static uint32_t granted_votes(const struct yggr_engine *e)
{
    uint32_t n = config_self_voter(e) ? 1 : 0;
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        const struct progress *p = &e->peers[s];
        if (p->id != 0 && p->voter && p->vote_granted) {
            n++;
        }
    }
    return n;
}

static bool has_quorum(const struct yggr_engine *e, uint32_t count)
{
    return count > config_voter_count(e) / 2;
}

static void clear_grants(struct yggr_engine *e)
{
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        e->peers[s].vote_granted = false;
    }
}

static void send_vote_requests(struct yggr_engine *e, bool pre)
{
    struct yggr_log_id last = {e->log.last, log_last_term(&e->log)};
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        const struct progress *p = &e->peers[s];
        if (p->id == 0 || !p->voter) {
            continue;
        }
        struct yggr_msg *m =
            engine_msg(e, pre ? YGGR_MSG_PRE_VOTE_REQUEST : YGGR_MSG_VOTE_REQUEST, p->id);
        if (m == NULL) {
            return;
        }
        m->term = pre ? e->term + 1 : e->term;
        m->as.vote_request.candidate_id = e->id;
        m->as.vote_request.last = last;
        m->as.vote_request.transfer = !pre && e->campaign_transfer && !e->cfg.reference_wire;
    }
    if (!pre) {
        e->votes_pending = false;
    }
}

static void campaign(struct yggr_engine *e, bool transfer)
{
    YGGR_ASSERT(election_can_campaign(e));
    YGGR_ASSERT(e->role != YGGR_ROLE_LEADER);
    e->term++;
    e->vote = e->id;
    e->role = YGGR_ROLE_CANDIDATE;
    e->leader_id = 0;
    e->campaign_transfer = transfer;
    e->votes_pending = true;
    election_reset_timer(e);
    clear_grants(e);
    /* The new term was just bumped, so (term, self) is not durable yet: RequestVotes wait
     * for HARD_STATE_PERSISTED, and so does a single voter's win (its own durable vote is
     * its only grant; winning earlier lets it reuse the term after a crash, sim F2). */
    YGGR_ASSERT(!engine_term_durable(e));
}

/* (term, self) is durable: ask for votes, or win at once when self is a quorum alone. */
static void campaign_durable(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_CANDIDATE);
    YGGR_ASSERT(engine_term_durable(e) && e->durable_vote == e->id);
    /* The election really starts now: give the votes a whole timeout (a slow disk must not
     * eat the candidate's own timeout, or every election restarts before it completes). */
    election_reset_timer(e);
    send_vote_requests(e, false);
    if (has_quorum(e, granted_votes(e))) {
        replication_become_leader(e); /* single voter: no one to ask */
    }
}

static void pre_campaign(struct yggr_engine *e)
{
    YGGR_ASSERT(election_can_campaign(e));
    e->role = YGGR_ROLE_PRE_CANDIDATE;
    e->leader_id = 0;
    election_reset_timer(e);
    clear_grants(e);
    if (has_quorum(e, granted_votes(e))) {
        campaign(e, false);
        return;
    }
    send_vote_requests(e, true);
    YGGR_ASSERT(e->role == YGGR_ROLE_PRE_CANDIDATE);
}

void election_campaign(struct yggr_engine *e, bool transfer)
{
    e->m.elections_started++;
    campaign(e, transfer);
}

void election_tick(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role != YGGR_ROLE_LEADER);
    e->election_elapsed++;
    if (e->election_elapsed < e->election_timeout) {
        return;
    }
    if (!election_can_campaign(e)) {
        election_reset_timer(e);
        return;
    }
    if (e->cfg.pre_vote) {
        e->m.elections_started++;
        pre_campaign(e);
    } else {
        election_campaign(e, false);
    }
}

/* Raft paper 5.4.1: the candidate's log is at least as up-to-date as ours. */
static bool log_up_to_date(const struct yggr_engine *e, struct yggr_log_id last)
{
    uint64_t our_term = log_last_term(&e->log);
    return last.term > our_term || (last.term == our_term && last.index >= e->log.last);
}

static void reply_vote(struct yggr_engine *e, const struct yggr_msg *req, bool granted,
                       bool removed)
{
    bool pre = req->type == YGGR_MSG_PRE_VOTE_REQUEST;
    struct yggr_msg *m =
        engine_msg(e, pre ? YGGR_MSG_PRE_VOTE_RESPONSE : YGGR_MSG_VOTE_RESPONSE, req->from);
    if (m == NULL) {
        return;
    }
    m->as.vote_response.granted = granted;
    m->as.vote_response.removed = removed && !e->cfg.reference_wire;
    YGGR_ASSERT(!granted || pre || e->durable_vote == req->from);
}

static void count_vote(struct yggr_engine *e, bool pre, bool granted)
{
    if (pre) {
        *(granted ? &e->m.pre_votes_granted : &e->m.pre_votes_denied) += 1;
    } else {
        *(granted ? &e->m.votes_granted : &e->m.votes_denied) += 1;
    }
}

static void handle_pre_vote(struct yggr_engine *e, const struct yggr_msg *msg)
{
    const struct yggr_msg_vote_request *req = &msg->as.vote_request;
    bool grant = msg->term > e->term && log_up_to_date(e, req->last) &&
                 !election_leader_recent(e);
    count_vote(e, true, grant);
    reply_vote(e, msg, grant, false);
}

static void handle_vote(struct yggr_engine *e, const struct yggr_msg *msg)
{
    const struct yggr_msg_vote_request *req = &msg->as.vote_request;
    bool sticky = !req->transfer && election_leader_recent(e);
    if (msg->term < e->term || (msg->term > e->term && sticky)) {
        count_vote(e, false, false);
        reply_vote(e, msg, false, false);
        return;
    }
    election_observe_term(e, msg->term);
    sticky = !req->transfer && election_leader_recent(e);
    bool grant = !sticky && (e->vote == 0 || e->vote == msg->from) &&
                 log_up_to_date(e, req->last);
    count_vote(e, false, grant);
    if (!grant) {
        reply_vote(e, msg, false, false);
        return;
    }
    e->vote = msg->from;
    election_reset_timer(e);
    if (engine_term_durable(e) && e->durable_vote == msg->from) {
        reply_vote(e, msg, true, false);
    } else {
        e->grant_to = msg->from; /* emitted on HARD_STATE_PERSISTED */
        e->grant_term = e->term;
    }
}

void election_receive_vote_request(struct yggr_engine *e, const struct yggr_msg *msg)
{
    bool pre = msg->type == YGGR_MSG_PRE_VOTE_REQUEST;
    YGGR_ASSERT(pre || msg->type == YGGR_MSG_VOTE_REQUEST);
    if (msg->as.vote_request.candidate_id != msg->from) {
        e->m.messages_dropped++;
        return;
    }
    /* Votes are granted without consulting our own configuration (Raft thesis 4.1: "servers
     * process incoming RPC requests without consulting their current configurations"): a
     * node added as a voter may not have received the entry that says so, and the
     * candidate only counts votes of nodes that are voters in ITS configuration. Refusing
     * there left a cluster whose new voter had not caught up without any electable node
     * (sim, all features + heal). Only a leader turns a non-member away, and tells a
     * removed one so (REFERENCE 8.2 #21). */
    if (e->role == YGGR_ROLE_LEADER && !config_is_voter(e, msg->from)) {
        bool removed = !config_committed_member(e, msg->from);
        count_vote(e, pre, false);
        reply_vote(e, msg, false, removed);
        return;
    }
    if (pre) {
        handle_pre_vote(e, msg);
    } else {
        handle_vote(e, msg);
    }
}

static void handle_removed(struct yggr_engine *e, const struct yggr_msg *msg)
{
    e->removed = true;
    if (!election_observe_term(e, msg->term) && e->role != YGGR_ROLE_LEADER) {
        e->role = YGGR_ROLE_FOLLOWER; /* stop campaigning; still accept a leader */
        e->votes_pending = false;
    }
    YGGR_ASSERT(e->removed);
}

void election_receive_vote_response(struct yggr_engine *e, const struct yggr_msg *msg)
{
    bool pre = msg->type == YGGR_MSG_PRE_VOTE_RESPONSE;
    const struct yggr_msg_vote_response *r = &msg->as.vote_response;
    struct progress *p = engine_peer(e, msg->from);
    if (p == NULL || !p->voter) {
        e->m.messages_dropped++;
        return;
    }
    if (r->removed && !r->granted && msg->term >= e->term) {
        handle_removed(e, msg);
        return;
    }
    if (msg->term > e->term) {
        if (!r->granted) {
            election_become_follower(e, msg->term);
        }
        return;
    }
    if (!r->granted) {
        return;
    }
    if (pre && e->role == YGGR_ROLE_PRE_CANDIDATE) {
        p->vote_granted = true;
        if (has_quorum(e, granted_votes(e))) {
            campaign(e, false);
        }
    } else if (!pre && e->role == YGGR_ROLE_CANDIDATE && msg->term == e->term) {
        p->vote_granted = true;
        if (has_quorum(e, granted_votes(e))) {
            replication_become_leader(e);
        }
    }
}

void election_hard_state_persisted(struct yggr_engine *e, uint64_t term, uint64_t vote)
{
    YGGR_ASSERT(term <= e->term);
    if (term > e->durable_term) {
        e->durable_term = term;
        e->durable_vote = vote;
    } else if (term == e->durable_term && vote != 0) {
        e->durable_vote = vote;
    }
    if (e->grant_to != 0 && e->grant_term != e->term) {
        e->grant_to = 0; /* the term moved on: the grant is void */
    }
    if (!engine_term_durable(e)) {
        return;
    }
    if (e->role == YGGR_ROLE_CANDIDATE && e->votes_pending && e->durable_vote == e->id) {
        campaign_durable(e);
    }
    if (e->grant_to != 0 && e->durable_vote == e->grant_to) {
        struct yggr_msg req = {.type = YGGR_MSG_VOTE_REQUEST, .from = e->grant_to};
        e->grant_to = 0;
        reply_vote(e, &req, true, false);
    }
    if (e->role == YGGR_ROLE_LEADER) {
        replication_send_all(e);
    }
    replication_flush_ack(e);
    snapshot_flush_reply(e);
}

void election_check_quorum(struct yggr_engine *e)
{
    YGGR_ASSERT(e->role == YGGR_ROLE_LEADER);
    if (!e->cfg.check_quorum) {
        return;
    }
    if (++e->quorum_elapsed < e->cfg.election_timeout_min_ticks) {
        return;
    }
    e->quorum_elapsed = 0;
    uint32_t active = config_self_voter(e) ? 1 : 0;
    for (uint32_t s = 0; s < ENGINE_MAX_PEERS; s++) {
        struct progress *p = &e->peers[s];
        if (p->id != 0 && p->voter && p->recent_active) {
            active++;
        }
        p->recent_active = false;
    }
    if (config_voter_count(e) > 0 && !has_quorum(e, active)) {
        e->m.check_quorum_stepdowns++;
        election_become_follower(e, e->term);
    }
}
