/* SPDX-License-Identifier: MIT */
/* Engine replication: AppendEntries both ways, broadcast, proposals, persistence, flow. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

static const struct yggr_msg *resp_to(const struct h_node *n, uint64_t to)
{
    return h_find(n, YGGR_MSG_APPEND_RESPONSE, to);
}

/* Log index of the i-th entry after the fixture's bootstrap entries (term 0, 1..H_BOOT). */
#define X(i) (H_BOOT + (i))

/* Follower of 2 in `term` holding entries X(1)..X(count) of `term`, durable. */
static void follower_with(struct h_node *n, uint64_t term, uint32_t count)
{
    h_make_follower(n, term);
    struct yggr_msg ae = h_append(2, 1, term, X(0), 0, h_entries(X(1), term, count), count, 0);
    h_recv(n, &ae);
    h_persist_all(n);
}

/* ---------------------------------------------------------------- append_entries_request */

Test(append_entries_request, a_stale_term_is_rejected_without_state_change)
{
    struct h_node n;
    h_make_follower(&n, 2);
    struct yggr_msg ae = h_append(3, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &ae);
    const struct yggr_msg *r = resp_to(&n, 3);
    cr_assert(not(r->as.append_response.success));
    cr_assert(eq(u64, r->term, 2));
    cr_assert(r->as.append_response.hint >= 1, "decodable by the reference");
    cr_assert(eq(u64, n.act.leader_id, 2));
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    h_fini(&n);
}

Test(append_entries_request, a_higher_term_is_adopted_and_acknowledged_once_durable)
{
    struct h_node n;
    h_make_follower(&n, 2);
    struct yggr_msg ae = h_append(3, 1, 5, 0, 0, NULL, 0, 0);
    h_recv(&n, &ae);
    cr_assert(eq(u64, n.act.term, 5));
    cr_assert(h_has(&n, YGGR_ACT_HARD_STATE));
    cr_assert_null(resp_to(&n, 3), "a success never carries an undurable term");
    h_hs_persisted(&n);
    cr_assert(resp_to(&n, 3)->as.append_response.success);
    cr_assert(eq(u64, resp_to(&n, 3)->term, 5));
    h_fini(&n);
}

Test(append_entries_request, a_candidate_steps_down_on_a_current_term_leader_and_keeps_its_vote)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg ae = h_append(2, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &ae);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)), "vote kept: nothing to persist");
    h_fini(&n);
}

Test(append_entries_request, a_missing_prev_entry_answers_our_last_plus_one)
{
    struct h_node n;
    follower_with(&n, 1, 2);
    struct yggr_msg ae = h_append(2, 1, 1, X(5), 1, h_entries(X(6), 1, 1), 1, 0);
    h_recv(&n, &ae);
    const struct yggr_msg *r = resp_to(&n, 2);
    cr_assert(not(r->as.append_response.success));
    cr_assert(eq(u64, r->as.append_response.hint, X(3)));
    cr_assert(eq(u64, r->as.append_response.conflict_term, 0));
    h_fini(&n);
}

Test(append_entries_request, a_mismatched_prev_term_names_the_conflicting_term_and_its_start)
{
    struct h_node n;
    h_make_follower(&n, 2);
    static const uint64_t terms[6] = {1, 1, 2, 2, 2, 2};
    struct yggr_msg ae = h_append(2, 1, 2, X(0), 0, h_entries_terms(X(1), terms, 6), 6, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    struct yggr_msg probe = h_append(3, 1, 3, X(5), 3, NULL, 0, 0);
    h_recv(&n, &probe);
    h_hs_persisted(&n);
    h_recv(&n, &probe);
    const struct yggr_msg *r = resp_to(&n, 3);
    cr_assert(not(r->as.append_response.success));
    cr_assert(eq(u64, r->as.append_response.conflict_term, 2));
    cr_assert(eq(u64, r->as.append_response.hint, X(3)), "first index of term 2, <= prev");
    h_fini(&n);
}

Test(append_entries_request, accepts_from_an_empty_log_and_answers_after_persisting)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg ae = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 3), 3, 0);
    h_recv(&n, &ae);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(u32, n.act.append.count, 3));
    cr_assert(eq(u64, n.act.append.truncate_from, 0));
    cr_assert(eq(u64, n.act.append.entries[0].index, X(1)));
    cr_assert_null(resp_to(&n, 2), "the success waits for durability");
    h_log_persisted(&n, X(3), 1);
    cr_assert(resp_to(&n, 2)->as.append_response.success);
    cr_assert(eq(u64, resp_to(&n, 2)->as.append_response.last_appended, X(3)));
    h_fini(&n);
}

Test(append_entries_request, a_heartbeat_with_a_matching_prev_succeeds_at_once)
{
    struct h_node n;
    follower_with(&n, 1, 3);
    struct yggr_msg hb = h_append(2, 1, 1, X(3), 1, NULL, 0, 0);
    h_recv(&n, &hb);
    cr_assert(resp_to(&n, 2)->as.append_response.success);
    cr_assert(eq(u64, resp_to(&n, 2)->as.append_response.last_appended, X(3)));
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)));
    h_fini(&n);
}

Test(append_entries_request, truncates_and_replaces_a_conflicting_suffix)
{
    struct h_node n;
    follower_with(&n, 1, 5);
    struct yggr_msg ae = h_append(3, 1, 2, X(2), 1, h_entries(X(3), 2, 2), 2, 0);
    h_recv(&n, &ae);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(u64, n.act.append.truncate_from, X(3)));
    cr_assert(eq(u32, n.act.append.count, 2));
    cr_assert(eq(u64, n.act.last_index, X(4)));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, X(4)), 2));
    h_fini(&n);
}

Test(append_entries_request, redelivery_is_idempotent)
{
    struct h_node n;
    follower_with(&n, 1, 3);
    struct yggr_msg ae = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 3), 3, 0);
    h_recv(&n, &ae);
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)));
    cr_assert(eq(u64, resp_to(&n, 2)->as.append_response.last_appended, X(3)));
    cr_assert(eq(u64, n.act.last_index, X(3)));
    h_fini(&n);
}

Test(append_entries_request, leader_commit_is_capped_at_the_verified_index_and_applies_once)
{
    struct h_node n;
    follower_with(&n, 1, 5);
    struct yggr_msg hb = h_append(2, 1, 1, X(2), 1, NULL, 0, X(9));
    h_recv(&n, &hb);
    cr_assert(eq(u64, n.act.commit_index, X(2)), "commit = min(leader_commit, verified)");
    cr_assert(eq(u32, n.act.apply.count, 2));
    h_recv(&n, &hb);
    cr_assert(not(h_has(&n, YGGR_ACT_APPLY)), "never re-applies");
    struct yggr_msg hb5 = h_append(2, 1, 1, X(5), 1, NULL, 0, X(9));
    h_recv(&n, &hb5);
    cr_assert(eq(u64, n.act.commit_index, X(5)));
    cr_assert(eq(u64, n.act.apply.first_index, X(3)));
    cr_assert(eq(u32, n.act.apply.count, 3));
    h_fini(&n);
}

Test(append_entries_request, timer_resets_on_accepted_and_mismatched_but_not_stale_requests)
{
    struct h_node n;
    h_make_follower(&n, 2);
    h_ticks(&n, 9);
    struct yggr_msg mismatch = h_append(2, 1, 2, X(7), 2, NULL, 0, 0);
    h_recv(&n, &mismatch);
    h_ticks(&n, 9);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    struct yggr_msg stale = h_append(3, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &stale);
    h_tick(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    h_fini(&n);
}

Test(append_entries_request, committed_entries_are_never_truncated)
{
    struct h_node n;
    follower_with(&n, 1, 4);
    struct yggr_msg c = h_append(2, 1, 1, X(3), 1, NULL, 0, X(3));
    h_recv(&n, &c);
    cr_assert(eq(u64, n.act.commit_index, X(3)));
    static const uint64_t terms[2] = {9, 9};
    struct yggr_msg bad = h_append(2, 1, 9, X(1), 1, h_entries_terms(X(2), terms, 2), 2, 0);
    h_recv(&n, &bad);
    cr_assert(eq(u64, yggr_engine_term_at(n.e, X(2)), 1));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, X(3)), 1));
    h_fini(&n);
}

Test(append_entries_request, malformed_requests_are_dropped_and_counted)
{
    struct h_node n;
    h_make_follower(&n, 1);
    static const uint64_t terms[2] = {1, 0};
    struct yggr_msg bad = h_append(2, 1, 1, X(0), 0, h_entries_terms(X(1), terms, 2), 2, 0);
    h_recv(&n, &bad);
    struct yggr_msg gap = h_append(2, 1, 1, X(0), 0, h_entries(X(5), 1, 2), 2, 0);
    h_recv(&n, &gap);
    struct yggr_msg future = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 4, 1), 1, 0);
    h_recv(&n, &future);
    struct yggr_msg liar = h_append(3, 1, 1, 0, 0, NULL, 0, 0);
    liar.as.append.leader_id = 2;
    h_recv(&n, &liar);
    static const uint64_t boot[1] = {0};
    struct yggr_msg command0 = h_append(2, 1, 1, X(0), 0, h_entries_terms(X(1), boot, 1), 1, 0);
    h_recv(&n, &command0); /* term 0 is reserved for bootstrap CONFIG entries */
    struct yggr_msg prev0 = h_append(2, 1, 1, 0, 1, NULL, 0, 0);
    h_recv(&n, &prev0);
    cr_assert(eq(u64, h_metrics(&n).messages_dropped, 6));
    cr_assert(eq(u64, n.act.last_index, H_BOOT));
    h_fini(&n);
}

/* ---------------------------------------------------------------- append_entries_response */

Test(append_entries_response, a_higher_term_demotes_and_stale_or_non_leader_ones_are_ignored)
{
    struct h_node n;
    h_make_leader(&n);
    struct yggr_msg stale = h_append_ok(2, 1, 0, 1, 0);
    h_recv(&n, &stale);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    struct yggr_msg hi = h_append_conflict(2, 1, 9, 1, 0);
    h_recv(&n, &hi);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, n.act.term, 9));
    struct yggr_msg ok = h_append_ok(3, 1, 9, 1, 0);
    h_recv(&n, &ok);
    cr_assert(eq(u32, n.act.send.count, 0));
    h_fini(&n);
}

Test(append_entries_response, success_moves_that_peer_only_and_stale_success_never_rewinds)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 3);
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(4), 0);
    h_recv(&n, &ok);
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(4)));
    cr_assert(eq(u64, h_progress(&n, 3).match_index, X(1)));
    struct yggr_msg old = h_append_ok(2, 1, 1, X(2), 0);
    h_recv(&n, &old);
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(4)));
    cr_assert(h_progress(&n, 2).next_index >= X(5));
    h_fini(&n);
}

Test(append_entries_response, a_current_term_entry_commits_on_majority_and_applies_once)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 1);
    h_log_persisted(&n, X(2), 1);
    cr_assert(eq(u64, n.act.commit_index, X(1)), "no majority yet");
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(2), 0);
    h_recv(&n, &ok);
    cr_assert(eq(u64, n.act.commit_index, X(2)));
    cr_assert(eq(u32, n.act.apply.count, 1));
    cr_assert(eq(int, n.act.apply.entries[0].type, YGGR_ENTRY_COMMAND));
    h_recv(&n, &ok);
    cr_assert(not(h_has(&n, YGGR_ACT_APPLY)));
    h_fini(&n);
}

Test(append_entries_response, a_prior_term_entry_commits_only_with_a_current_term_one)
{
    struct h_node n;
    follower_with(&n, 1, 2);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(3, 1, 2, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    h_persist_all(&n);
    struct yggr_msg ok2 = h_append_ok(3, 1, 2, X(2), 0);
    h_recv(&n, &ok2);
    cr_assert(eq(u64, n.act.commit_index, X(0)), "Figure 8: term-1 entries wait");
    struct yggr_msg ok3 = h_append_ok(3, 1, 2, X(3), 0);
    h_recv(&n, &ok3);
    cr_assert(eq(u64, n.act.commit_index, X(3)));
    cr_assert(eq(u32, n.act.apply.count, 3));
    h_fini(&n);
}

Test(append_entries_response, a_conflict_rewinds_next_and_resends_only_to_that_peer)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 4);
    struct yggr_msg c = h_append_conflict(2, 1, 1, X(2), 0);
    h_recv(&n, &c);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 1));
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert(eq(u64, m->as.append.prev.index, X(1)));
    cr_assert(eq(u32, m->as.append.entry_count, 4));
    cr_assert(not(h_has(&n, YGGR_ACT_APPLY)));
    struct yggr_msg c1 = h_append_conflict(3, 1, 1, X(1), 0);
    h_recv(&n, &c1);
    h_recv(&n, &c1);
    h_fini(&n);
}

Test(append_entries_response, a_hint_past_the_log_is_clamped_and_a_success_past_it_ignored)
{
    struct h_node n;
    h_make_leader(&n);
    struct yggr_msg c = h_append_conflict(2, 1, 1, 50, 0);
    h_recv(&n, &c);
    cr_assert(eq(u64, h_progress(&n, 2).next_index, X(2)));
    struct yggr_msg ok = h_append_ok(2, 1, 1, 50, 0);
    h_recv(&n, &ok);
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(1)));
    cr_assert(eq(u64, h_metrics(&n).messages_dropped, 1));
    h_fini(&n);
}

Test(append_entries_response, conflict_term_backtracks_a_whole_term_per_round_trip)
{
    struct h_node n;
    h_make_follower(&n, 3);
    static const uint64_t terms[6] = {1, 1, 1, 3, 3, 3};
    struct yggr_msg ae = h_append(2, 1, 3, X(0), 0, h_entries_terms(X(1), terms, 6), 6, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(3, 1, 4, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    struct yggr_msg c = h_append_conflict(2, 1, 4, X(2), 1);
    h_recv(&n, &c);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert(eq(u64, m->as.append.prev.index, X(3)), "next = our last index of term 1, + 1");
    struct yggr_msg c2 = h_append_conflict(3, 1, 4, X(4), 2);
    h_recv(&n, &c2);
    cr_assert(eq(u64, h_find(&n, YGGR_MSG_APPEND_REQUEST, 3)->as.append.prev.index, X(3)),
              "we have no term 2: use the hint");
    h_fini(&n);
}

/* ---------------------------------------------------------------- broadcast */

Test(broadcast, a_fresh_leader_sends_the_noop_to_each_peer_after_the_previous_entry)
{
    struct h_node n;
    follower_with(&n, 1, 2);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 2, true);
    h_recv(&n, &g);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 3);
    cr_assert(eq(u64, m->term, 2));
    cr_assert(eq(u64, m->as.append.leader_id, 1));
    cr_assert(eq(u64, m->as.append.prev.index, X(2)));
    cr_assert(eq(u64, m->as.append.prev.term, 1));
    cr_assert(eq(u32, m->as.append.entry_count, 1));
    cr_assert(eq(int, m->as.append.entries[0].type, YGGR_ENTRY_NOOP));
    cr_assert(eq(u64, m->as.append.entries[0].term, 2));
    h_fini(&n);
}

Test(broadcast, non_leaders_send_no_append_entries)
{
    struct h_node n;
    h_make_follower(&n, 1);
    h_ticks(&n, 5);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 0));
    h_fini(&n);
}

Test(broadcast, heartbeats_carry_term_leader_commit_round_and_no_entries)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 2);
    h_tick(&n);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert(eq(u32, m->as.append.entry_count, 0), "never resend the unacknowledged log");
    cr_assert(eq(u64, m->as.append.leader_commit, X(1)));
    cr_assert(m->as.append.round > 0);
    cr_assert(eq(u64, m->as.append.prev.index, X(1)), "replicate: prev = match");
    h_fini(&n);
}

Test(broadcast, a_peer_at_next_one_gets_the_whole_log_from_the_start)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    h_propose(&n, 3);
    struct yggr_msg empty = h_append_conflict(3, 1, 1, 1, 0); /* a node with no log */
    h_recv(&n, &empty);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 3);
    cr_assert(eq(u64, m->as.append.prev.index, 0));
    cr_assert(eq(u64, m->as.append.prev.term, 0));
    cr_assert(eq(u32, m->as.append.entry_count, X(4)), "the bootstrap entries too");
    h_fini(&n);
}

/* ---------------------------------------------------------------- client_proposal */

Test(client_proposal, the_leader_appends_at_last_plus_one_and_sends_at_once)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 1);
    cr_assert(h_has(&n, YGGR_ACT_RESULT));
    cr_assert(eq(int, n.act.result.err, 0));
    cr_assert(eq(u64, n.act.result.index, X(2)));
    cr_assert(eq(u64, n.act.result.term, 1));
    cr_assert(eq(u32, n.act.append.count, 1));
    cr_assert(eq(u64, n.act.append.entries[0].index, X(2)));
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert_not_null(m, "sent while the local write is in flight");
    cr_assert(eq(u32, m->as.append.entry_count, 1));
    cr_assert(eq(u32, m->as.append.entries[0].len, 7));
    h_fini(&n);
}

Test(client_proposal, non_leaders_answer_not_leader_or_no_leader_and_never_grow_the_log)
{
    struct h_node f;
    h_make_follower(&f, 1);
    h_propose(&f, 2);
    cr_assert(eq(int, f.act.result.err, YGGR_ERR_NOT_LEADER));
    cr_assert(eq(u64, f.act.result.leader_hint, 2));
    cr_assert(eq(u64, f.act.last_index, X(0)));
    h_fini(&f);
    struct h_node c;
    h_init3(&c, 1);
    h_propose(&c, 1);
    cr_assert(eq(int, c.act.result.err, YGGR_ERR_NO_LEADER));
    h_ticks(&c, 10);
    h_propose(&c, 1);
    cr_assert(eq(int, c.act.result.err, YGGR_ERR_NO_LEADER), "candidate");
    cr_assert(eq(u64, h_metrics(&c).proposals_refused, 2));
    h_fini(&c);
}

Test(client_proposal, the_leader_hint_follows_the_latest_accepted_leader)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg hi = h_append(3, 1, 2, 0, 0, NULL, 0, 0);
    h_recv(&n, &hi);
    h_propose(&n, 1);
    cr_assert(eq(u64, n.act.result.leader_hint, 3));
    struct yggr_msg stale = h_append(2, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &stale);
    h_propose(&n, 1);
    cr_assert(eq(u64, n.act.result.leader_hint, 3), "a stale AE does not set the hint");
    struct yggr_msg vote = h_vote_req(2, 1, 9, 0, 0);
    vote.as.vote_request.transfer = true;
    h_recv(&n, &vote);
    h_propose(&n, 1);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_NO_LEADER), "stepping down clears it");
    h_fini(&n);
}

Test(client_proposal, a_batch_is_one_append_and_an_empty_batch_does_nothing)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 50);
    cr_assert(eq(u32, n.act.append.count, 50));
    cr_assert(eq(u32, n.act.result.count, 50));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    h_propose(&n, 0);
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)));
    cr_assert(eq(u32, n.act.result.count, 0));
    cr_assert(eq(int, n.act.result.err, 0));
    h_fini(&n);
}

Test(client_proposal, a_full_cache_accepts_a_prefix_then_answers_busy)
{
    struct yggr_engine_config c = h_config(1);
    c.log_cache_entries = 8;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    h_propose(&n, 10);
    cr_assert(eq(u32, n.act.result.count, 8 - X(1)), "8 slots: bootstrap entries, the no-op");
    h_propose(&n, 1);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_BUSY));
    h_fini(&n);
}

/* ---------------------------------------------------------------- persistence */

Test(persistence, rejecting_at_the_same_term_persists_nothing_but_a_higher_term_does)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg same = h_vote_req(3, 1, 1, 0, 0);
    h_recv(&n, &same);
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    h_ticks(&n, 10); /* forget the leader (becomes candidate at 2) */
    struct yggr_msg hi = h_vote_req(3, 1, 7, 0, 0);
    hi.as.vote_request.last.index = 0;
    h_recv(&n, &hi);
    cr_assert(h_has(&n, YGGR_ACT_HARD_STATE));
    cr_assert(eq(u64, n.act.hard_state.term, 7));
    h_fini(&n);
}

Test(persistence, a_follower_persists_new_entries_only)
{
    struct h_node n;
    follower_with(&n, 1, 2);
    struct yggr_msg again = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 2), 2, 0);
    h_recv(&n, &again);
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)));
    h_fini(&n);
}

Test(persistence, the_leader_persists_the_noop_and_proposals_in_the_step_that_sends_them)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(int, n.act.append.entries[0].type, YGGR_ENTRY_NOOP));
    cr_assert(h_has(&n, YGGR_ACT_SEND));
    h_fini(&n);
}

Test(persistence, the_leader_counts_itself_only_up_to_its_durable_index)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 1);
    struct yggr_msg ok2 = h_append_ok(2, 1, 1, X(2), 0);
    struct yggr_msg ok3 = h_append_ok(3, 1, 1, X(2), 0);
    h_recv(&n, &ok2);
    h_recv(&n, &ok3);
    cr_assert(eq(u64, n.act.commit_index, X(2)), "two peers are a majority without the leader");
    h_propose(&n, 1);
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(3), 0);
    h_recv(&n, &ok);
    cr_assert(eq(u64, n.act.commit_index, X(2)), "the leader's entry X(3) is not durable yet");
    h_log_persisted(&n, X(3), 1);
    cr_assert(eq(u64, n.act.commit_index, X(3)));
    h_fini(&n);
}

Test(persistence, deferred_successes_are_coalesced_into_one)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg a = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 2), 2, 0);
    struct yggr_msg b = h_append(2, 1, 1, X(2), 1, h_entries(X(3), 1, 2), 2, 0);
    h_recv(&n, &a);
    cr_assert_null(resp_to(&n, 2));
    h_recv(&n, &b);
    cr_assert_null(resp_to(&n, 2));
    h_log_persisted(&n, X(4), 1);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_RESPONSE), 1));
    cr_assert(eq(u64, resp_to(&n, 2)->as.append_response.last_appended, X(4)));
    h_fini(&n);
}

Test(persistence, a_report_for_replaced_entries_is_ignored)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg a = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 3), 3, 0);
    h_recv(&n, &a);
    struct yggr_msg b = h_append(3, 1, 2, X(1), 1, h_entries(X(2), 2, 2), 2, 0);
    h_recv(&n, &b);
    h_hs_persisted(&n);
    h_log_persisted(&n, X(3), 1); /* the old write finishing */
    cr_assert_null(resp_to(&n, 3));
    h_log_persisted(&n, X(3), 2);
    cr_assert(eq(u64, resp_to(&n, 3)->as.append_response.last_appended, X(3)));
    h_fini(&n);
}

/* ---------------------------------------------------------------- flow control */

static void leader_replicating(struct h_node *n, struct yggr_engine_config *c)
{
    static const uint64_t ids[3] = {1, 2, 3};
    h_init(n, 1, ids, 3, c);
    h_ticks(n, 10);
    h_hs_persisted(n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(n, &g);
    h_persist_all(n);
    struct yggr_msg ok2 = h_append_ok(2, 1, 1, X(1), 0);
    struct yggr_msg ok3 = h_append_ok(3, 1, 1, X(1), 0);
    h_recv(n, &ok2);
    h_recv(n, &ok3);
    cr_assert(eq(int, h_progress(n, 2).state, YGGR_PROGRESS_REPLICATE));
}

Test(flow_control, replicate_pipelines_up_to_the_window_and_acks_free_it)
{
    struct yggr_engine_config c = h_config(1);
    c.max_inflight_msgs = 3;
    struct h_node n;
    leader_replicating(&n, &c);
    for (int i = 0; i < 3; i++) {
        h_propose(&n, 1);
        cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    }
    h_propose(&n, 1);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 0), "window full");
    cr_assert(h_metrics(&n).append_windows_full >= 2);
    cr_assert(eq(u32, h_progress(&n, 2).inflight_msgs, 3));
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(3), 0);
    h_recv(&n, &ok);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert_not_null(m, "the freed window sends what waited");
    cr_assert(eq(u64, m->as.append.prev.index, X(4)));
    h_fini(&n);
}

Test(flow_control, messages_respect_the_entry_and_byte_caps)
{
    struct yggr_engine_config c = h_config(1);
    c.max_append_entries = 4;
    c.max_append_bytes = 20; /* 7-byte commands: at most 2 per message */
    struct h_node n;
    leader_replicating(&n, &c);
    h_propose(&n, 5);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 6));
    for (uint32_t i = 0; i < n.act.send.count; i++) {
        cr_assert(n.act.send.msgs[i].as.append.entry_count <= 2);
    }
    h_fini(&n);
}

Test(flow_control, entries_older_than_the_cache_go_out_from_storage)
{
    struct yggr_engine_config c = h_config(1);
    c.log_cache_entries = 8;
    struct h_node n;
    leader_replicating(&n, &c);
    for (int i = 0; i < 4; i++) {
        h_propose(&n, 4);
        h_persist_all(&n);
        struct yggr_msg ok = h_append_ok(3, 1, 1, n.act.last_index, n.e->round);
        h_recv(&n, &ok);
    }
    cr_assert(eq(u64, n.act.commit_index, X(17)), "commit %llu last %llu", (unsigned long long)n.act.commit_index, (unsigned long long)n.act.last_index);
    struct yggr_msg c2 = h_append_conflict(2, 1, 1, X(2), 0);
    h_recv(&n, &c2);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert(m->as.append.from_storage);
    cr_assert_null(m->as.append.entries);
    cr_assert(eq(u64, m->as.append.prev.index, X(1)));
    cr_assert(m->as.append.entry_count >= 1);
    h_fini(&n);
}

Test(flow_control, a_stalled_replicate_peer_is_probed_again)
{
    struct yggr_engine_config c = h_config(1);
    struct h_node n;
    leader_replicating(&n, &c);
    h_propose(&n, 2);
    struct yggr_msg ok3 = h_append_ok(3, 1, 1, X(3), 0);
    for (int i = 0; i < 10; i++) {
        h_recv(&n, &ok3);
        h_tick(&n);
    }
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_PROBE));
    cr_assert(eq(u64, h_progress(&n, 2).next_index, X(2)));
    h_fini(&n);
}
