/* SPDX-License-Identifier: MIT */
/* Regressions: one test per REFERENCE section 8 defect in the engine's scope. Each one would
 * fail on the reference's behaviour. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

/* Allocation counting for 8.3 #30: this binary wraps malloc & co; only the test thread's
 * calls made while `counting` is set are counted. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
static _Thread_local bool counting;
static _Thread_local unsigned long counted;

void *malloc(size_t size)
{
    counted += counting;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    counted += counting;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    counted += counting;
    return __libc_realloc(p, size);
}

void free(void *p)
{
    __libc_free(p);
}

static void change(struct h_node *n, enum yggr_change_type type, uint64_t node)
{
    struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
    ev.as.change.type = type;
    ev.as.change.node = node;
    h_step(n, &ev);
}

static void commit_all(struct h_node *n)
{
    h_persist_all(n);
    struct yggr_msg ok = h_append_ok(2, 1, n->act.term, n->act.last_index, n->e->round);
    h_recv(n, &ok);
    struct yggr_msg ok3 = h_append_ok(3, 1, n->act.term, n->act.last_index, n->e->round);
    h_recv(n, &ok3);
}

static void taken(struct h_node *n, uint64_t index, uint64_t size)
{
    struct yggr_event ev = {.type = YGGR_EVENT_SNAPSHOT_TAKEN};
    ev.as.snapshot_taken.last.index = index;
    ev.as.snapshot_taken.last.term = yggr_engine_term_at(n->e, index);
    ev.as.snapshot_taken.size = size;
    h_step(n, &ev);
}

/* ---------------------------------------------------------------- 8.1 safety */

Test(regress, ref_8_1_1_snapshot_config_includes_the_node_that_took_it)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 2);
    commit_all(&n);
    taken(&n, 3, 10);
    cr_assert(yggr_membership_is_voter(&n.e->snap.config, 1));
    cr_assert(eq(u32, n.e->snap.config.voter_count, 3));
    h_fini(&n);
}

Test(regress, ref_8_1_2_a_second_snapshot_keeps_changes_compacted_into_the_first)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_ADD_LEARNER, 4);
    commit_all(&n);
    taken(&n, 2, 10);
    h_propose(&n, 2);
    commit_all(&n);
    taken(&n, 4, 10);
    cr_assert(yggr_membership_is_learner(&n.e->snap.config, 4));
    h_fini(&n);
}

Test(regress, ref_8_1_3_a_late_ack_of_an_earlier_round_does_not_confirm_a_read)
{
    struct h_node n;
    h_make_leader(&n);
    h_tick(&n);
    uint64_t before = h_find(&n, YGGR_MSG_APPEND_REQUEST, 2)->as.append.round;
    h_read(&n, 1);
    struct yggr_msg late = h_append_ok(2, 1, 1, 1, before);
    h_recv(&n, &late);
    struct yggr_msg late3 = h_append_ok(3, 1, 1, 1, before);
    h_recv(&n, &late3);
    cr_assert_null(h_read_result(&n, 1), "reference: credited with the latest stamp");
    h_fini(&n);
}

Test(regress, ref_8_1_4_leases_need_pre_vote_and_a_bounded_duration)
{
    struct yggr_engine_config c;
    yggr_engine_config_init(&c, 1);
    c.lease_duration_ticks = 10;
    cr_assert(eq(int, yggr_engine_config_validate(&c, NULL, 0), YGGR_ERR_CONFIG));
    c.lease_duration_ticks = 5;
    c.pre_vote = false;
    cr_assert(eq(int, yggr_engine_config_validate(&c, NULL, 0), YGGR_ERR_CONFIG));
    yggr_engine_config_init(&c, 1);
    cr_assert(eq(u32, c.lease_duration_ticks, 0), "off by default");
}

Test(regress, ref_8_1_6_no_membership_change_before_an_entry_of_the_term_commits)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    change(&n, YGGR_CHANGE_ADD_VOTER, 4);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_NOT_READY));
    h_fini(&n);
}

Test(regress, ref_8_1_7_a_leader_removing_itself_stops_counting_itself)
{
    struct h_node n;
    h_make_leader(&n);
    change(&n, YGGR_CHANGE_REMOVE_VOTER, 1);
    h_persist_all(&n);
    struct yggr_msg ok = h_append_ok(2, 1, 1, 2, n.e->round);
    h_recv(&n, &ok);
    cr_assert(eq(u64, n.act.commit_index, 1), "reference: leader + 2 commit the removal");
    h_fini(&n);
}

Test(regress, ref_8_1_8_promoting_self_keeps_the_config_consistent)
{
    static const uint64_t voters[3] = {1, 2, 3};
    static const uint64_t learners[1] = {4};
    struct h_node n;
    h_init_learners(&n, 4, voters, 3, learners, 1, NULL);
    struct yggr_entry e[1] = {{.index = 1, .term = 1, .type = YGGR_ENTRY_CONFIG,
                               .change = YGGR_CHANGE_PROMOTE_LEARNER, .node = 4}};
    struct yggr_msg ae = h_append(2, 4, 1, 0, 0, e, 1, 0);
    h_recv(&n, &ae);
    struct yggr_membership m;
    yggr_engine_config_latest(n.e, &m);
    cr_assert(eq(u32, m.voter_count, 4));
    cr_assert(eq(u32, m.learner_count, 0));
    cr_assert(eq(u32, yggr_engine_progress(n.e, NULL, 0), 3), "self is never a peer");
    h_fini(&n);
}

Test(regress, ref_8_1_9_a_success_claims_only_what_the_request_proved)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg ae = h_append(2, 1, 1, 0, 0, h_entries(1, 1, 5), 5, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    struct yggr_msg hb = h_append(3, 1, 2, 2, 1, NULL, 0, 5);
    h_recv(&n, &hb);
    h_hs_persisted(&n);
    const struct yggr_msg *r = h_find(&n, YGGR_MSG_APPEND_RESPONSE, 3);
    cr_assert(eq(u64, r->as.append_response.last_appended, 2), "reference: whole log (5)");
    cr_assert(eq(u64, n.act.commit_index, 2), "reference: min(5, last) = 5");
    h_fini(&n);
}

Test(regress, ref_8_1_13_every_reply_is_decodable_by_the_reference)
{
    struct h_node n;
    h_make_follower(&n, 3);
    struct yggr_msg stale = h_append(2, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &stale);
    cr_assert(h_find(&n, YGGR_MSG_APPEND_RESPONSE, 2)->as.append_response.hint >= 1);
    struct yggr_msg hb = h_append(2, 1, 3, 0, 0, NULL, 0, 0);
    h_recv(&n, &hb);
    const struct yggr_msg *ok = h_find(&n, YGGR_MSG_APPEND_RESPONSE, 2);
    cr_assert(ok->as.append_response.success);
    cr_assert(eq(u64, ok->as.append_response.last_appended, 0), "0 = absent on the wire");
    h_fini(&n);
}

/* ---------------------------------------------------------------- 8.2 liveness */

Test(regress, ref_8_2_14_a_joiner_never_elects_itself)
{
    struct h_node n;
    h_init(&n, 9, NULL, 0, NULL);
    h_ticks(&n, 100);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    struct yggr_msg hb = h_append(2, 9, 4, 0, 0, NULL, 0, 0);
    h_recv(&n, &hb);
    cr_assert(eq(u64, n.act.leader_id, 2), "accepts any leader of term >= ours");
    h_fini(&n);
}

Test(regress, ref_8_2_15_learners_are_tracked_and_their_acks_used)
{
    static const uint64_t voters[3] = {1, 2, 3};
    static const uint64_t learners[1] = {4};
    struct h_node n;
    h_init_learners(&n, 1, voters, 3, learners, 1, NULL);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    struct yggr_msg ok = h_append_ok(4, 1, 1, 1, n.e->round);
    h_recv(&n, &ok);
    cr_assert(eq(u64, h_progress(&n, 4).match_index, 1));
    h_tick(&n);
    cr_assert(eq(u32, h_find(&n, YGGR_MSG_APPEND_REQUEST, 4)->as.append.entry_count, 0),
              "heartbeats do not resend the log");
    h_fini(&n);
}

Test(regress, ref_8_2_16_leadership_transfer_succeeds_with_pre_vote_on, .timeout = 30)
{
    struct yggr_engine_config c = h_config(1);
    c.pre_vote = true;
    c.election_timeout_max_ticks = 20;
    struct h_cluster_options o = {.nodes = 3, .seed = 5, .cfg = &c};
    struct h_cluster *cl = h_cluster_new(&o);
    for (int i = 0; i < 5000 && h_cluster_leader(cl) == 0; i++) {
        h_cluster_step(cl);
    }
    uint64_t old = h_cluster_leader(cl);
    cr_assert(old != 0);
    for (int i = 0; i < 3; i++) {
        h_cluster_tick(cl, old);
        h_cluster_settle(cl);
    }
    uint64_t target = old == 3 ? 2 : 3;
    struct yggr_event t = {.type = YGGR_EVENT_TRANSFER, .as.transfer.target = target};
    h_cluster_event(cl, old, &t);
    h_cluster_settle(cl);
    cr_assert(eq(u64, h_cluster_leader(cl), target), "reference: pre-vote refused, stuck");
    h_cluster_free(cl);
}

Test(regress, ref_8_2_17_a_follower_may_restart_a_snapshot_transfer_at_zero)
{
    struct yggr_engine_config c = h_config(1);
    c.snapshot_chunk_bytes = 3;
    c.snapshot_chunks_inflight = 1;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(3, 1, 1, true);
    h_recv(&n, &g);
    h_propose(&n, 3);
    h_persist_all(&n);
    struct yggr_msg ok = h_append_ok(3, 1, 1, 4, n.e->round);
    h_recv(&n, &ok);
    taken(&n, 4, 9);
    struct yggr_msg cf = h_append_conflict(2, 1, 1, 2, 0);
    h_recv(&n, &cf);
    struct yggr_msg a = {.type = YGGR_MSG_SNAPSHOT_RESPONSE, .from = 2, .to = 1, .term = 1};
    a.as.snapshot_response.last = (struct yggr_log_id){4, 1};
    a.as.snapshot_response.next_offset = 3;
    h_recv(&n, &a);
    a.as.snapshot_response.next_offset = 0;
    h_recv(&n, &a);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_SNAPSHOT_REQUEST, 2);
    cr_assert_not_null(m, "reference: ignored, transfer wedged");
    cr_assert(eq(u64, m->as.snapshot.offset, 0));
    h_fini(&n);
}

Test(regress, ref_8_2_19_an_isolated_leader_steps_down_by_check_quorum)
{
    struct yggr_engine_config c = h_config(1);
    c.check_quorum = true;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, n.act.term, 1), "same term");
    cr_assert(eq(u64, h_metrics(&n).check_quorum_stepdowns, 1));
    h_fini(&n);
}

Test(regress, ref_8_2_20_a_step_down_is_visible_in_the_step_that_causes_it)
{
    struct h_node n;
    h_make_leader(&n);
    struct yggr_msg v = h_vote_req(2, 1, 5, 9, 9);
    v.as.vote_request.transfer = true;
    h_recv(&n, &v);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, n.act.leader_id, 0));
    h_fini(&n);
}

Test(regress, ref_8_2_21_a_removed_node_is_told_and_stops_campaigning)
{
    struct h_node l;
    h_make_leader(&l);
    struct yggr_msg pv = h_prevote_req(4, 1, 2, 0, 0);
    h_recv(&l, &pv);
    const struct yggr_msg *r = h_find(&l, YGGR_MSG_PRE_VOTE_RESPONSE, 4);
    cr_assert(r->as.vote_response.removed);
    struct yggr_msg resp = *r;
    h_fini(&l);

    struct yggr_engine_config c = h_config(4);
    c.pre_vote = true;
    static const uint64_t ids[4] = {1, 2, 3, 4};
    struct h_node n;
    h_init(&n, 4, ids, 4, &c);
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_PRE_CANDIDATE));
    h_recv(&n, &resp);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    uint64_t started = h_metrics(&n).elections_started;
    h_ticks(&n, 100);
    cr_assert(eq(u64, h_metrics(&n).elections_started, started), "reference: campaigns forever");
    h_fini(&n);
}

Test(regress, ref_8_2_22_an_ignored_hint_fires_again)
{
    struct yggr_engine_config c = h_config(1);
    c.snapshot_threshold_entries = 2;
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    h_propose(&n, 1);
    h_persist_all(&n);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_HINT));
    h_propose(&n, 2);
    h_persist_all(&n);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_HINT), "reference: only at the next band");
    h_fini(&n);
}

/* ---------------------------------------------------------------- 8.3 performance */

Test(regress, ref_8_3_24_appends_are_pipelined_and_capped)
{
    struct yggr_engine_config c = h_config(1);
    c.max_append_entries = 8;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    struct yggr_msg ok = h_append_ok(2, 1, 1, 1, n.e->round);
    h_recv(&n, &ok);
    h_propose(&n, 20);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 3), "8 + 8 + 4 to peer 2 only");
    h_tick(&n);
    cr_assert(eq(u32, h_find(&n, YGGR_MSG_APPEND_REQUEST, 2)->as.append.entry_count, 0));
    h_fini(&n);
}

Test(regress, ref_8_3_25_the_leader_replicates_while_its_write_is_in_flight)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 1);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(h_has(&n, YGGR_ACT_SEND), "same step, before LOG_PERSISTED");
    h_fini(&n);
}

Test(regress, ref_8_3_26_a_batch_is_one_append_and_at_most_one_message_per_peer)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 100);
    cr_assert(eq(u32, n.act.append.count, 100));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    h_fini(&n);
}

Test(regress, ref_8_3_29_a_divergent_follower_backtracks_a_term_per_round_trip)
{
    struct h_node n;
    h_make_follower(&n, 2);
    static const uint64_t terms[8] = {1, 2, 2, 2, 2, 2, 2, 2};
    struct yggr_msg ae = h_append(2, 1, 2, 0, 0, h_entries_terms(1, terms, 8), 8, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    struct yggr_msg probe = h_append(3, 1, 3, 8, 3, NULL, 0, 0);
    h_recv(&n, &probe);
    const struct yggr_msg *r = h_find(&n, YGGR_MSG_APPEND_RESPONSE, 3);
    cr_assert(eq(u64, r->as.append_response.hint, 2), "reference: 8, one index per trip");
    cr_assert(eq(u64, r->as.append_response.conflict_term, 2));
    h_fini(&n);
}

Test(regress, ref_8_3_30_steady_state_steps_do_not_allocate)
{
    struct h_node n;
    h_make_leader(&n);
    static struct yggr_entry cmds[16];
    for (int i = 0; i < 16; i++) {
        cmds[i] = (struct yggr_entry){.type = YGGR_ENTRY_COMMAND, .data = (const uint8_t *)"x",
                                      .len = 1};
    }
    struct yggr_actions a;
    counting = true;
    for (int i = 0; i < 200; i++) {
        struct yggr_event p = {.type = YGGR_EVENT_PROPOSE};
        p.as.propose.entries = cmds;
        p.as.propose.count = 16;
        yggr_engine_step(n.e, &p, &a);
        uint64_t last = a.last_index;
        struct yggr_event d = {.type = YGGR_EVENT_LOG_PERSISTED};
        d.as.log_persisted = (struct yggr_log_id){last, 1};
        yggr_engine_step(n.e, &d, &a);
        struct yggr_event r = {.type = YGGR_EVENT_RECEIVE};
        r.as.receive = h_append_ok(2, 1, 1, last, n.e->round);
        yggr_engine_step(n.e, &r, &a);
        struct yggr_event t = {.type = YGGR_EVENT_TICK};
        yggr_engine_step(n.e, &t, &a);
    }
    counting = false;
    cr_assert(eq(u64, counted, 0));
    cr_assert(a.commit_index > 3000);
    h_fini(&n);
}

/* ---------------------------------------------------------------- simulator findings */

/* F2 (docs/sim-findings.md on branch sim): a single voter became leader in the step that
 * bumped its term, before (term, self) was durable; after a crash it reused the term and
 * wrote a second, different entry at the same (index, term). */
Test(regress, sim_f2_single_voter_waits_for_durable_term)
{
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, NULL);
    uint64_t last = n.act.last_index;
    h_ticks(&n, 10);
    cr_assert(h_has(&n, YGGR_ACT_HARD_STATE));
    cr_assert(eq(u64, n.hs_term, 1));
    cr_assert(eq(u64, n.hs_vote, 1));
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "not leader before the vote is durable");
    cr_assert(eq(u64, n.act.last_index, last), "no no-op before the vote is durable");
    h_propose(&n, 1);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_NO_LEADER));
    /* A report for an older hard state does not count. */
    struct yggr_event old = {.type = YGGR_EVENT_HARD_STATE_PERSISTED};
    h_step(&n, &old);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    h_hs_persisted(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    cr_assert(eq(u64, n.act.term, 1));
    cr_assert(eq(u64, n.act.last_index, last + 1), "the no-op of term 1");
    cr_assert(eq(u64, yggr_engine_term_at(n.e, last + 1), 1));
    h_fini(&n);
}

/* F2, the crash half: while storage never reports the term durable, the single voter
 * keeps campaigning (new terms) but never leads and never writes an entry, so a restart
 * from the durable term cannot meet an entry of a term it forgot. */
Test(regress, sim_f2_single_voter_writes_nothing_until_a_term_is_durable)
{
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, NULL);
    for (int i = 0; i < 40; i++) {
        h_tick(&n);
        cr_assert(n.act.role != YGGR_ROLE_LEADER, "still waiting for storage");
        cr_assert_not(h_has(&n, YGGR_ACT_APPEND));
    }
    cr_assert(n.act.term >= 2, "campaigned again");
    h_fini(&n);
}

/* F4: the snapshot (33, 2) is durable but the log writes behind it were lost: the durable
 * log is [1, 31]. RECOVER aborted in log_warm on the tail of the dropped log. */
Test(regress, sim_f4_recover_with_log_below_snapshot)
{
    struct yggr_engine_config c = h_config(1);
    struct h_node n;
    memset(&n, 0, sizeof(n));
    n.id = 1;
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    static uint64_t terms[31];
    for (int i = 0; i < 31; i++) {
        terms[i] = i < 9 ? 1 : 2;
    }
    const struct yggr_entry *log = h_entries_terms(1, terms, 31);
    static const struct yggr_term_run runs[2] = {{1, 1}, {2, 10}};
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    struct yggr_recovered *r = &ev.as.recover;
    r->term = 2;
    r->vote = 3;
    r->has_snapshot = true;
    r->snapshot.last = (struct yggr_log_id){33, 2};
    r->snapshot.size = 10;
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&r->snapshot.config, YGGR_CHANGE_ADD_VOTER, id);
    }
    r->first_index = 1;
    r->last_index = 31;
    r->terms = runs;
    r->term_count = 2;
    r->tail = log + 21; /* 22..31 */
    r->tail_count = 10;
    h_step(&n, &ev);
    cr_assert(eq(u64, n.act.last_index, 33), "the log restarts above the snapshot");
    cr_assert(eq(u64, n.act.commit_index, 33));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, 33), 2));
    struct yggr_msg ae = h_append(3, 1, 2, 33, 2, h_entries(34, 2, 2), 2, 35);
    h_recv(&n, &ae);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(u64, n.act.append.entries[0].index, 34));
    cr_assert(eq(u64, n.act.commit_index, 35));
    h_fini(&n);
}

/* F4, the tail straddles the kept log: only entries inside it are cached. */
Test(regress, sim_f4_recover_tail_is_clipped_to_the_kept_log)
{
    struct yggr_engine_config c = h_config(1);
    c.snapshot_trailing_entries = 4;
    struct h_node n;
    memset(&n, 0, sizeof(n));
    n.id = 1;
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    const struct yggr_entry *log = h_entries(1, 2, 40);
    static const struct yggr_term_run runs[1] = {{2, 1}};
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    struct yggr_recovered *r = &ev.as.recover;
    r->term = 2;
    r->has_snapshot = true;
    r->snapshot.last = (struct yggr_log_id){30, 2};
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&r->snapshot.config, YGGR_CHANGE_ADD_VOTER, id);
    }
    r->first_index = 27;
    r->last_index = 40;
    r->terms = runs;
    r->term_count = 1;
    r->tail = log + 19; /* 20..40: starts below first_index */
    r->tail_count = 21;
    h_step(&n, &ev);
    cr_assert(eq(u64, n.act.last_index, 40));
    cr_assert_not_null(log_get(&n.e->log, 27));
    cr_assert_null(log_get(&n.e->log, 26));
    h_fini(&n);
}
