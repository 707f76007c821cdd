/* SPDX-License-Identifier: MIT */
/* Engine reads and transfer: read_index, lease, leadership_transfer (REFERENCE 6.1). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

static uint64_t round_sent(const struct h_node *n, uint64_t to)
{
    const struct yggr_msg *m = h_find(n, YGGR_MSG_APPEND_REQUEST, to);
    cr_assert_not_null(m);
    return m->as.append.round;
}

static void ack(struct h_node *n, uint64_t from, uint64_t round)
{
    struct yggr_msg ok = h_append_ok(from, n->id, n->act.term, H_BOOT + 1, round);
    h_recv(n, &ok);
}

/* ---------------------------------------------------------------- read_index */

Test(read_index, a_leader_without_a_committed_entry_of_its_term_is_not_ready)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(&n, &g);
    h_read(&n, 5);
    cr_assert(eq(int, h_read_result(&n, 5)->status, YGGR_READ_NOT_READY));
    h_fini(&n);
}

Test(read_index, a_read_is_ready_after_a_majority_acknowledges_its_round)
{
    struct h_node n;
    h_make_leader(&n);
    h_read(&n, 7);
    cr_assert_null(h_read_result(&n, 7));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 2), "one confirmation round");
    uint64_t r = round_sent(&n, 2);
    ack(&n, 2, r - 1);
    cr_assert_null(h_read_result(&n, 7), "an older round proves nothing");
    ack(&n, 2, r);
    const struct yggr_read_result *res = h_read_result(&n, 7);
    cr_assert_not_null(res);
    cr_assert(eq(int, res->status, YGGR_READ_READY));
    cr_assert(eq(u64, res->index, H_BOOT + 1));
    cr_assert(eq(u64, h_metrics(&n).read_index_started, 1));
    h_fini(&n);
}

Test(read_index, reads_batch_into_the_next_round_while_one_is_in_flight)
{
    struct h_node n;
    h_make_leader(&n);
    h_read(&n, 1);
    uint64_t r1 = round_sent(&n, 2);
    h_read(&n, 2);
    h_read(&n, 3);
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_APPEND_REQUEST), 0), "batched: no new broadcast");
    ack(&n, 3, r1);
    cr_assert(eq(int, h_read_result(&n, 1)->status, YGGR_READ_READY));
    cr_assert_null(h_read_result(&n, 2));
    uint64_t r2 = round_sent(&n, 2);
    cr_assert(eq(u64, r2, r1 + 1), "the next round goes out at once");
    ack(&n, 2, r2);
    cr_assert(eq(int, h_read_result(&n, 2)->status, YGGR_READ_READY));
    cr_assert(eq(int, h_read_result(&n, 3)->status, YGGR_READ_READY));
    h_fini(&n);
}

Test(read_index, a_single_node_leader_serves_at_once)
{
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, NULL);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    h_persist_all(&n);
    h_read(&n, 4);
    cr_assert(eq(int, h_read_result(&n, 4)->status, YGGR_READ_READY));
    h_fini(&n);
}

Test(read_index, followers_redirect_or_report_not_ready)
{
    struct h_node f;
    h_make_follower(&f, 1);
    h_read(&f, 1);
    cr_assert(eq(int, h_read_result(&f, 1)->status, YGGR_READ_NOT_LEADER));
    cr_assert(eq(u64, h_read_result(&f, 1)->leader_hint, 2));
    h_fini(&f);
    struct h_node n;
    h_init3(&n, 1);
    h_read(&n, 2);
    cr_assert(eq(int, h_read_result(&n, 2)->status, YGGR_READ_NOT_READY));
    h_fini(&n);
}

Test(read_index, stepping_down_fails_every_pending_read)
{
    struct h_node n;
    h_make_leader(&n);
    h_read(&n, 1);
    h_read(&n, 2);
    struct yggr_msg hi = h_append_conflict(2, 1, 5, 1, 0);
    h_recv(&n, &hi);
    cr_assert(eq(int, h_read_result(&n, 1)->status, YGGR_READ_STEPPED_DOWN));
    cr_assert(eq(int, h_read_result(&n, 2)->status, YGGR_READ_STEPPED_DOWN));
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER), "visible in the summary");
    h_fini(&n);
}

Test(read_index, a_full_queue_answers_busy)
{
    struct h_node n;
    h_make_leader(&n);
    for (uint64_t id = 1; id <= 16; id++) {
        h_read(&n, id);
    }
    h_read(&n, 99);
    cr_assert(eq(int, h_read_result(&n, 99)->status, YGGR_READ_BUSY));
    h_fini(&n);
}

/* ---------------------------------------------------------------- lease */

static void lease_leader(struct h_node *n, uint32_t lease)
{
    struct yggr_engine_config c = h_config(1);
    c.pre_vote = true;
    c.lease_duration_ticks = lease;
    static const uint64_t ids[3] = {1, 2, 3};
    h_init(n, 1, ids, 3, &c);
    h_ticks(n, 10);
    struct yggr_msg pg = h_prevote_resp(2, 1, 0, true);
    h_recv(n, &pg);
    h_hs_persisted(n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(n, &g);
    cr_assert(eq(int, n->act.role, YGGR_ROLE_LEADER));
    h_persist_all(n);
}

Test(lease, a_fresh_leader_without_a_majority_ack_falls_back_to_read_index)
{
    struct h_node n;
    lease_leader(&n, 5);
    struct yggr_msg ok = h_append_ok(2, 1, 1, H_BOOT + 1, 0);
    h_recv(&n, &ok); /* commits the no-op; round 0: credited with the oldest round */
    cr_assert(eq(u64, n.act.commit_index, H_BOOT + 1));
    h_ticks(&n, 6);
    h_read(&n, 1);
    cr_assert_null(h_read_result(&n, 1), "no fresh majority ack: ReadIndex");
    cr_assert(eq(u64, h_metrics(&n).read_index_started, 1));
    h_fini(&n);
}

Test(lease, a_fresh_majority_ack_serves_at_once_until_the_lease_runs_out)
{
    struct h_node n;
    lease_leader(&n, 5);
    h_tick(&n);
    uint64_t r = round_sent(&n, 2);
    ack(&n, 2, r);
    h_read(&n, 1);
    cr_assert(eq(int, h_read_result(&n, 1)->status, YGGR_READ_READY));
    cr_assert(eq(u64, h_metrics(&n).read_index_started, 0));
    cr_assert(eq(u64, h_metrics(&n).reads_completed, 1));
    h_ticks(&n, 4);
    h_read(&n, 2);
    cr_assert(eq(int, h_read_result(&n, 2)->status, YGGR_READ_READY), "tick 4 < 5");
    h_tick(&n);
    h_read(&n, 3);
    cr_assert_null(h_read_result(&n, 3), "expired: measured from the round's send tick");
    h_fini(&n);
}

Test(lease, lease_zero_disables_and_a_new_term_starts_without_a_lease)
{
    struct h_node n;
    lease_leader(&n, 0);
    h_tick(&n);
    ack(&n, 2, round_sent(&n, 2));
    h_read(&n, 1);
    cr_assert_null(h_read_result(&n, 1));
    h_fini(&n);
}

Test(lease, sending_timeout_now_revokes_the_lease)
{
    struct h_node n;
    lease_leader(&n, 5);
    h_tick(&n);
    ack(&n, 2, round_sent(&n, 2));
    struct yggr_event t = {.type = YGGR_EVENT_TRANSFER, .as.transfer.target = 2};
    h_step(&n, &t);
    cr_assert_not_null(h_find(&n, YGGR_MSG_TIMEOUT_NOW, 2));
    h_read(&n, 1);
    cr_assert_null(h_read_result(&n, 1), "no lease reads after TimeoutNow");
    h_fini(&n);
}

/* ---------------------------------------------------------------- leadership_transfer */

static void transfer(struct h_node *n, uint64_t target)
{
    struct yggr_event t = {.type = YGGR_EVENT_TRANSFER, .as.transfer.target = target};
    h_step(n, &t);
    cr_assert(h_has(n, YGGR_ACT_RESULT));
}

Test(leadership_transfer, a_follower_redirects_and_bad_targets_are_refused)
{
    struct h_node f;
    h_make_follower(&f, 1);
    transfer(&f, 3);
    cr_assert(eq(int, f.act.result.err, YGGR_ERR_NOT_LEADER));
    h_fini(&f);
    struct h_node n;
    h_make_leader(&n);
    transfer(&n, 1);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_INVALID_TARGET));
    transfer(&n, 9);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_INVALID_TARGET));
    h_fini(&n);
}

Test(leadership_transfer, a_caught_up_target_gets_timeout_now_at_once)
{
    struct h_node n;
    h_make_leader(&n);
    transfer(&n, 2);
    cr_assert(eq(int, n.act.result.err, 0));
    cr_assert(n.act.transferring);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_TIMEOUT_NOW, 2);
    cr_assert_not_null(m);
    cr_assert(eq(u64, m->as.timeout_now.leader_id, 1));
    transfer(&n, 3);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_TRANSFER_IN_PROGRESS));
    h_fini(&n);
}

Test(leadership_transfer, a_lagging_target_is_caught_up_first_and_proposals_wait)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 2);
    transfer(&n, 3);
    cr_assert_null(h_find(&n, YGGR_MSG_TIMEOUT_NOW, 3));
    h_propose(&n, 1);
    cr_assert(eq(int, n.act.result.err, YGGR_ERR_TRANSFER_IN_PROGRESS));
    struct yggr_msg ok = h_append_ok(3, 1, 1, H_BOOT + 3, n.e->round);
    h_recv(&n, &ok);
    cr_assert_not_null(h_find(&n, YGGR_MSG_TIMEOUT_NOW, 3));
    h_fini(&n);
}

Test(leadership_transfer, an_unfinished_transfer_times_out_and_proposals_resume)
{
    struct h_node n;
    h_make_leader(&n);
    h_propose(&n, 1);
    transfer(&n, 3);
    h_ticks(&n, 10);
    cr_assert(not(n.act.transferring));
    cr_assert(eq(u64, h_metrics(&n).transfers_timed_out, 1));
    h_propose(&n, 1);
    cr_assert(eq(int, n.act.result.err, 0));
    h_fini(&n);
}

Test(leadership_transfer, the_target_campaigns_at_once_skipping_pre_vote_with_the_flag)
{
    struct yggr_engine_config c = h_config(1);
    c.pre_vote = true;
    static const uint64_t ids[3] = {1, 2, 3};
    struct h_node n;
    h_init(&n, 1, ids, 3, &c);
    struct yggr_msg hb = h_append(2, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &hb);
    h_hs_persisted(&n);
    struct yggr_msg other = {.type = YGGR_MSG_TIMEOUT_NOW, .from = 3, .to = 1, .term = 1};
    other.as.timeout_now.leader_id = 3;
    h_recv(&n, &other);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER), "only from our leader");
    struct yggr_msg tn = {.type = YGGR_MSG_TIMEOUT_NOW, .from = 2, .to = 1, .term = 1};
    tn.as.timeout_now.leader_id = 2;
    h_recv(&n, &tn);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_CANDIDATE));
    cr_assert(eq(u64, n.act.term, 2));
    h_hs_persisted(&n);
    const struct yggr_msg *v = h_find(&n, YGGR_MSG_VOTE_REQUEST, 3);
    cr_assert_not_null(v);
    cr_assert(v->as.vote_request.transfer);
    h_fini(&n);
}
