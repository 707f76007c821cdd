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

/* Log index of the i-th entry after the fixture's bootstrap entries (term 0, 1..H_BOOT). */
#define X(i) (H_BOOT + (i))

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
    taken(&n, X(3), 10);
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
    taken(&n, X(2), 10);
    h_propose(&n, 2);
    commit_all(&n);
    taken(&n, X(4), 10);
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
    struct yggr_msg late = h_append_ok(2, 1, 1, X(1), before);
    h_recv(&n, &late);
    struct yggr_msg late3 = h_append_ok(3, 1, 1, X(1), before);
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
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(2), n.e->round);
    h_recv(&n, &ok);
    cr_assert(eq(u64, n.act.commit_index, X(1)), "reference: leader + 2 commit the removal");
    h_fini(&n);
}

Test(regress, ref_8_1_8_promoting_self_keeps_the_config_consistent)
{
    static const uint64_t voters[3] = {1, 2, 3};
    static const uint64_t learners[1] = {4};
    struct h_node n;
    h_init_learners(&n, 4, voters, 3, learners, 1, NULL);
    struct yggr_entry e[1] = {{.index = H_BOOT + 2, .term = 1, .type = YGGR_ENTRY_CONFIG,
                               .change = YGGR_CHANGE_PROMOTE_LEARNER, .node = 4}};
    struct yggr_msg ae = h_append(2, 4, 1, H_BOOT + 1, 0, e, 1, 0) /* after 3 voters + learner 4 */;
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
    struct yggr_msg ae = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 5), 5, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    struct yggr_msg hb = h_append(3, 1, 2, X(2), 1, NULL, 0, X(5));
    h_recv(&n, &hb);
    h_hs_persisted(&n);
    const struct yggr_msg *r = h_find(&n, YGGR_MSG_APPEND_RESPONSE, 3);
    cr_assert(eq(u64, r->as.append_response.last_appended, X(2)), "reference: whole log");
    cr_assert(eq(u64, n.act.commit_index, X(2)), "reference: min(leader_commit, last)");
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
    struct yggr_msg ok = h_append_ok(4, 1, 1, H_BOOT + 2, n.e->round) /* 3 voters + learner, no-op */;
    h_recv(&n, &ok);
    cr_assert(eq(u64, h_progress(&n, 4).match_index, H_BOOT + 2));
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
    struct yggr_msg ok = h_append_ok(3, 1, 1, X(4), n.e->round);
    h_recv(&n, &ok);
    taken(&n, X(4), 9);
    struct yggr_msg cf = h_append_conflict(2, 1, 1, X(2), 0);
    h_recv(&n, &cf);
    struct yggr_msg a = {.type = YGGR_MSG_SNAPSHOT_RESPONSE, .from = 2, .to = 1, .term = 1};
    a.as.snapshot_response.last = (struct yggr_log_id){X(4), 1};
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
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(1), n.e->round);
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
    struct yggr_msg ae = h_append(2, 1, 2, X(0), 0, h_entries_terms(X(1), terms, 8), 8, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    struct yggr_msg probe = h_append(3, 1, 3, X(8), 3, NULL, 0, 0);
    h_recv(&n, &probe);
    const struct yggr_msg *r = h_find(&n, YGGR_MSG_APPEND_RESPONSE, 3);
    cr_assert(eq(u64, r->as.append_response.hint, X(2)), "reference: X(8), one index per trip");
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
    cr_assert(h_has(&n, YGGR_ACT_APPEND), "storage is told to drop the stale log");
    cr_assert(eq(u64, n.act.append.truncate_from, 1));
    cr_assert(eq(u32, n.act.append.count, 0));
    cr_assert(h_has(&n, YGGR_ACT_COMPACT));
    cr_assert(eq(u64, n.act.compact_below, 34));
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

/* F1: a joiner (empty base_config) rebuilt its configuration as "empty + the CONFIG
 * entries it received", without the founders (their configuration lived only in their
 * RECOVER base_config), believed it was the only voter and elected itself. The bootstrap
 * configuration is now log entries 1..k (term 0), so a joiner learns it from the log. */
Test(regress, sim_f1_joiner_learns_founders_from_bootstrap_entries, .timeout = 30)
{
    struct h_cluster_options o = {.nodes = 3, .joiners = 1, .seed = 11};
    struct h_cluster *c = h_cluster_new(&o);
    struct yggr_engine *j = h_cluster_engine(c, 4);
    struct yggr_membership m;
    yggr_engine_config_latest(j, &m);
    cr_assert(eq(u32, m.voter_count + m.learner_count, 0), "a joiner starts empty");
    uint64_t added = 0;
    for (int i = 0; i < 20000 && added == 0; i++) {
        h_cluster_step(c);
        uint64_t l = h_cluster_leader(c);
        cr_assert(l != 4, "the joiner never leads before it is a member");
        if (l != 0 && i % 50 == 0) {
            struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
            ev.as.change.type = YGGR_CHANGE_ADD_VOTER;
            ev.as.change.node = 4;
            h_cluster_event(c, l, &ev);
            struct yggr_engine *le = h_cluster_engine(c, l);
            struct yggr_membership lm;
            yggr_engine_config_latest(le, &lm);
            added = yggr_membership_is_voter(&lm, 4) ? le->log.last : 0;
        }
    }
    cr_assert(added > 0, "the change was accepted");
    h_cluster_settle(c);
    for (int i = 0; i < 5000 && j->commit < added; i++) {
        h_cluster_step(c);
    }
    cr_assert(j->commit >= added, "the joiner caught up (commit %llu < %llu)",
              (unsigned long long)j->commit, (unsigned long long)added);
    for (uint64_t i = 1; i <= 3; i++) {
        cr_assert(eq(u64, yggr_engine_term_at(j, i), 0), "bootstrap entry %llu",
                  (unsigned long long)i);
        cr_assert(eq(u64, log_get(&j->log, i) != NULL ? log_get(&j->log, i)->node : i, i));
    }
    yggr_engine_config_latest(j, &m);
    cr_assert(eq(u32, m.voter_count, 4), "all 4 voters, the founders from the log");
    for (uint64_t id = 1; id <= 4; id++) {
        cr_assert(yggr_membership_is_voter(&m, id));
    }
    yggr_engine_config_committed(j, &m);
    cr_assert(eq(u32, m.voter_count, 4));
    /* Cut off, the joiner campaigns but never wins alone (it needs 3 of 4 votes). */
    for (int i = 0; i < 300; i++) {
        h_cluster_tick(c, 4);
        cr_assert(j->role != YGGR_ROLE_LEADER);
    }
    h_cluster_free(c);
}

/* F1, random schedules: two joiners, learners promoted and founders removed, with loss,
 * reordering, delayed persistence and crashes; the cluster checks election safety and
 * state machine safety after every step. */
Test(regress, sim_f1_joiners_keep_safety_under_random_membership_changes, .timeout = 120)
{
    static const enum yggr_change_type kinds[4] = {
        YGGR_CHANGE_ADD_LEARNER, YGGR_CHANGE_PROMOTE_LEARNER, YGGR_CHANGE_REMOVE_VOTER,
        YGGR_CHANGE_ADD_VOTER};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct h_cluster_options o = {.nodes = 3, .joiners = 2, .seed = seed,
                                      .drop_percent = 5, .random_order = true,
                                      .delay_persist = true};
        struct h_cluster *c = h_cluster_new(&o);
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < 6000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            h_cluster_step(c);
            uint64_t l = h_cluster_leader(c);
            if (l != 0 && x % 97 == 0) {
                struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
                ev.as.change.type = kinds[(x >> 8) % 4];
                ev.as.change.node = 1 + (x >> 16) % 5;
                h_cluster_event(c, l, &ev);
            }
            if (x % 13 == 0) {
                h_cluster_propose(c, 1);
            }
            if (x % 1499 == 0) {
                h_cluster_crash(c, 1 + (x >> 24) % 5);
            }
        }
        h_cluster_free(c);
    }
}

static void boot_event(struct yggr_event *ev, const uint64_t *voters, uint32_t nv,
                       const uint64_t *learners, uint32_t nl)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = YGGR_EVENT_RECOVER;
    for (uint32_t i = 0; i < nv; i++) {
        yggr_membership_apply(&ev->as.recover.base_config, YGGR_CHANGE_ADD_VOTER, voters[i]);
    }
    for (uint32_t i = 0; i < nl; i++) {
        yggr_membership_apply(&ev->as.recover.base_config, YGGR_CHANGE_ADD_LEARNER,
                              learners[i]);
    }
    ev->as.recover.first_index = 1;
}

static void new_node(struct h_node *n, uint64_t id)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    struct yggr_engine_config c = h_config(id);
    cr_assert(eq(int, yggr_engine_create(&c, &n->e), 0));
}

/* F1: the bootstrap entries are appended once (voters, then learners, ascending, term 0),
 * committed and applied at recovery, and a restart finds them on disk: nothing is
 * appended again and base_config (even a different one) is ignored. */
Test(regress, sim_f1_bootstrap_entries_are_appended_once_and_committed_at_recovery)
{
    static const uint64_t voters[3] = {3, 1, 2};
    static const uint64_t learners[1] = {7};
    struct h_node n;
    new_node(&n, 1);
    struct yggr_event ev;
    boot_event(&ev, voters, 3, learners, 1);
    h_step(&n, &ev);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(u64, n.act.append.truncate_from, 0));
    cr_assert(eq(u32, n.act.append.count, 4));
    static const uint8_t changes[4] = {YGGR_CHANGE_ADD_VOTER, YGGR_CHANGE_ADD_VOTER,
                                       YGGR_CHANGE_ADD_VOTER, YGGR_CHANGE_ADD_LEARNER};
    static const uint64_t nodes[4] = {1, 2, 3, 7};
    struct yggr_entry disk[4];
    for (uint32_t i = 0; i < 4; i++) {
        const struct yggr_entry *en = &n.act.append.entries[i];
        cr_assert(eq(u64, en->index, i + 1));
        cr_assert(eq(u64, en->term, 0));
        cr_assert(eq(int, en->type, YGGR_ENTRY_CONFIG));
        cr_assert(eq(int, en->change, changes[i]));
        cr_assert(eq(u64, en->node, nodes[i]));
        cr_assert(eq(u32, en->len, 0), "no addresses");
        disk[i] = *en;
    }
    cr_assert(eq(u64, n.act.commit_index, 4), "committed by definition");
    cr_assert(h_has(&n, YGGR_ACT_APPLY));
    cr_assert(eq(u64, n.act.apply.first_index, 1));
    cr_assert(eq(u32, n.act.apply.count, 4), "the host sees every index");
    cr_assert(not(h_has(&n, YGGR_ACT_HARD_STATE)));
    cr_assert(not(h_has(&n, YGGR_ACT_SEND)));
    struct yggr_membership m;
    yggr_engine_config_committed(n.e, &m);
    cr_assert(yggr_membership_equal(&m, &ev.as.recover.base_config));
    h_fini(&n);

    /* Restart with the entries durable, and another base_config: the log wins. */
    new_node(&n, 1);
    static const uint64_t other[4] = {1, 2, 3, 4};
    boot_event(&ev, other, 4, NULL, 0);
    static const struct yggr_term_run runs[1] = {{0, 1}};
    ev.as.recover.last_index = 4;
    ev.as.recover.terms = runs;
    ev.as.recover.term_count = 1;
    ev.as.recover.configs = disk;
    ev.as.recover.config_count = 4;
    h_step(&n, &ev);
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)), "appended once");
    cr_assert(eq(u64, n.act.last_index, 4));
    cr_assert(eq(u64, n.act.commit_index, 4));
    cr_assert(eq(u64, n.act.apply.first_index, 1));
    cr_assert(eq(u32, n.act.apply.count, 4));
    cr_assert(n.act.apply.from_storage, "not cached after a restart without a tail");
    struct yggr_membership again;
    yggr_engine_config_committed(n.e, &again);
    cr_assert(yggr_membership_equal(&again, &m), "replayed from empty: the same config");
    h_fini(&n);
}

/* F1: a founder that crashed before its bootstrap append was durable restarts with an
 * empty log and appends the very same entries; one whose write was torn after the first
 * entry appends the rest. */
Test(regress, sim_f1_founder_crashing_before_bootstrap_is_durable_reappends_identical_entries)
{
    static const uint64_t voters[3] = {1, 2, 3};
    struct yggr_entry first[3];
    struct h_node n;
    struct yggr_event ev;
    for (int boot = 0; boot < 2; boot++) {
        new_node(&n, 2);
        boot_event(&ev, voters, 3, NULL, 0);
        h_step(&n, &ev);
        cr_assert(eq(u32, n.act.append.count, 3));
        for (uint32_t i = 0; i < 3; i++) {
            const struct yggr_entry *en = &n.act.append.entries[i];
            if (boot == 0) {
                first[i] = *en;
            }
            cr_assert(eq(u64, en->index, first[i].index));
            cr_assert(eq(u64, en->term, first[i].term));
            cr_assert(eq(u64, en->node, first[i].node));
            cr_assert(eq(int, en->change, first[i].change));
        }
        h_fini(&n);
    }
    new_node(&n, 2);
    boot_event(&ev, voters, 3, NULL, 0);
    static const struct yggr_term_run runs[1] = {{0, 1}};
    ev.as.recover.last_index = 1;
    ev.as.recover.terms = runs;
    ev.as.recover.term_count = 1;
    ev.as.recover.configs = first;
    ev.as.recover.config_count = 1;
    h_step(&n, &ev);
    cr_assert(eq(u64, n.act.append.truncate_from, 0));
    cr_assert(eq(u32, n.act.append.count, 2), "the torn write's missing entries");
    cr_assert(eq(u64, n.act.append.entries[0].index, 2));
    cr_assert(eq(u64, n.act.append.entries[0].node, 2));
    cr_assert(eq(u64, n.act.commit_index, 3));
    struct yggr_membership m;
    yggr_engine_config_latest(n.e, &m);
    cr_assert(yggr_membership_equal(&m, &ev.as.recover.base_config));
    h_fini(&n);
}

/* F1: a new leader's first AppendEntries names prev = (k, 0), the last bootstrap entry;
 * followers accept it and the leader commits its no-op by the usual rule. */
Test(regress, sim_f1_a_new_leader_replicates_after_the_bootstrap_prefix)
{
    struct h_node l;
    h_init3(&l, 1);
    h_ticks(&l, 10);
    h_hs_persisted(&l);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&l, &g);
    cr_assert(eq(int, l.act.role, YGGR_ROLE_LEADER));
    const struct yggr_msg *ae = h_find(&l, YGGR_MSG_APPEND_REQUEST, 2);
    cr_assert(eq(u64, ae->as.append.prev.index, H_BOOT));
    cr_assert(eq(u64, ae->as.append.prev.term, 0));
    struct yggr_msg copy = *ae;
    struct yggr_entry noop = ae->as.append.entries[0];
    copy.as.append.entries = &noop;
    struct h_node f;
    h_init3(&f, 2);
    h_recv(&f, &copy);
    h_hs_persisted(&f);
    h_persist_all(&f);
    const struct yggr_msg *ok = h_find(&f, YGGR_MSG_APPEND_RESPONSE, 1);
    cr_assert(ok->as.append_response.success);
    cr_assert(eq(u64, ok->as.append_response.last_appended, X(1)));
    struct yggr_msg okc = *ok;
    h_persist_all(&l);
    cr_assert(eq(u64, l.act.commit_index, H_BOOT), "the no-op needs a majority");
    h_recv(&l, &okc);
    cr_assert(eq(u64, l.act.commit_index, X(1)));
    h_fini(&f);
    h_fini(&l);
}

/* F8: the other way a crash leaves a log that disagrees with the durable snapshot: the
 * follower applied (33, 2) before it was durable, snapshotted it, and crashed; its durable
 * log still holds the replaced (33, 1). RECOVER asserted; the install rule now drops that
 * log (and tells storage). */
Test(regress, sim_f8_recover_with_a_log_that_conflicts_with_the_snapshot)
{
    struct yggr_engine_config c = h_config(1);
    struct h_node n;
    memset(&n, 0, sizeof(n));
    n.id = 1;
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    static const struct yggr_term_run runs[1] = {{1, 1}};
    static struct yggr_entry cfg[1] = {{.index = 36, .term = 1, .type = YGGR_ENTRY_CONFIG,
                                        .change = YGGR_CHANGE_REMOVE_VOTER, .node = 3}};
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    struct yggr_recovered *r = &ev.as.recover;
    r->term = 2;
    r->has_snapshot = true;
    r->snapshot.last = (struct yggr_log_id){33, 2};
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&r->snapshot.config, YGGR_CHANGE_ADD_VOTER, id);
    }
    r->first_index = 20;
    r->last_index = 40;
    r->terms = runs;
    r->term_count = 1;
    r->configs = cfg; /* in the dropped log: must not count */
    r->config_count = 1;
    r->tail = h_entries(31, 1, 10);
    r->tail_count = 10;
    h_step(&n, &ev);
    cr_assert(eq(u64, n.act.last_index, 33));
    cr_assert(eq(u64, n.act.append.truncate_from, 20));
    cr_assert(eq(u64, n.act.compact_below, 34));
    struct yggr_membership m;
    yggr_engine_config_latest(n.e, &m);
    cr_assert(eq(u32, m.voter_count, 3), "the dropped log's CONFIG entry is not replayed");
    h_fini(&n);
}

/* F3: the done chunk of a received snapshot tells storage to reset its log (FIFO), but the
 * engine applies the install only at SNAPSHOT_PERSISTED; a delayed AppendEntries in
 * between appended onto the log storage was discarding (a gap on disk). Nothing is
 * appended while the install is pending. */
Test(regress, sim_f3_no_append_while_snapshot_install_pending)
{
    struct h_node n;
    h_make_follower(&n, 2);
    struct yggr_msg ae = h_append(2, 1, 2, X(0), 0, h_entries(X(1), 2, 2), 2, 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    static const uint8_t bytes[5] = "snap";
    struct yggr_membership cfg = {0};
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&cfg, YGGR_CHANGE_ADD_VOTER, id);
    }
    struct yggr_msg is = {.type = YGGR_MSG_SNAPSHOT_REQUEST, .from = 2, .to = 1, .term = 2};
    is.as.snapshot.leader_id = 2;
    is.as.snapshot.last = (struct yggr_log_id){X(5), 2};
    is.as.snapshot.len = 4;
    is.as.snapshot.data = bytes;
    is.as.snapshot.done = true;
    is.as.snapshot.config = &cfg;
    is.as.snapshot.leader_commit = X(5);
    h_recv(&n, &is);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert(n.act.snapshot_chunk.done);
    /* A delayed AppendEntries matching our old log and extending it. */
    struct yggr_msg late = h_append(2, 1, 2, X(2), 2, h_entries(X(3), 2, 2), 2, X(3));
    h_recv(&n, &late);
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)), "storage is replacing the log");
    cr_assert(eq(u64, n.act.last_index, X(2)));
    struct yggr_event p = {.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
    p.as.snapshot_persisted = (struct yggr_log_id){X(5), 2};
    h_step(&n, &p);
    cr_assert(eq(u64, n.act.last_index, X(5)));
    cr_assert(eq(u64, n.act.commit_index, X(5)));
    struct yggr_msg next = h_append(2, 1, 2, X(5), 2, h_entries(X(6), 2, 1), 1, X(6));
    h_recv(&n, &next);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(u64, n.act.append.entries[0].index, X(6)), "contiguous with the snapshot");
    cr_assert(eq(u64, n.act.append.truncate_from, 0));
    h_fini(&n);
}

/* Found running the simulator on the F1 fix: a host may snapshot right after bootstrap,
 * at (k, 0). The engine ignored that SNAPSHOT_TAKEN although the snapshot was durable, and
 * RECOVER asserted on a snapshot of term 0. A term-0 snapshot is a snapshot like any. */
Test(regress, sim_f1_a_snapshot_of_the_bootstrap_entries_alone_is_a_snapshot)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_event t = {.type = YGGR_EVENT_SNAPSHOT_TAKEN};
    t.as.snapshot_taken.last = (struct yggr_log_id){H_BOOT, 0};
    t.as.snapshot_taken.size = 5;
    h_step(&n, &t);
    cr_assert(h_has(&n, YGGR_ACT_COMPACT));
    cr_assert(eq(u64, n.act.compact_below, H_BOOT + 1));
    cr_assert(eq(u32, n.e->snap.config.voter_count, 3));
    struct yggr_snapshot_meta meta = n.e->snap;
    h_fini(&n);

    struct h_node r;
    memset(&r, 0, sizeof(r));
    r.id = 1;
    struct yggr_engine_config c = h_config(1);
    cr_assert(eq(int, yggr_engine_create(&c, &r.e), 0));
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    ev.as.recover.has_snapshot = true;
    ev.as.recover.snapshot = meta;
    ev.as.recover.first_index = H_BOOT + 1;
    ev.as.recover.last_index = H_BOOT;
    h_step(&r, &ev);
    cr_assert(not(h_has(&r, YGGR_ACT_APPEND)), "the snapshot holds the configuration");
    cr_assert(eq(u64, r.act.commit_index, H_BOOT));
    h_ticks(&r, 10);
    h_hs_persisted(&r);
    const struct yggr_msg *v = h_find(&r, YGGR_MSG_VOTE_REQUEST, 2);
    cr_assert_not_null(v);
    cr_assert(eq(u64, v->as.vote_request.last.index, H_BOOT));
    cr_assert(eq(u64, v->as.vote_request.last.term, 0));
    h_fini(&r);

    /* A joiner accepts that snapshot from a leader. */
    struct h_node j;
    h_init(&j, 4, NULL, 0, NULL);
    static const uint8_t bytes[5] = "snap";
    struct yggr_msg is = {.type = YGGR_MSG_SNAPSHOT_REQUEST, .from = 1, .to = 4, .term = 2};
    is.as.snapshot.leader_id = 1;
    is.as.snapshot.last = (struct yggr_log_id){H_BOOT, 0};
    is.as.snapshot.len = 4;
    is.as.snapshot.data = bytes;
    is.as.snapshot.done = true;
    is.as.snapshot.config = &meta.config;
    h_recv(&j, &is);
    cr_assert(h_has(&j, YGGR_ACT_SNAPSHOT_CHUNK));
    h_hs_persisted(&j);
    struct yggr_event p = {.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
    p.as.snapshot_persisted = (struct yggr_log_id){H_BOOT, 0};
    h_step(&j, &p);
    struct yggr_membership m;
    yggr_engine_config_latest(j.e, &m);
    cr_assert(eq(u32, m.voter_count, 3));
    cr_assert(eq(u64, j.act.commit_index, H_BOOT));
    h_fini(&j);
}

/* The same with an EMPTY durable log: a founder snapshotted its bootstrap entries and
 * crashed before their append was durable. The engine ignores base_config (the snapshot
 * holds the configuration) and tells storage that the log continues above the snapshot. */
Test(regress, sim_f4_recover_with_an_empty_log_below_the_snapshot)
{
    struct h_node n;
    memset(&n, 0, sizeof(n));
    n.id = 1;
    struct yggr_engine_config c = h_config(1);
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    struct yggr_recovered *r = &ev.as.recover;
    r->has_snapshot = true;
    r->snapshot.last = (struct yggr_log_id){3, 0};
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&r->snapshot.config, YGGR_CHANGE_ADD_VOTER, id);
        yggr_membership_apply(&r->base_config, YGGR_CHANGE_ADD_VOTER, id);
    }
    r->first_index = 1;
    r->last_index = 0;
    h_step(&n, &ev);
    cr_assert(eq(u64, n.act.last_index, 3));
    cr_assert(not(h_has(&n, YGGR_ACT_APPEND)));
    cr_assert(h_has(&n, YGGR_ACT_COMPACT));
    cr_assert(eq(u64, n.act.compact_below, 4));
    h_fini(&n);
}

static struct yggr_msg snap_chunk(uint64_t from, uint64_t term, uint64_t offset, uint32_t len,
                                  bool done)
{
    static const uint8_t bytes[16] = "0123456789abcdef";
    static struct yggr_membership cfg;
    memset(&cfg, 0, sizeof(cfg));
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&cfg, YGGR_CHANGE_ADD_VOTER, id);
    }
    struct yggr_msg m = {.type = YGGR_MSG_SNAPSHOT_REQUEST, .from = from, .to = 1, .term = term};
    m.as.snapshot.leader_id = from;
    m.as.snapshot.last = (struct yggr_log_id){X(10), 1};
    m.as.snapshot.offset = offset;
    m.as.snapshot.len = len;
    m.as.snapshot.data = bytes + offset;
    m.as.snapshot.done = done;
    m.as.snapshot.config = &cfg;
    m.as.snapshot.leader_commit = X(10);
    return m;
}

/* F6: two nodes' snapshots at the same (index, term) hold the same state, not the same
 * bytes. A new leader's chunks for that id were written after the old leader's partial
 * transfer, so the installed snapshot was a splice of both. */
Test(regress, sim_f6_a_new_leaders_chunks_restart_the_transfer)
{
    struct h_node n;
    h_make_follower(&n, 2);
    struct yggr_msg a0 = snap_chunk(2, 2, 0, 4, false);
    h_recv(&n, &a0);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert(eq(u64, h_find(&n, YGGR_MSG_SNAPSHOT_RESPONSE, 2)->as.snapshot_response
                          .next_offset, 4));
    /* Leader 3 of term 3 streams its own snapshot with the same id. */
    struct yggr_msg b1 = snap_chunk(3, 3, 4, 3, true);
    h_recv(&n, &b1);
    h_hs_persisted(&n);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK)), "not spliced onto leader 2's bytes");
    const struct yggr_msg *r = h_find(&n, YGGR_MSG_SNAPSHOT_RESPONSE, 3);
    cr_assert_not_null(r);
    cr_assert(eq(u64, r->as.snapshot_response.next_offset, 0), "restart from 0");
    cr_assert(not(r->as.snapshot_response.done));
    struct yggr_msg b0 = snap_chunk(3, 3, 0, 4, false);
    h_recv(&n, &b0);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert(eq(u64, n.act.snapshot_chunk.offset, 0), "storage restarts the snapshot");
    h_recv(&n, &b1);
    cr_assert(n.act.snapshot_chunk.done);
    cr_assert(eq(u64, n.act.snapshot_chunk.meta.size, 7));
    h_fini(&n);
}

/* F5: the cache could evict only entries both durable AND applied, so a follower whose
 * cache held log_cache_entries durable but uncommitted entries refused every append: the
 * new leader's entries never reached a majority, nothing committed, nothing was applied
 * (so nothing became evictable): the cluster stalled. */
Test(regress, sim_f5_a_cache_full_of_unapplied_entries_still_appends)
{
    struct yggr_engine_config c = h_config(1);
    c.log_cache_entries = 8;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    h_log_persisted(&n, H_BOOT, 0);
    struct yggr_msg ae = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 8), 8, 0);
    h_recv(&n, &ae);
    h_hs_persisted(&n);
    h_persist_all(&n);
    cr_assert(eq(u64, n.act.last_index, X(8)));
    cr_assert(eq(u64, n.act.commit_index, H_BOOT), "none of them committed");
    cr_assert(eq(u64, n.e->log.cache_first, X(1)), "the cache holds 8 unapplied entries");
    struct yggr_msg more = h_append(3, 1, 2, X(8), 1, h_entries(X(9), 2, 2), 2, 0);
    h_recv(&n, &more);
    h_hs_persisted(&n);
    cr_assert(eq(u64, n.act.last_index, X(10)), "appended past a full cache");
    h_persist_all(&n);
    const struct yggr_msg *ok = h_find(&n, YGGR_MSG_APPEND_RESPONSE, 3);
    cr_assert(eq(u64, ok->as.append_response.last_appended, X(10)));
    struct yggr_msg commit = h_append(3, 1, 2, X(10), 2, NULL, 0, X(10));
    h_recv(&n, &commit);
    cr_assert(eq(u64, n.act.commit_index, X(10)));
    cr_assert(eq(u64, n.act.apply.first_index, X(1)));
    cr_assert(n.act.apply.from_storage, "evicted entries are applied from storage");
    uint64_t applied = n.act.applied_index;
    h_tick(&n);
    cr_assert(n.act.applied_index > applied, "the cached rest follows");
    h_fini(&n);
}

/* F7: with reordering, stale AppendEntries responses kept generating traffic: a success
 * that moved nothing cleared the probe in flight and sent it again, and a rejection of an
 * older round demoted a replicating peer to PROBE, resending what it already held and
 * restarting its window. The in-flight backlog grew to hundreds of messages. */
Test(regress, sim_f7_stale_responses_send_nothing_and_keep_replicate)
{
    struct h_node n;
    h_make_leader(&n);
    h_ticks(&n, 3);
    h_propose(&n, 4); /* X(2)..X(5) */
    h_persist_all(&n);
    uint64_t r_old = n.e->round;
    h_tick(&n);
    uint64_t r_new = n.e->round;
    cr_assert(r_new > r_old);
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(3), r_new);
    h_recv(&n, &ok);
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(3)));
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_REPLICATE));
    /* A rejection of a request from an earlier round (a gap that has since been filled). */
    struct yggr_msg stale_no = h_append_conflict(2, 1, 1, X(2), 0);
    stale_no.as.append_response.round = r_old;
    h_recv(&n, &stale_no);
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_REPLICATE), "not demoted");
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 0), "nothing resent");
    /* A success that moves nothing sends nothing. */
    struct yggr_msg stale_ok = h_append_ok(2, 1, 1, X(2), r_old);
    h_recv(&n, &stale_ok);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 0));
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(3)));
    /* A rejection of the current round is real: probe from match + 1. */
    struct yggr_msg real_no = h_append_conflict(2, 1, 1, X(4), 0);
    real_no.as.append_response.round = r_new;
    h_recv(&n, &real_no);
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_PROBE));
    cr_assert(eq(u64, h_progress(&n, 2).next_index, X(4)));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 1), "the probe");
    /* While that probe is in flight, a stale success must not send it again. */
    h_recv(&n, &stale_ok);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 0), "no duplicate probe");
    struct yggr_msg probe_ok = h_append_ok(2, 1, 1, X(5), r_new);
    h_recv(&n, &probe_ok);
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_REPLICATE));
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(5)));
    h_fini(&n);
}

/* Found by the simulator's scripted snapshot test on the F7 fix: a peer probing with a
 * lost probe whose next entries were then compacted only ever got heartbeats claiming
 * nothing (prev compacted); their answers move nothing, so (stale-response rule) it never
 * reached the snapshot path. The heartbeat switches such a peer to a snapshot. */
Test(regress, sim_f7_a_lost_probe_behind_a_compaction_falls_back_to_a_snapshot)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 5); /* X(2)..X(6) */
    h_persist_all(&n);
    struct yggr_msg ok2 = h_append_ok(2, 1, 1, X(6), n.e->round);
    h_recv(&n, &ok2);
    cr_assert(eq(u64, n.act.commit_index, X(6)));
    struct yggr_msg no3 = h_append_conflict(3, 1, 1, X(2), 0);
    no3.as.append_response.round = n.e->round;
    h_recv(&n, &no3);
    cr_assert(eq(int, h_progress(&n, 3).state, YGGR_PROGRESS_PROBE));
    cr_assert_not_null(h_find(&n, YGGR_MSG_APPEND_REQUEST, 3), "the probe (lost)");
    taken(&n, X(6), 4);
    cr_assert(eq(u64, n.act.compact_below, X(7)));
    h_tick(&n);
    cr_assert(eq(int, h_progress(&n, 3).state, YGGR_PROGRESS_SNAPSHOT));
    cr_assert_not_null(h_find(&n, YGGR_MSG_SNAPSHOT_REQUEST, 3));
    h_fini(&n);
}

/* F9 (also found by `yggr-sim --seed 46 --steps 3000 --heal-at 2000 --features all`: no
 * leader after healing, forever): {1} added voter 5, 5 never received that
 * entry, 1 lost its leadership: 1 needs 5's vote, and 5 (empty configuration) must give
 * it even though it knows neither 1 nor that it is a voter. */
Test(regress, sim_f9_a_new_voter_that_missed_its_promotion_still_votes)
{
    struct h_node j;
    h_init(&j, 5, NULL, 0, NULL);
    struct yggr_msg pv = h_prevote_req(1, 5, 4, 40, 3);
    h_recv(&j, &pv);
    cr_assert(h_find(&j, YGGR_MSG_PRE_VOTE_RESPONSE, 1)->as.vote_response.granted);
    struct yggr_msg v = h_vote_req(1, 5, 4, 40, 3);
    h_recv(&j, &v);
    h_hs_persisted(&j);
    cr_assert(h_find(&j, YGGR_MSG_VOTE_RESPONSE, 1)->as.vote_response.granted);
    h_ticks(&j, 100);
    cr_assert(eq(u64, h_metrics(&j).elections_started, 0), "but never campaigns");
    h_fini(&j);
}

/* Found by `yggr-sim --seed 73 --steps 3000 --heal-at 2000 --features all` (3 nodes, slow
 * disks: elections restarted forever, term 372 after healing): the candidate's election
 * timer ran while its own term was being persisted, so a slow disk ate the timeout and
 * every election restarted before the votes came back. The timer restarts when the
 * RequestVotes go out. */
Test(regress, sim_heal_a_candidate_gets_a_whole_timeout_once_its_term_is_durable)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    cr_assert(eq(u64, n.act.term, 1));
    h_ticks(&n, 9); /* a slow disk */
    h_hs_persisted(&n);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_VOTE_REQUEST), 2));
    h_ticks(&n, 9);
    cr_assert(eq(u64, n.act.term, 1), "still collecting the votes of term 1");
    h_tick(&n);
    cr_assert(eq(u64, n.act.term, 2), "a whole timeout after the votes went out");
    h_fini(&n);
}

/* Found by `yggr-sim --seed 52 --steps 3000 --heal-at 2000 --features all` (no leader
 * forever): leader 2 of {2,3} appended its own removal (config {3}) and crashed; only it
 * holds that entry, so 3 cannot win without 2's vote, 2 refuses 3 (3's log is behind),
 * and 2, not a voter of its latest configuration, never campaigned. A voter of the
 * committed configuration may campaign; it counts votes in the latest one (not itself),
 * finishes the change and steps down when it commits. */
Test(regress, sim_heal_a_leader_that_appended_its_own_removal_can_finish_it)
{
    struct h_node n;
    memset(&n, 0, sizeof(n));
    n.id = 2;
    struct yggr_engine_config c = h_config(2);
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    static struct yggr_entry log[5] = {
        {.index = 1, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER, .node = 1},
        {.index = 2, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER, .node = 2},
        {.index = 3, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER, .node = 3},
        {.index = 4, .term = 1, .type = YGGR_ENTRY_NOOP},
        {.index = 5, .term = 1, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_REMOVE_VOTER,
         .node = 2}};
    static struct yggr_entry configs[4];
    configs[0] = log[0];
    configs[1] = log[1];
    configs[2] = log[2];
    configs[3] = log[4];
    static const struct yggr_term_run runs[2] = {{0, 1}, {1, 4}};
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    ev.as.recover.term = 1;
    ev.as.recover.vote = 2;
    ev.as.recover.first_index = 1;
    ev.as.recover.last_index = 5;
    ev.as.recover.terms = runs;
    ev.as.recover.term_count = 2;
    ev.as.recover.configs = configs;
    ev.as.recover.config_count = 4;
    ev.as.recover.tail = log;
    ev.as.recover.tail_count = 5;
    h_step(&n, &ev);
    struct yggr_membership m;
    yggr_engine_config_latest(n.e, &m);
    cr_assert(not(yggr_membership_is_voter(&m, 2)), "its removal is in its log");
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "a voter of the committed config");
    h_hs_persisted(&n);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_VOTE_REQUEST), 2));
    struct yggr_msg g3 = h_vote_resp(3, 2, 2, true);
    h_recv(&n, &g3);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "self does not count: {1,3} vote");
    struct yggr_msg g1 = h_vote_resp(1, 2, 2, true);
    h_recv(&n, &g1);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    h_persist_all(&n);
    struct yggr_msg ok1 = h_append_ok(1, 2, 2, 6, n.e->round);
    struct yggr_msg ok3 = h_append_ok(3, 2, 2, 6, n.e->round);
    h_recv(&n, &ok1);
    h_recv(&n, &ok3);
    cr_assert(eq(u64, n.act.commit_index, 6), "the removal committed");
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER), "and then it steps down");
    uint64_t started = h_metrics(&n).elections_started;
    h_ticks(&n, 50);
    cr_assert(eq(u64, h_metrics(&n).elections_started, started), "removed: no more elections");
    h_fini(&n);
}

/* F10 (also found by `yggr-sim --seed 251 --steps 3000 --heal-at 2000 --features all`: a
 * joiner never finished a 238-byte snapshot): with reordering, every acknowledgement below the
 * acknowledged offset restarted the stream and one above what had been sent was ignored,
 * so the stream kept rewinding. An acknowledgement beyond what was sent now skips ahead
 * (the follower holds those bytes), and the stream restarts at most once per tick. */
Test(regress, sim_f10_reordered_snapshot_acks_do_not_wedge_the_stream)
{
    struct yggr_engine_config c = h_config(1);
    c.snapshot_chunk_bytes = 3;
    c.snapshot_chunks_inflight = 4;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(3, 1, 1, true);
    h_recv(&n, &g);
    h_propose(&n, 5);
    h_persist_all(&n);
    struct yggr_msg ok = h_append_ok(3, 1, 1, X(6), n.e->round);
    h_recv(&n, &ok);
    taken(&n, X(6), 30);
    struct yggr_msg cf = h_append_conflict(2, 1, 1, 2, 0);
    h_recv(&n, &cf);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_SNAPSHOT_REQUEST), 4), "0, 3, 6, 9");
    struct yggr_msg a = {.type = YGGR_MSG_SNAPSHOT_RESPONSE, .from = 2, .to = 1, .term = 1};
    a.as.snapshot_response.last = (struct yggr_log_id){X(6), 1};
    a.as.snapshot_response.next_offset = 9;
    h_recv(&n, &a);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_SNAPSHOT_REQUEST), 3), "12, 15, 18");
    a.as.snapshot_response.next_offset = 3; /* reordered: older than 9 */
    h_recv(&n, &a);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_SNAPSHOT_REQUEST), 4), "one restart (from 3)");
    h_recv(&n, &a);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_SNAPSHOT_REQUEST), 0), "not again this tick");
    a.as.snapshot_response.next_offset = 21; /* it holds more than we resent */
    h_recv(&n, &a);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_SNAPSHOT_REQUEST, 2);
    cr_assert_not_null(m);
    cr_assert(eq(u64, m->as.snapshot.offset, 21), "skips ahead");
    h_fini(&n);
}

/* F9, the other half: a just-added voter started as inactive, so a leader whose quorum
 * needs it stepped down at the next check-quorum, possibly right after the change, before
 * the new voter could answer. It now counts as active until the check after that. */
Test(regress, sim_f9_a_new_voter_counts_as_active_until_the_next_check_quorum)
{
    struct yggr_engine_config c = h_config(1);
    c.check_quorum = true;
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    h_persist_all(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER));
    h_ticks(&n, 9); /* the next check-quorum is one tick away */
    change(&n, YGGR_CHANGE_ADD_VOTER, 2);
    cr_assert(eq(int, n.act.result.err, 0));
    h_tick(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_LEADER), "2 had no time to answer yet");
    h_ticks(&n, 10);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER), "a whole period of silence");
    h_fini(&n);
}

/* F11: a success without a round (a reference peer) was capped at the end of the OLDEST
 * outstanding request, usually a heartbeat naming match, so such a peer gained about one
 * entry per heartbeat. The conservative crediting now only confirms rounds (reads,
 * leases); match moves to what the success claims. */
Test(regress, sim_f11_a_success_without_a_round_moves_match_to_what_it_claims)
{
    struct h_node n;
    h_make_leader(&n);
    h_tick(&n); /* heartbeats at match: the oldest outstanding requests */
    uint64_t hb_round = n.e->round;
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2));
    h_propose(&n, 4); /* X(2)..X(5) */
    h_persist_all(&n);
    struct yggr_msg ok = h_append_ok(2, 1, 1, X(5), 0);
    h_recv(&n, &ok);
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(5)), "not capped at the heartbeat");
    cr_assert(eq(u64, n.act.commit_index, X(5)));
    cr_assert(eq(u64, engine_peer(n.e, 2)->acked_round, hb_round),
              "rounds stay credited with the oldest request");
    h_fini(&n);
}

/* F13: a founder's bootstrap append was torn (entry 1 of 3 durable), RECOVER completed it
 * (2..3 pending), the host snapshotted at its applied index 1, i.e. (1, 0), and the node
 * crashed before 2..3 were durable. With a snapshot RECOVER ignored base_config: the
 * configuration was the snapshot's, {1}, so the founder elected itself alone and lost
 * the committed bootstrap entries (two leaders in a term, leader completeness). A
 * snapshot of term 0 covers a prefix of the bootstrap entries; the rest is completed. */
Test(regress, sim_f13_a_snapshot_inside_the_bootstrap_prefix_keeps_every_founder)
{
    struct h_node n;
    memset(&n, 0, sizeof(n));
    n.id = 1;
    struct yggr_engine_config c = h_config(1);
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    struct yggr_recovered *r = &ev.as.recover;
    r->has_snapshot = true;
    r->snapshot.last = (struct yggr_log_id){1, 0};
    yggr_membership_apply(&r->snapshot.config, YGGR_CHANGE_ADD_VOTER, 1);
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&r->base_config, YGGR_CHANGE_ADD_VOTER, id);
    }
    static const struct yggr_term_run runs[1] = {{0, 1}};
    r->first_index = 1; /* the torn entry 1 is still stored below the snapshot */
    r->last_index = 1;
    r->terms = runs;
    r->term_count = 1;
    h_step(&n, &ev);
    cr_assert(h_has(&n, YGGR_ACT_APPEND), "the rest of the bootstrap entries");
    cr_assert(eq(u64, n.act.append.entries[0].index, 2));
    cr_assert(eq(u32, n.act.append.count, 2));
    cr_assert(eq(u64, n.act.last_index, 3));
    cr_assert(eq(u64, n.act.commit_index, 3));
    struct yggr_membership m;
    yggr_engine_config_latest(n.e, &m);
    cr_assert(eq(u32, m.voter_count, 3));
    h_persist_all(&n);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE), "it needs a vote: not leader alone");
    cr_assert_not_null(h_find(&n, YGGR_MSG_VOTE_REQUEST, 2));
    h_fini(&n);

    /* The same with the log dropped (first_index above the snapshot, nothing stored). */
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    r->first_index = 2;
    r->last_index = 1;
    r->terms = NULL;
    r->term_count = 0;
    h_step(&n, &ev);
    cr_assert(eq(u64, n.act.last_index, 3));
    yggr_engine_config_latest(n.e, &m);
    cr_assert(eq(u32, m.voter_count, 3));
    h_fini(&n);

    /* The snapshot at (2, 0) above a stored log that ends below it ([1, 1]): the stale log
     * is rewritten with the bootstrap entries (one APPEND truncating at its first index,
     * contiguous), then compacted below the snapshot. */
    cr_assert(eq(int, yggr_engine_create(&c, &n.e), 0));
    r->snapshot.last = (struct yggr_log_id){2, 0};
    yggr_membership_apply(&r->snapshot.config, YGGR_CHANGE_ADD_VOTER, 2);
    r->first_index = 1;
    r->last_index = 1;
    r->terms = runs;
    r->term_count = 1;
    h_step(&n, &ev);
    cr_assert(h_has(&n, YGGR_ACT_APPEND));
    cr_assert(eq(u64, n.act.append.truncate_from, 1));
    cr_assert(eq(u32, n.act.append.count, 3));
    for (uint32_t i = 0; i < 3; i++) {
        const struct yggr_entry *en = &n.act.append.entries[i];
        cr_assert(eq(u64, en->index, i + 1));
        cr_assert(eq(u64, en->term, 0));
        cr_assert(eq(u64, en->node, i + 1));
        cr_assert(eq(int, en->type, YGGR_ENTRY_CONFIG));
    }
    cr_assert(h_has(&n, YGGR_ACT_COMPACT));
    cr_assert(eq(u64, n.act.compact_below, 3));
    cr_assert(eq(u64, n.act.last_index, 3));
    yggr_engine_config_latest(n.e, &m);
    cr_assert(eq(u32, m.voter_count, 3));
    h_fini(&n);
}
