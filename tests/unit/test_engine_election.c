/* SPDX-License-Identifier: MIT */
/* Engine elections: tick, vote_request, vote_response, pre_vote, env (REFERENCE 6.1). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

/* ---------------------------------------------------------------- tick */

Test(tick, nothing_happens_before_the_timeout_and_election_fires_exactly_at_it)
{
    struct h_node n;
    h_init3(&n, 1);
    for (int i = 0; i < 9; i++) {
        h_tick(&n);
        cr_assert(eq(u32, n.act.send.count, 0));
        cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    }
    h_tick(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    h_fini(&n);
}

Test(tick, starting_an_election_bumps_term_votes_for_self_and_persists_first)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    cr_assert(eq(u64, n.act.term, 1));
    cr_assert(h_has(&n, YGGR_ACT_HARD_STATE));
    cr_assert(eq(u64, n.act.hard_state.term, 1));
    cr_assert(eq(u64, n.act.hard_state.vote, 1));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_VOTE_REQUEST), 0), "RequestVote before durable");
    h_hs_persisted(&n);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_VOTE_REQUEST), 2));
    for (uint64_t to = 2; to <= 3; to++) {
        const struct yggr_msg *m = h_find(&n, YGGR_MSG_VOTE_REQUEST, to);
        cr_assert_not_null(m);
        cr_assert(eq(u64, m->term, 1));
        cr_assert(eq(u64, m->as.vote_request.candidate_id, 1));
        cr_assert(eq(u64, m->as.vote_request.last.index, H_BOOT), "the bootstrap entries");
        cr_assert(eq(u64, m->as.vote_request.last.term, 0));
    }
    h_fini(&n);
}

Test(tick, request_vote_carries_the_last_log_id_when_the_log_is_not_empty)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg ae = h_append(2, 1, 1, H_BOOT, 0, h_entries(H_BOOT + 1, 1, 3), 3, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_VOTE_REQUEST, 3);
    cr_assert_not_null(m);
    cr_assert(eq(u64, m->as.vote_request.last.index, H_BOOT + 3));
    cr_assert(eq(u64, m->as.vote_request.last.term, 1));
    h_fini(&n);
}

Test(tick, a_candidate_whose_timer_expires_starts_a_new_election)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    cr_assert(eq(u64, n.act.term, 1));
    h_ticks(&n, 10);
    cr_assert(eq(u64, n.act.term, 2));
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    cr_assert(eq(u64, h_metrics(&n).elections_started, 2));
    h_fini(&n);
}

Test(tick, leader_heartbeats_every_interval_and_never_campaigns)
{
    struct h_node n;
    h_make_leader(&n);
    uint64_t term = n.act.term;
    for (int i = 0; i < 50; i++) {
        h_tick(&n);
        cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
        cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    }
    cr_assert(eq(u64, n.act.term, term));
    h_fini(&n);
}

Test(tick, heartbeat_interval_of_three_sends_every_third_tick)
{
    struct yggr_engine_config c = h_config(1);
    c.heartbeat_interval_ticks = 3;
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    uint64_t r0 = n.e->round;
    h_ticks(&n, 2);
    cr_assert(eq(u64, n.e->round, r0));
    h_tick(&n);
    cr_assert(eq(u64, n.e->round, r0 + 1));
    h_fini(&n);
}

/* ---------------------------------------------------------------- vote_request */

Test(vote_request, grants_vote_when_candidate_log_is_up_to_date)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg r = h_vote_req(2, 1, 1, H_BOOT, 0);
    h_recv(&n, &r);
    cr_assert(h_has(&n, YGGR_ACT_HARD_STATE));
    cr_assert(eq(u64, n.act.hard_state.vote, 2));
    cr_assert_null(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 2), "grant before the vote is durable");
    h_hs_persisted(&n);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_VOTE_RESPONSE, 2);
    cr_assert_not_null(m);
    cr_assert(m->as.vote_response.granted);
    cr_assert(eq(u64, m->term, 1));
    h_fini(&n);
}

Test(vote_request, catches_up_to_a_higher_term_before_deciding)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg r = h_vote_req(2, 1, 7, H_BOOT, 0);
    h_recv(&n, &r);
    cr_assert(eq(u64, n.act.term, 7));
    h_hs_persisted(&n);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 2)->as.vote_response.granted);
    h_fini(&n);
}

Test(vote_request, rejects_a_stale_term_without_state_change)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg r = h_vote_req(2, 1, 5, H_BOOT, 0);
    h_recv(&n, &r);
    h_hs_persisted(&n);
    struct yggr_msg s = h_vote_req(3, 1, 3, 9, 9);
    h_recv(&n, &s);
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3);
    cr_assert(not(m->as.vote_response.granted));
    cr_assert(eq(u64, m->term, 5));
    h_fini(&n);
}

Test(vote_request, rejects_a_second_candidate_in_the_same_term_and_regrants_the_first)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg r = h_vote_req(2, 1, 1, H_BOOT, 0);
    h_recv(&n, &r);
    h_hs_persisted(&n);
    struct yggr_msg s = h_vote_req(3, 1, 1, H_BOOT, 0);
    h_recv(&n, &s);
    cr_assert(not(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3)->as.vote_response.granted));
    h_recv(&n, &r);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 2)->as.vote_response.granted,
              "a durable re-grant is answered at once");
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    h_fini(&n);
}

Test(vote_request, a_higher_term_clears_the_old_vote)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg r = h_vote_req(2, 1, 1, H_BOOT, 0);
    h_recv(&n, &r);
    h_hs_persisted(&n);
    struct yggr_msg s = h_vote_req(3, 1, 2, H_BOOT, 0);
    h_recv(&n, &s);
    cr_assert(eq(u64, n.act.hard_state.term, 2));
    cr_assert(eq(u64, n.act.hard_state.vote, 3));
    h_fini(&n);
}

Test(vote_request, granting_resets_the_election_timer_and_rejecting_does_not)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 9);
    struct yggr_msg r = h_vote_req(2, 1, 1, H_BOOT, 0);
    h_recv(&n, &r);
    h_ticks(&n, 9);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    struct yggr_msg s = h_vote_req(3, 1, 1, H_BOOT, 0);
    h_recv(&n, &s); /* rejected: same term, voted for 2 */
    h_tick(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    h_fini(&n);
}

Test(vote_request, rejects_a_candidate_with_a_less_up_to_date_log)
{
    struct h_node n;
    h_make_follower(&n, 2);
    struct yggr_msg ae = h_append(2, 1, 2, H_BOOT, 0, h_entries(H_BOOT + 1, 2, 3), 3, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    h_ticks(&n, 10); /* forget the leader */
    struct yggr_msg older = h_vote_req(3, 1, 5, 9, 1);
    h_recv(&n, &older);
    cr_assert(not(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3)->as.vote_response.granted));
    struct yggr_msg shorter = h_vote_req(3, 1, 6, H_BOOT + 2, 2);
    h_recv(&n, &shorter);
    cr_assert(not(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3)->as.vote_response.granted));
    h_fini(&n);
}

Test(vote_request, grants_same_last_term_with_equal_or_longer_log_and_higher_last_term)
{
    struct h_node n;
    h_make_follower(&n, 2);
    struct yggr_msg ae = h_append(2, 1, 2, H_BOOT, 0, h_entries(H_BOOT + 1, 2, 3), 3, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    h_ticks(&n, 10);
    struct yggr_msg same = h_vote_req(3, 1, 5, H_BOOT + 3, 2);
    h_recv(&n, &same);
    h_hs_persisted(&n);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3)->as.vote_response.granted);
    struct yggr_msg higher = h_vote_req(2, 1, 6, 1, 4);
    h_recv(&n, &higher);
    h_hs_persisted(&n);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 2)->as.vote_response.granted);
    h_fini(&n);
}

Test(vote_request, refuses_votes_while_a_leader_is_live_without_bumping_the_term)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg r = h_vote_req(3, 1, 2, H_BOOT, 0);
    h_recv(&n, &r);
    cr_assert(eq(u64, n.act.term, 1), "a refused vote does not bump the term");
    cr_assert(not(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3)->as.vote_response.granted));
    r.as.vote_request.transfer = true;
    h_recv(&n, &r);
    cr_assert(eq(u64, n.act.term, 2));
    h_hs_persisted(&n);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 3)->as.vote_response.granted);
    h_fini(&n);
}

Test(vote_request, property_never_grants_two_candidates_in_one_term)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct h_node n;
        h_init3(&n, 1);
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        uint64_t granted_to[16] = {0};
        for (int i = 0; i < 60; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t from = 2 + x % 2;
            uint64_t term = 1 + (x >> 8) % 6;
            struct yggr_msg r = h_vote_req(from, 1, term, (x >> 16) % 3, (x >> 20) % 3);
            uint64_t before = n.act.term;
            h_recv(&n, &r);
            cr_assert(n.act.term >= before);
            if ((x >> 30) % 2) {
                h_hs_persisted(&n);
            }
            const struct yggr_msg *m = h_find(&n, YGGR_MSG_VOTE_RESPONSE, 0);
            if (m != NULL && m->as.vote_response.granted) {
                uint64_t to = m->to;
                cr_assert(granted_to[m->term] == 0 || granted_to[m->term] == to);
                granted_to[m->term] = to;
            }
            if (m != NULL) {
                cr_assert(eq(u64, m->term, n.act.term), "response carries our term");
            }
        }
        h_fini(&n);
    }
}

/* ---------------------------------------------------------------- vote_response */

static void make_candidate(struct h_node *n, uint64_t id, uint32_t nodes)
{
    uint64_t ids[5] = {1, 2, 3, 4, 5};
    h_init(n, id, ids, nodes, NULL);
    h_ticks(n, 10);
    h_hs_persisted(n);
    cr_assert(eq(int, n->act.role, YGGR_ROLE_CANDIDATE));
}

Test(vote_response, three_nodes_need_one_peer_grant_and_duplicates_are_idempotent)
{
    struct h_node n;
    make_candidate(&n, 1, 3);
    struct yggr_msg no = h_vote_resp(2, 1, 1, false);
    h_recv(&n, &no);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "a rejection does not count");
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    uint32_t won = (uint32_t)h_metrics(&n).leader_elections_won;
    h_recv(&n, &g);
    cr_assert(eq(u32, (uint32_t)h_metrics(&n).leader_elections_won, won));
    h_fini(&n);
}

Test(vote_response, five_nodes_need_two_distinct_grants)
{
    struct h_node n;
    make_candidate(&n, 1, 5);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "duplicates cannot fake a majority");
    struct yggr_msg g3 = h_vote_resp(3, 1, 1, true);
    h_recv(&n, &g3);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    h_fini(&n);
}

Test(vote_response, a_higher_term_demotes_and_a_stale_term_is_ignored)
{
    struct h_node n;
    make_candidate(&n, 1, 3);
    struct yggr_msg stale = h_vote_resp(2, 1, 0, true);
    h_recv(&n, &stale);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    struct yggr_msg higher = h_vote_resp(3, 1, 4, false);
    h_recv(&n, &higher);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, n.act.term, 4));
    cr_assert(h_has(&n, YGGR_ACT_HARD_STATE));
    h_fini(&n);
}

Test(vote_response, late_responses_after_the_election_are_ignored)
{
    struct h_node n;
    h_make_leader(&n);
    struct yggr_msg g = h_vote_resp(3, 1, n.act.term, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    h_fini(&n);
    struct h_node f;
    h_init3(&f, 1);
    struct yggr_msg g2 = h_vote_resp(2, 1, 0, true);
    h_recv(&f, &g2);
    cr_assert(eq(int, f.act.role, YGGR_ROLE_FOLLOWER));
    h_fini(&f);
}

Test(vote_response, becoming_leader_starts_every_peer_at_the_noop_with_match_zero)
{
    struct h_node n;
    make_candidate(&n, 1, 3);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    cr_assert(eq(u64, n.act.last_index, H_BOOT + 1));
    for (uint64_t p = 2; p <= 3; p++) {
        struct yggr_peer_progress pr = h_progress(&n, p);
        cr_assert(eq(u64, pr.match_index, 0));
        cr_assert(eq(u64, pr.next_index, H_BOOT + 1));
        cr_assert(eq(int, pr.state, YGGR_PROGRESS_PROBE));
    }
    h_fini(&n);
}

Test(vote_response, a_single_node_cluster_elects_itself_once_its_vote_is_durable)
{
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, NULL);
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "its own vote is not durable yet");
    h_hs_persisted(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    cr_assert(eq(u64, n.act.commit_index, 1), "the bootstrap entry; the no-op once durable");
    h_persist_all(&n);
    cr_assert(eq(u64, n.act.commit_index, 2));
    cr_assert(eq(u32, n.act.apply.count, 1));
    cr_assert(eq(int, n.act.apply.entries[0].type, YGGR_ENTRY_NOOP));
    h_fini(&n);
}

/* ---------------------------------------------------------------- pre_vote */

static void init_prevote(struct h_node *n, uint64_t id)
{
    struct yggr_engine_config c = h_config(id);
    c.pre_vote = true;
    static const uint64_t ids[3] = {1, 2, 3};
    h_init(n, id, ids, 3, &c);
}

Test(pre_vote, expired_timer_sends_pre_votes_for_term_plus_one_without_changing_state)
{
    struct h_node n;
    init_prevote(&n, 1);
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_PRE_CANDIDATE));
    cr_assert(eq(u64, n.act.term, 0));
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_PRE_VOTE_REQUEST), 2));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_VOTE_REQUEST), 0));
    cr_assert(eq(u64, h_find(&n, YGGR_MSG_PRE_VOTE_REQUEST, 2)->term, 1));
    h_fini(&n);
}

Test(pre_vote, a_majority_of_pre_votes_makes_a_candidate)
{
    struct h_node n;
    init_prevote(&n, 1);
    h_ticks(&n, 10);
    struct yggr_msg no = h_prevote_resp(3, 1, 0, false);
    h_recv(&n, &no);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_PRE_CANDIDATE), "a rejection keeps pre-candidate");
    struct yggr_msg g = h_prevote_resp(2, 1, 0, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    cr_assert(eq(u64, n.act.term, 1));
    h_hs_persisted(&n);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_VOTE_REQUEST), 2));
    cr_assert(eq(u64, h_metrics(&n).elections_started, 1), "a promoted pre-vote counts once");
    h_fini(&n);
}

Test(pre_vote, a_higher_term_response_demotes_and_later_responses_are_ignored)
{
    struct h_node n;
    init_prevote(&n, 1);
    h_ticks(&n, 10);
    struct yggr_msg hi = h_prevote_resp(3, 1, 5, false);
    h_recv(&n, &hi);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, n.act.term, 5));
    struct yggr_msg g = h_prevote_resp(2, 1, 5, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    h_fini(&n);
}

Test(pre_vote, a_current_term_append_entries_interrupts_the_pre_election)
{
    struct h_node n;
    init_prevote(&n, 1);
    h_ticks(&n, 10);
    struct yggr_msg hb = h_append(2, 1, 0, 0, 0, NULL, 0, 0);
    h_recv(&n, &hb);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, n.act.leader_id, 2));
    h_fini(&n);
}

Test(pre_vote, pre_vote_off_keeps_the_classic_behaviour)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    h_fini(&n);
}

Test(pre_vote, responder_grants_without_a_recent_leader_and_never_changes_its_term)
{
    struct h_node n;
    init_prevote(&n, 1);
    struct yggr_msg r = h_prevote_req(2, 1, 1, H_BOOT, 0);
    h_recv(&n, &r);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_PRE_VOTE_RESPONSE, 2);
    cr_assert(m->as.vote_response.granted);
    cr_assert(eq(u64, m->term, 0), "replies with its own term");
    cr_assert(eq(u64, n.act.term, 0));
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    h_fini(&n);
}

Test(pre_vote, responder_rejects_within_the_timeout_of_a_leader_and_grants_after)
{
    struct h_node n;
    init_prevote(&n, 1);
    struct yggr_msg hb = h_append(2, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &hb);
    h_ticks(&n, 9);
    struct yggr_msg r = h_prevote_req(3, 1, 2, H_BOOT, 0);
    h_recv(&n, &r);
    cr_assert(not(h_find(&n, YGGR_MSG_PRE_VOTE_RESPONSE, 3)->as.vote_response.granted));
    h_tick(&n); /* elapsed = timeout: our own pre-election starts, the leader is gone */
    h_recv(&n, &r);
    cr_assert(h_find(&n, YGGR_MSG_PRE_VOTE_RESPONSE, 3)->as.vote_response.granted);
    h_fini(&n);
}

Test(pre_vote, responder_rejects_stale_logs_and_a_proposed_term_equal_to_its_own)
{
    struct h_node n;
    init_prevote(&n, 1);
    struct yggr_msg hb = h_append(2, 1, 3, H_BOOT, 0, h_entries(H_BOOT + 1, 3, 2), 2, 0);
    h_recv(&n, &hb);
    h_persist_all(&n);
    h_ticks(&n, 10);
    struct yggr_msg stale = h_prevote_req(3, 1, 4, 1, 3);
    h_recv(&n, &stale);
    cr_assert(not(h_find(&n, YGGR_MSG_PRE_VOTE_RESPONSE, 3)->as.vote_response.granted));
    struct yggr_msg same = h_prevote_req(3, 1, 3, 5, 3);
    h_recv(&n, &same);
    cr_assert(not(h_find(&n, YGGR_MSG_PRE_VOTE_RESPONSE, 3)->as.vote_response.granted));
    cr_assert(eq(u64, h_metrics(&n).pre_votes_denied, 2));
    h_fini(&n);
}

/* ---------------------------------------------------------------- env */

static struct yggr_engine *env_engine(uint64_t seed, uint32_t min, uint32_t max)
{
    struct yggr_engine_config c = h_config(1);
    c.seed = seed;
    c.election_timeout_min_ticks = min;
    c.election_timeout_max_ticks = max;
    c.heartbeat_interval_ticks = 1;
    struct yggr_engine *e = NULL;
    cr_assert_eq(yggr_engine_create(&c, &e), 0);
    return e;
}

Test(env, timeouts_stay_in_range_cover_it_and_are_not_constant)
{
    struct yggr_engine *e = env_engine(42, 10, 20);
    bool seen[20] = {false};
    for (int i = 0; i < 2000; i++) {
        uint32_t t = engine_draw_timeout(e);
        cr_assert(t >= 10 && t < 20);
        seen[t] = true;
    }
    for (int t = 10; t < 20; t++) {
        cr_assert(seen[t], "timeout %d never drawn", t);
    }
    yggr_engine_destroy(e);
}

Test(env, the_sequence_depends_on_the_seed_and_repeats_for_the_same_seed)
{
    struct yggr_engine *a = env_engine(7, 10, 1000);
    struct yggr_engine *b = env_engine(7, 10, 1000);
    struct yggr_engine *c = env_engine(8, 10, 1000);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t x = engine_draw_timeout(a);
        cr_assert(eq(u32, x, engine_draw_timeout(b)));
        differ += x != engine_draw_timeout(c);
    }
    cr_assert(differ > 50);
    yggr_engine_destroy(a);
    yggr_engine_destroy(b);
    yggr_engine_destroy(c);
}

Test(env, seed_zero_does_not_lock_up)
{
    struct yggr_engine *e = env_engine(0, 10, 1000);
    uint32_t first = engine_draw_timeout(e);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        same += engine_draw_timeout(e) == first;
    }
    cr_assert(same < 10);
    yggr_engine_destroy(e);
}
