/* SPDX-License-Identifier: MIT */
/* Engine membership: config_change, learner, the membership gate (REFERENCE 6.1). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

static void change(struct h_node *n, enum yggr_change_type type, uint64_t node)
{
    struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
    ev.as.change.type = type;
    ev.as.change.node = node;
    h_step(n, &ev);
    cr_assert(h_has(n, YGGR_ACT_RESULT));
}

static struct yggr_membership latest(const struct h_node *n)
{
    struct yggr_membership m;
    yggr_engine_config_latest(n->e, &m);
    return m;
}

static void commit_all(struct h_node *n)
{
    h_persist_all(n);
    struct yggr_msg ok = h_append_ok(2, 1, n->act.term, n->act.last_index, n->e->round);
    h_recv(n, &ok);
}

/* ---------------------------------------------------------------- config_change */

Test(config_change, add_voter_takes_effect_at_once_and_replicates_to_the_new_node)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_ADD_VOTER, 4);
    cr_assert(eq(int, n.act.result.err, 0));
    cr_assert(eq(u64, n.act.result.index, H_BOOT + 2));
    cr_assert(eq(u32, n.act.append.count, 1));
    cr_assert(eq(int, n.act.append.entries[0].type, YGGR_ENTRY_CONFIG));
    cr_assert(eq(u64, n.act.append.entries[0].node, 4));
    cr_assert(eq(u32, latest(&n).voter_count, 4));
    struct yggr_membership c;
    yggr_engine_config_committed(n.e, &c);
    cr_assert(eq(u32, c.voter_count, 3));
    cr_assert_not_null(h_find(&n, YGGR_MSG_APPEND_REQUEST, 4));
    h_fini(&n);
}

Test(config_change, the_address_is_carried_in_the_entry)
{
    struct h_node n;
    h_make_leader(&n);
    static const uint8_t addr[] = "10.0.0.4:7000";
    struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
    ev.as.change.type = YGGR_CHANGE_ADD_LEARNER;
    ev.as.change.node = 4;
    ev.as.change.addr = addr;
    ev.as.change.addr_len = 13;
    h_step(&n, &ev);
    cr_assert(eq(int, n.act.result.err, 0));
    const struct yggr_entry *e = &n.act.append.entries[0];
    cr_assert(eq(u32, e->len, 13));
    cr_assert(memcmp(e->data, addr, 13) == 0);
    cr_assert_not_null(e->buf);
    h_fini(&n);
}

Test(config_change, remove_voter_stops_replication_to_the_removed_peer)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_REMOVE_VOTER, 3);
    cr_assert(eq(int, n.act.result.err, 0));
    cr_assert_null(h_find(&n, YGGR_MSG_APPEND_REQUEST, 3));
    h_tick(&n);
    cr_assert_null(h_find(&n, YGGR_MSG_APPEND_REQUEST, 3));
    cr_assert(eq(u32, yggr_engine_progress(n.e, NULL, 0), 1));
    h_fini(&n);
}

Test(config_change, one_change_at_a_time_and_only_after_an_entry_of_the_term_committed)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    change(&n, YGGR_CHANGE_ADD_VOTER, 4);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_NOT_READY));
    commit_all(&n);
    change(&n, YGGR_CHANGE_ADD_VOTER, 4);
    cr_assert(eq(int, n.act.result.err, 0));
    change(&n, YGGR_CHANGE_ADD_VOTER, 5);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_CHANGE_IN_PROGRESS));
    h_persist_all(&n);
    struct yggr_msg ok3 = h_append_ok(3, 1, 1, H_BOOT + 2, n.e->round);
    h_recv(&n, &ok3);
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 1), "the new config needs 3 of 4");
    struct yggr_msg ok2 = h_append_ok(2, 1, 1, H_BOOT + 2, n.e->round);
    h_recv(&n, &ok2);
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 2));
    change(&n, YGGR_CHANGE_ADD_VOTER, 5);
    cr_assert(eq(int, n.act.result.err, 0));
    h_fini(&n);
}

Test(config_change, refusals_name_the_exact_reason)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_ADD_VOTER, 2);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_ALREADY_VOTER));
    change(&n, YGGR_CHANGE_ADD_VOTER, 1);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_ALREADY_VOTER));
    change(&n, YGGR_CHANGE_REMOVE_VOTER, 9);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_UNKNOWN_NODE));
    change(&n, YGGR_CHANGE_ADD_LEARNER, 2);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_ALREADY_LEARNER));
    change(&n, YGGR_CHANGE_PROMOTE_LEARNER, 3);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_NOT_LEARNER));
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)));
    h_fini(&n);
}

Test(config_change, non_leaders_answer_like_proposals)
{
    struct h_node f;
    h_make_follower(&f, 1);
    change(&f, YGGR_CHANGE_ADD_VOTER, 4);
    cr_assert(eq(int, f.act.result.err, YGGR_ERR_NOT_LEADER));
    cr_assert(eq(u64, f.act.result.leader_hint, 2));
    h_fini(&f);
    struct h_node c;
    h_init3(&c, 1);
    h_ticks(&c, 10);
    change(&c, YGGR_CHANGE_ADD_VOTER, 4);
    cr_assert(eq(int, c.act.result.err, YGGR_ERR_NO_LEADER));
    h_fini(&c);
}

Test(config_change, a_follower_adopts_a_config_entry_and_truncation_reverts_it)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_entry e[2] = {
        {.index = H_BOOT + 1, .term = 1, .type = YGGR_ENTRY_NOOP},
        {.index = H_BOOT + 2, .term = 1, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_REMOVE_VOTER,
         .node = 3},
    };
    struct yggr_msg ae = h_append(2, 1, 1, H_BOOT, 0, e, 2, 0);
    h_recv(&n, &ae);
    cr_assert(eq(u32, latest(&n).voter_count, 2));
    struct yggr_msg other = h_append(3, 1, 2, H_BOOT + 1, 1, h_entries(H_BOOT + 2, 2, 1), 1, 0);
    h_recv(&n, &other);
    cr_assert(eq(u64, n.act.append.truncate_from, H_BOOT + 2));
    cr_assert(eq(u32, latest(&n).voter_count, 3));
    h_fini(&n);
}

Test(config_change, a_leader_removing_itself_stops_counting_itself_and_steps_down_on_commit)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_REMOVE_VOTER, 1);
    cr_assert(eq(int, n.act.result.err, 0));
    h_persist_all(&n);
    struct yggr_msg ok2 = h_append_ok(2, 1, 1, H_BOOT + 2, n.e->round);
    h_recv(&n, &ok2);
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 1), "{2,3} need both: self no longer counts");
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    struct yggr_msg ok3 = h_append_ok(3, 1, 1, H_BOOT + 2, n.e->round);
    h_recv(&n, &ok3);
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 2));
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    h_ticks(&n, 40);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER), "a non-voter never campaigns");
    h_fini(&n);
}

Test(config_change, removing_another_peer_does_not_step_the_leader_down)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_REMOVE_VOTER, 3);
    commit_all(&n);
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 2));
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    h_fini(&n);
}

/* ---------------------------------------------------------------- learner */

Test(learner, add_learner_replicates_but_its_acks_never_make_a_quorum)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_ADD_LEARNER, 4);
    cr_assert(eq(u32, latest(&n).learner_count, 1));
    cr_assert_not_null(h_find(&n, YGGR_MSG_APPEND_REQUEST, 4));
    h_persist_all(&n);
    struct yggr_msg ok4 = h_append_ok(4, 1, 1, H_BOOT + 2, n.e->round);
    h_recv(&n, &ok4);
    cr_assert(eq(u64, h_progress(&n, 4).match_index, H_BOOT + 2), "learner acks are used");
    cr_assert(h_progress(&n, 4).learner);
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 1), "but they do not count");
    h_fini(&n);
}

Test(learner, promote_moves_a_learner_to_the_voters)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_ADD_LEARNER, 4);
    commit_all(&n);
    change(&n, YGGR_CHANGE_PROMOTE_LEARNER, 4);
    cr_assert(eq(int, n.act.result.err, 0));
    cr_assert(eq(u32, latest(&n).voter_count, 4));
    cr_assert(eq(u32, latest(&n).learner_count, 0));
    cr_assert(not(h_progress(&n, 4).learner));
    h_fini(&n);
}

Test(learner, a_learner_never_campaigns_but_answers_votes)
{
    static const uint64_t voters[3] = {1, 2, 3};
    static const uint64_t learners[1] = {4};
    struct h_node n;
    h_init_learners(&n, 4, voters, 3, learners, 1, NULL);
    h_ticks(&n, 50);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, h_metrics(&n).elections_started, 0));
    struct yggr_msg v = h_vote_req(2, 4, 1, 4, 0);
    h_recv(&n, &v);
    h_hs_persisted(&n);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 2)->as.vote_response.granted,
              "a promotion it has not seen yet may make its vote count (etcd does the same)");
    h_fini(&n);
}

Test(learner, a_new_leader_tracks_learners_too)
{
    static const uint64_t voters[3] = {1, 2, 3};
    static const uint64_t learners[1] = {4};
    struct h_node n;
    h_init_learners(&n, 1, voters, 3, learners, 1, NULL);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    cr_assert_not_null(h_find(&n, YGGR_MSG_APPEND_REQUEST, 4));
    cr_assert(h_progress(&n, 4).learner);
    cr_assert_null(h_find(&n, YGGR_MSG_VOTE_REQUEST, 4), "learners get no vote requests");
    h_fini(&n);
}

/* ---------------------------------------------------------------- membership (gate) */

Test(membership, a_leader_turns_a_non_member_candidate_away_without_a_term_change)
{
    struct h_node l;
    h_make_leader(&l);
    struct yggr_msg v = h_vote_req(9, 1, 5, 50, 4);
    v.as.vote_request.transfer = true; /* not even the transfer flag gets it through */
    h_recv(&l, &v);
    cr_assert(eq(u64, l.act.term, 1));
    cr_assert(eq(int, l.act.role, YGGR_ROLE_LEADER));
    const struct yggr_msg *r = h_find(&l, YGGR_MSG_VOTE_RESPONSE, 9);
    cr_assert(not(r->as.vote_response.granted));
    cr_assert(r->as.vote_response.removed);
    h_fini(&l);
}

/* Thesis 4.1: votes do not consult the voter's configuration. A node may not yet hold the
 * entry that made the candidate (or itself) a voter; the candidate counts only the votes of
 * its own configuration's voters. */
Test(membership, a_follower_answers_any_candidate_by_term_and_log_alone)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg stale = h_vote_req(9, 1, 5, 0, 0);
    h_recv(&n, &stale);
    cr_assert(not(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 9)->as.vote_response.granted),
              "its log is behind ours");
    cr_assert(not(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 9)->as.vote_response.removed),
              "only a leader says removed");
    struct yggr_msg v = h_vote_req(9, 1, 6, H_BOOT + 1, 2);
    h_recv(&n, &v);
    h_hs_persisted(&n);
    cr_assert(h_find(&n, YGGR_MSG_VOTE_RESPONSE, 9)->as.vote_response.granted);
    h_fini(&n);
}

Test(membership, body_ids_must_match_the_sender)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg v = h_vote_req(2, 1, 5, 0, 0);
    v.as.vote_request.candidate_id = 3;
    h_recv(&n, &v);
    struct yggr_msg ae = h_append(2, 1, 5, 0, 0, NULL, 0, 0);
    ae.as.append.leader_id = 3;
    h_recv(&n, &ae);
    cr_assert(eq(u64, h_metrics(&n).messages_dropped, 2));
    cr_assert(eq(u64, n.act.term, 0));
    h_fini(&n);
}

Test(membership, responses_from_non_members_touch_nothing)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(9, 1, 1, true);
    h_recv(&n, &g);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    h_fini(&n);
    struct h_node l;
    h_make_leader(&l);
    struct yggr_msg ok = h_append_ok(9, 1, 1, 1, 0);
    h_recv(&l, &ok);
    cr_assert(eq(u64, h_metrics(&l).messages_dropped, 1));
    h_fini(&l);
}

Test(membership, a_joiner_with_an_empty_config_waits_for_a_leader_and_learns_its_config)
{
    struct h_node n;
    h_init(&n, 4, NULL, 0, NULL);
    h_ticks(&n, 50);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, h_metrics(&n).elections_started, 0));
    struct yggr_entry e[4] = {
        {.index = 1, .term = 0, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER,
         .node = 1},
        {.index = 2, .term = 0, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER,
         .node = 2},
        {.index = 3, .term = 0, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER,
         .node = 3},
        {.index = 4, .term = 3, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_LEARNER,
         .node = 4}};
    struct yggr_msg ae = h_append(2, 4, 3, 0, 0, e, 4, 0);
    h_recv(&n, &ae);
    cr_assert(eq(u64, n.act.leader_id, 2));
    cr_assert(eq(u32, latest(&n).voter_count, 3), "the founders, from the bootstrap entries");
    cr_assert(eq(u32, latest(&n).learner_count, 1));
    cr_assert(eq(u64, n.act.commit_index, 3), "bootstrap entries are committed");
    h_fini(&n);
}
