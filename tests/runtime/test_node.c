/* SPDX-License-Identifier: MIT */
/* Runtime behaviour through the public API over the in-memory storage and transport:
 * elections, replication, reads, backpressure, snapshots, membership, failures. */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "cluster.h"
#include "yggr/yggr.h"

static struct cluster c;

static void teardown(void)
{
    cluster_destroy(&c);
}

TestSuite(node, .fini = teardown, .timeout = 60);

Test(node, single_node_self_elects_and_applies_in_order)
{
    cluster_init(&c, 1, false, NULL);
    cluster_start_all(&c);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    uint64_t total = 0;
    cr_assert(eq(int, cluster_add(&c, 0, 5, &total, NULL), 0));
    cr_assert(eq(u64, total, 5));
    cr_assert(eq(int, cluster_add(&c, 0, 3, &total, NULL), 0));
    cr_assert(eq(u64, total, 8));
    struct yggr_status st;
    cr_assert(eq(int, yggr_status(c.node[0], &st), 0));
    cr_assert(eq(int, st.role, YGGR_ROLE_LEADER));
    cr_assert(eq(u64, st.leader, 1), "a leader reports itself as leader (REFERENCE 8.5 #37)");
    cr_assert(ge(u64, st.commit_index, 3));
    cr_assert(ge(u64, st.applied_index, 3));
}

Test(node, three_nodes_elect_and_replicate_to_all)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    uint64_t total = 0;
    uint64_t index = 0;
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 7, &total, &index), 0));
    cr_assert(eq(u64, total, 7));
    cr_assert(cluster_wait_applied(&c, index, 5000));
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert(eq(u64, counter_total(&c.sm[i]), 7), "node %u", i + 1);
    }
}

Test(node, follower_refuses_writes_with_leader_hint)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 1, NULL, NULL), 0));
    uint32_t f = ((uint32_t)l + 1) % 3;
    uint64_t hint = 0;
    uint64_t v = 1;
    int rc = yggr_propose_sync(c.node[f], &v, 8, NULL, 0, NULL, NULL, &hint, 2000);
    cr_assert(eq(int, rc, YGGR_ERR_NOT_LEADER));
    cr_assert(eq(u64, hint, (uint64_t)l + 1));
}

Test(node, survivors_elect_a_new_leader_after_the_leader_stops)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 4, NULL, NULL), 0));
    cluster_stop(&c, (uint32_t)l);
    int l2 = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l2, 0));
    cr_assert(ne(int, l2, l));
    uint64_t total = 0;
    cr_assert(eq(int, cluster_add_any(&c, 6, &total, 5000), 0));
    cr_assert(eq(u64, total, 10));
}

Test(node, full_restart_reapplies_every_committed_entry)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    for (uint64_t v = 1; v <= 20; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, NULL, 5000), 0));
    }
    for (uint32_t i = 0; i < 3; i++) {
        cluster_stop(&c, i);
    }
    cluster_start_all(&c);
    uint64_t total = 0;
    cr_assert(eq(int, cluster_add_any(&c, 0, &total, 5000), 0));
    cr_assert(cluster_total_ok(&c, total, 210), "sum 1..20 survives a full restart (%llu)",
              (unsigned long long)total);
}

struct read_ctx {
    atomic_int done;
    int err;
    uint64_t total;
};

static void read_cb(void *ctx, int err, uint64_t hint, void *sm_ctx)
{
    struct read_ctx *r = ctx;
    (void)hint;
    r->err = err;
    if (err == 0) {
        r->total = counter_total(sm_ctx);
    }
    atomic_store(&r->done, 1);
}

static int do_read(struct yggr_node *n, enum yggr_read_mode mode, uint64_t *total)
{
    struct read_ctx r = {0};
    int rc = yggr_read(n, mode, read_cb, &r);
    if (rc != 0) {
        return rc;
    }
    uint64_t until = now_ms() + 5000;
    while (!atomic_load(&r.done) && now_ms() < until) {
        sleep_ms(1);
    }
    cr_assert(atomic_load(&r.done), "read callback never ran");
    *total = r.total;
    return r.err;
}

Test(node, linearizable_read_observes_acknowledged_writes)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 11, NULL, NULL), 0));
    uint64_t total = 0;
    cr_assert(eq(int, do_read(c.node[l], YGGR_READ_LINEARIZABLE, &total), 0));
    cr_assert(eq(u64, total, 11));
    uint32_t f = ((uint32_t)l + 1) % 3;
    int rc = do_read(c.node[f], YGGR_READ_LINEARIZABLE, &total);
    cr_assert(eq(int, rc, YGGR_ERR_NOT_LEADER), "followers redirect linearizable reads");
    cr_assert(eq(int, do_read(c.node[f], YGGR_READ_LOCAL, &total), 0));
}

static void lease_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->lease_duration_ticks = 5;
}

Test(node, lease_read_observes_acknowledged_writes)
{
    cluster_init(&c, 3, false, lease_tweak);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 3, NULL, NULL), 0));
    uint64_t total = 0;
    cr_assert(eq(int, do_read(c.node[l], YGGR_READ_LEASE, &total), 0));
    cr_assert(eq(u64, total, 3));
}

static void busy_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->max_pending_proposals = 1;
}

static void noop_cb(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *r,
                    uint32_t len)
{
    (void)index;
    (void)hint;
    (void)r;
    (void)len;
    atomic_int *e = ctx;
    atomic_store(e, err == 0 ? 1 : err);
}

Test(node, busy_when_max_pending_proposals_is_reached)
{
    cluster_init(&c, 1, false, busy_tweak);
    cluster_start_all(&c);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    c.sm[0].apply_delay_us = 200000;
    atomic_int first = 0;
    uint64_t v = 1;
    cr_assert(eq(int, yggr_propose(c.node[0], &v, 8, noop_cb, &first), 0));
    cr_assert(eq(int, yggr_propose(c.node[0], &v, 8, noop_cb, &first), YGGR_ERR_BUSY));
    uint64_t until = now_ms() + 5000;
    while (atomic_load(&first) == 0 && now_ms() < until) {
        sleep_ms(5);
    }
    cr_assert(eq(int, atomic_load(&first), 1));
    cr_assert(eq(int, yggr_propose(c.node[0], &v, 8, noop_cb, &first), 0), "slot is free again");
    c.sm[0].apply_delay_us = 0;
}

struct count_ctx {
    atomic_int ok;
    atomic_int failed;
    atomic_int calls;
};

static void count_cb(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *r,
                     uint32_t len)
{
    (void)index;
    (void)hint;
    (void)r;
    (void)len;
    struct count_ctx *k = ctx;
    atomic_fetch_add(err == 0 ? &k->ok : &k->failed, 1);
    atomic_fetch_add(&k->calls, 1);
}

Test(node, shutdown_with_requests_in_flight_completes_each_exactly_once)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    struct count_ctx k = {0};
    int queued = 0;
    for (int i = 0; i < 500; i++) {
        uint64_t v = 1;
        if (yggr_propose(c.node[l], &v, 8, count_cb, &k) == 0) {
            queued++;
        }
    }
    cluster_stop(&c, (uint32_t)l);
    cr_assert(eq(int, atomic_load(&k.calls), queued), "every accepted proposal completed once");
    cr_assert(eq(int, atomic_load(&k.ok) + atomic_load(&k.failed), queued));
}

Test(node, storage_failure_is_fatal_and_fails_every_waiter)
{
    cluster_init(&c, 1, false, NULL);
    cluster_start_all(&c);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    cr_assert(eq(int, cluster_add(&c, 0, 1, NULL, NULL), 0));
    mem_disk_fail_next_append(c.disk[0]);
    uint64_t v = 1;
    int rc = yggr_propose_sync(c.node[0], &v, 8, NULL, 0, NULL, NULL, NULL, 5000);
    cr_assert(eq(int, rc, YGGR_ERR_FATAL));
    struct yggr_status st;
    cr_assert(eq(int, yggr_status(c.node[0], &st), 0));
    cr_assert(eq(int, st.health, YGGR_HEALTH_FATAL));
    cr_assert(ne(str, st.fatal_reason, ""));
    cr_assert(eq(int, yggr_propose(c.node[0], &v, 8, noop_cb, NULL), YGGR_ERR_FATAL),
              "calls after a fatal error fail at once");
}

static void snap_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->snapshot_threshold_entries = 16;
}

Test(node, snapshot_taken_on_threshold_and_restored_on_restart)
{
    cluster_init(&c, 1, false, snap_tweak);
    cluster_start_all(&c);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    for (uint64_t v = 1; v <= 50; v++) {
        cr_assert(eq(int, cluster_add(&c, 0, v, NULL, NULL), 0));
    }
    struct yggr_metrics m;
    uint64_t until = now_ms() + 3000;
    do {
        cr_assert(eq(int, yggr_metrics(c.node[0], &m), 0));
    } while (m.snapshots_taken == 0 && now_ms() < until);
    cr_assert(gt(u64, m.snapshots_taken, 0));
    cluster_stop(&c, 0);
    cluster_start(&c, 0);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    uint64_t total = 0;
    cr_assert(eq(int, cluster_add(&c, 0, 0, &total, NULL), 0));
    cr_assert(eq(u64, total, 1275), "sum 1..50 restored from snapshot + log");
    cr_assert(eq(int, yggr_metrics(c.node[0], &m), 0));
    cr_assert(eq(u64, m.snapshots_restored, 1));
}

Test(node, trigger_snapshot_and_metrics_report_progress)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 2, NULL, NULL), 0));
    cr_assert(eq(int, yggr_trigger_snapshot(c.node[l], 5000), 0));
    struct yggr_metrics m;
    cr_assert(eq(int, yggr_metrics(c.node[l], &m), 0));
    cr_assert(eq(u64, m.role_code, 3));
    cr_assert(ge(u64, m.leader_elections_won, 1));
    cr_assert(ge(u64, m.snapshots_taken, 1));
    cr_assert(eq(u32, m.peer_count, 2));
    cr_assert(ge(u64, m.peers[0].match_index, 1));
}

Test(node, transfer_leadership_with_pre_vote_on)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 1, NULL, NULL), 0));
    uint64_t target = (((uint32_t)l + 1) % 3) + 1;
    cr_assert(eq(int, yggr_transfer_leadership(c.node[l], target, 5000), 0));
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), (int)target - 1));
    cr_assert(eq(int, yggr_transfer_leadership(c.node[target - 1], target, 1000),
                 YGGR_ERR_INVALID_TARGET));
}

Test(node, membership_add_learner_promote_and_remove)
{
    cluster_init(&c, 4, false, NULL);
    c.cfg[3].bootstrap = YGGR_BOOTSTRAP_JOIN;
    for (uint32_t i = 0; i < 3; i++) {
        c.cfg[i].peer_count = 2; /* founders: nodes 1..3 */
    }
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    uint64_t total = 0;
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 9, &total, NULL), 0));
    struct yggr_membership m;
    cr_assert(eq(int, yggr_add_learner(c.node[l], 4, c.addr[3], 5000, &m), 0));
    cr_assert(eq(u32, m.learner_count, 1));
    cr_assert(
        eq(int, yggr_add_learner(c.node[l], 4, c.addr[3], 5000, &m), YGGR_ERR_ALREADY_LEARNER));
    uint64_t until = now_ms() + 5000;
    while (counter_total(&c.sm[3]) != 9 && now_ms() < until) {
        sleep_ms(5);
    }
    cr_assert(eq(u64, counter_total(&c.sm[3]), 9), "the learner caught up");
    cr_assert(eq(int, yggr_promote_learner(c.node[l], 4, 5000, &m), 0));
    cr_assert(eq(u32, m.voter_count, 4));
    uint32_t victim = ((uint32_t)l + 1) % 3;
    cr_assert(eq(int, yggr_remove_voter(c.node[l], victim + 1, 5000, &m), 0));
    cr_assert(eq(u32, m.voter_count, 3));
    cr_assert(eq(int, yggr_remove_voter(c.node[l], 42, 5000, &m), YGGR_ERR_UNKNOWN_NODE));
}

/* Regression (chaos finding F1): a removed node that kept running answered every request
 * "no leader known" forever, so clients stayed on it. It must say it was removed. */
Test(node, removed_node_refuses_requests_with_removed)
{
    cluster_init(&c, 3, false, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 3, NULL, NULL), 0));
    uint32_t victim = ((uint32_t)l + 1) % 3;
    struct yggr_membership m;
    cr_assert(eq(int, yggr_remove_voter(c.node[l], victim + 1, 5000, &m), 0));
    struct yggr_status st = {0};
    uint64_t until = now_ms() + 10000;
    while (now_ms() < until) {
        cr_assert(eq(int, yggr_status(c.node[victim], &st), 0));
        if (st.removed) {
            break;
        }
        sleep_ms(5);
    }
    cr_assert(st.removed, "node %u never learned it was removed", victim + 1);
    uint64_t v = 1;
    uint64_t hint = 0;
    cr_assert(eq(int, yggr_propose_sync(c.node[victim], &v, 8, NULL, 0, NULL, NULL, &hint, 5000),
                 YGGR_ERR_REMOVED));
    cr_assert(eq(int, yggr_status(c.node[l], &st), 0));
    cr_assert(not(st.removed), "the leader is still a member");
    cr_assert(eq(int, cluster_add(&c, (uint32_t)l, 2, NULL, NULL), 0), "the rest still commits");
}

Test(node, slow_state_machine_does_not_stall_status)
{
    cluster_init(&c, 1, false, NULL);
    cluster_start_all(&c);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    cr_assert(eq(int, cluster_add(&c, 0, 1, NULL, NULL), 0));
    c.sm[0].apply_delay_us = 400000;
    struct count_ctx k = {0};
    uint64_t v = 1;
    cr_assert(eq(int, yggr_propose(c.node[0], &v, 8, count_cb, &k), 0));
    cr_assert(eq(int, yggr_propose(c.node[0], &v, 8, count_cb, &k), 0));
    /* While apply() sleeps, status keeps answering and shows commit running ahead. */
    struct yggr_status st;
    bool ahead = false;
    for (int i = 0; i < 200 && !ahead; i++) {
        cr_assert(eq(int, yggr_status(c.node[0], &st), 0));
        ahead = st.commit_index > st.applied_index;
        sleep_ms(1);
    }
    cr_assert(ahead, "commit %llu applied %llu", (unsigned long long)st.commit_index,
              (unsigned long long)st.applied_index);
    cr_assert(eq(int, st.role, YGGR_ROLE_LEADER));
    while (atomic_load(&k.calls) < 2) {
        sleep_ms(5);
    }
    c.sm[0].apply_delay_us = 0;
}

static void short_read_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->snapshot_threshold_entries = 16;
    cfg->snapshot_chunk_bytes = 16; /* the counter's snapshot takes several chunks */
}

/* engine.h: a host whose snapshot read comes back short must not send the prefix as the
 * final chunk: the wire has no total size, so the follower installs what it got as the
 * whole snapshot. The driver sent a short read with `done` as the engine had set it for
 * the full length; the follower's restore then failed. */
Test(node, a_short_snapshot_read_never_ends_an_install_early)
{
    cluster_init(&c, 3, false, short_read_tweak);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 5000);
    cr_assert(ge(int, l, 0));
    uint32_t lag = ((uint32_t)l + 1) % 3;
    cluster_stop(&c, lag);
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 40; v++) {
        cr_assert(eq(int, cluster_add(&c, (uint32_t)l, v, &total, NULL), 0));
    }
    struct yggr_metrics m;
    uint64_t until = now_ms() + 3000;
    do {
        cr_assert(eq(int, yggr_metrics(c.node[l], &m), 0));
    } while (m.snapshots_taken == 0 && now_ms() < until);
    cr_assert(gt(u64, m.snapshots_taken, 0), "the leader compacted its log");
    mem_disk_short_snap_reads(c.disk[l], 1);
    cluster_start(&c, lag);
    struct yggr_status st;
    cr_assert(eq(int, yggr_status(c.node[l], &st), 0));
    cr_assert(cluster_wait_applied(&c, st.commit_index, 10000));
    cr_assert(eq(u64, counter_total(&c.sm[lag]), total));
    cr_assert(eq(int, yggr_metrics(c.node[lag], &m), 0));
    cr_assert(ge(u64, m.snapshots_installed, 1));
}

/* Stress coverage of the batched payload references on the apply path while the engine
 * evicts entries early (a small cache), so the apply items are often the only holders.
 * (A race here, items published before their run's references were taken, was caught
 * intermittently by tests/tools/yggr_kv.sh; this test did not reproduce it deterministically,
 * so it is coverage, not a regression test.) */
Test(node, apply_path_holds_payload_references_under_cache_eviction)
{
    cluster_init(&c, 1, false, NULL);
    c.cfg[0].max_pending_proposals = 1u << 16;
    c.cfg[0].max_pending_applies = 1u << 16;
    c.cfg[0].log_cache_entries = 512; /* the engine evicts early: apply holds the refs */
    c.cfg[0].max_batch_entries = 128;
    cluster_start_all(&c);
    cr_assert(eq(int, cluster_wait_leader(&c, 3000), 0));
    struct count_ctx k = {0};
    int sent = 0;
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 200; i++) {
            uint64_t v = 1;
            sent += yggr_propose(c.node[0], &v, 8, count_cb, &k) == 0;
        }
        while (atomic_load(&k.calls) < sent - 400) {
            sched_yield(); /* keep about a cache's worth in flight */
        }
    }
    uint64_t until = now_ms() + 30000;
    while (atomic_load(&k.calls) < sent && now_ms() < until) {
        sleep_ms(5);
    }
    cr_assert(eq(int, atomic_load(&k.calls), sent), "every accepted proposal completed");
    cr_assert(gt(int, atomic_load(&k.ok), sent / 2), "most were applied (the rest BUSY): %d",
              atomic_load(&k.ok));
    pthread_mutex_lock(&c.sm[0].mu);
    uint64_t commands = c.sm[0].commands;
    pthread_mutex_unlock(&c.sm[0].mu);
    cr_assert(eq(u64, commands, (uint64_t)atomic_load(&k.ok)), "applied exactly the acked ones");
}
