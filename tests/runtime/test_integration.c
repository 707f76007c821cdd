/* SPDX-License-Identifier: MIT */
/* Integration: whole nodes with the io_uring disk storage and the io_uring TCP transport on
 * 127.0.0.1, through the public API (REFERENCE 6.4: node, multi-node, disk storage, TCP
 * transport, non-blocking snapshot). Every test needs io_uring and sockets. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "yggr/yggr.h"
#include "yggr_test.h"

static struct cluster c;
static bool inited;

static void teardown(void)
{
    if (inited) {
        cluster_destroy(&c);
        inited = false;
    }
}

TestSuite(integration, .fini = teardown, .timeout = 120);

static void start_real(uint32_t n, cluster_tweak_fn tweak)
{
    YGGR_REQUIRE_IO();
    cluster_init(&c, n, true, tweak);
    inited = true;
    cluster_start_all(&c);
}

Test(integration, three_nodes_elect_replicate_and_agree_on_disk)
{
    start_real(3, NULL);
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 100; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, &total, 10000), 0));
    }
    cr_assert(cluster_total_ok(&c, total, 5050), "total %llu", (unsigned long long)total);
    struct yggr_status st;
    cr_assert(eq(int, yggr_status(c.node[l], &st), 0));
    cr_assert(cluster_wait_applied(&c, st.commit_index, 10000));
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert(eq(u64, counter_total(&c.sm[i]), total), "node %u", i + 1);
        cr_assert(eq(u64, c.sm[i].digest, c.sm[0].digest), "node %u state digest", i + 1);
    }
}

Test(integration, leader_stopped_and_restarted_from_disk_loses_nothing_acknowledged)
{
    start_real(3, NULL);
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 40; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, &total, 10000), 0));
    }
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    cluster_stop(&c, (uint32_t)l);
    for (uint64_t v = 41; v <= 60; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, &total, 10000), 0));
    }
    cr_assert(cluster_total_ok(&c, total, 1830), "total %llu", (unsigned long long)total);
    cluster_start(&c, (uint32_t)l); /* recovers its log and hard state from disk */
    uint32_t other = ((uint32_t)l + 1) % 3;
    struct yggr_status st;
    cr_assert(eq(int, yggr_status(c.node[other], &st), 0));
    cr_assert(cluster_wait_applied(&c, st.commit_index, 10000));
    cr_assert(eq(u64, counter_total(&c.sm[l]), total), "restarted node re-applied everything");
}

Test(integration, full_cluster_restart_on_new_ports_reapplies_committed_entries)
{
    start_real(3, NULL);
    for (uint64_t v = 1; v <= 10; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, NULL, 10000), 0));
    }
    for (uint32_t i = 0; i < 3; i++) {
        cluster_stop(&c, i);
    }
    c.base_port = (uint16_t)(c.base_port + 10);
    for (uint32_t i = 0; i < 3; i++) {
        snprintf(c.addr[i], sizeof(c.addr[i]), "127.0.0.1:%u", c.base_port + i);
    }
    cluster_start_all(&c);
    uint64_t total = 0;
    cr_assert(eq(int, cluster_add_any(&c, 0, &total, 10000), 0));
    cr_assert(cluster_total_ok(&c, total, 55), "total %llu", (unsigned long long)total);
}

static void snap_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->snapshot_threshold_entries = 50;
    cfg->snapshot_chunk_bytes = 16; /* many chunks per install */
}

Test(integration, far_behind_follower_catches_up_through_a_snapshot_then_replicates)
{
    start_real(3, snap_tweak);
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    uint32_t lag = ((uint32_t)l + 1) % 3;
    cluster_stop(&c, lag);
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 300; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, &total, 10000), 0));
    }
    struct yggr_metrics m;
    cr_assert(eq(int, yggr_metrics(c.node[l], &m), 0));
    cr_assert(gt(u64, m.snapshots_taken, 0), "the leader compacted its log");
    cluster_start(&c, lag);
    struct yggr_status st;
    cr_assert(eq(int, yggr_status(c.node[l], &st), 0));
    cr_assert(cluster_wait_applied(&c, st.commit_index, 20000));
    cr_assert(cluster_total_ok(&c, total, 45150), "total %llu", (unsigned long long)total);
    cr_assert(eq(u64, counter_total(&c.sm[lag]), total));
    cr_assert(eq(int, yggr_metrics(c.node[lag], &m), 0));
    cr_assert(ge(u64, m.snapshots_installed + m.snapshots_restored, 1));
    cr_assert(eq(int, cluster_add_any(&c, 1, &total, 10000), 0), "replication continues");
    cr_assert(eq(int, yggr_status(c.node[l], &st), 0));
    cr_assert(cluster_wait_applied(&c, st.commit_index, 10000));
    cr_assert(eq(u64, counter_total(&c.sm[lag]), total));
}

Test(integration, joiner_added_as_learner_catches_up_and_is_promoted)
{
    YGGR_REQUIRE_IO();
    cluster_init(&c, 4, true, NULL);
    inited = true;
    c.cfg[3].bootstrap = YGGR_BOOTSTRAP_JOIN;
    for (uint32_t i = 0; i < 3; i++) {
        c.cfg[i].peer_count = 2;
    }
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 20; v++) {
        cr_assert(eq(int, cluster_add_any(&c, v, &total, 10000), 0));
    }
    cr_assert(cluster_total_ok(&c, total, 210), "total %llu", (unsigned long long)total);
    struct yggr_membership m;
    cr_assert(eq(int, yggr_add_learner(c.node[l], 4, c.addr[3], 10000, &m), 0));
    uint64_t until = now_ms() + 10000;
    while (counter_total(&c.sm[3]) != total && now_ms() < until) {
        sleep_ms(10);
    }
    cr_assert(eq(u64, counter_total(&c.sm[3]), total), "learner caught up");
    cr_assert(eq(int, yggr_promote_learner(c.node[l], 4, 10000, &m), 0));
    cr_assert(eq(u32, m.voter_count, 4));
    /* The promotion committed on a majority of voters, not necessarily on the joiner yet. */
    struct yggr_status st;
    until = now_ms() + 10000;
    do {
        cr_assert(eq(int, yggr_status(c.node[3], &st), 0));
    } while (st.config.voter_count != 4 && now_ms() < until && (sleep_ms(10), true));
    cr_assert(eq(u32, st.config.voter_count, 4), "the joiner knows every voter");
}

Test(integration, leadership_transfer_with_pre_vote_on)
{
    start_real(3, NULL);
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    cr_assert(eq(int, cluster_add_any(&c, 1, NULL, 10000), 0));
    uint64_t target = (((uint32_t)l + 2) % 3) + 1;
    cr_assert(eq(int, yggr_transfer_leadership(c.node[l], target, 10000), 0));
    cr_assert(eq(int, cluster_wait_leader(&c, 5000), (int)target - 1));
    cr_assert(eq(int, cluster_add_any(&c, 1, NULL, 10000), 0));
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

static int read_now(struct yggr_node *n, enum yggr_read_mode mode, uint64_t *total)
{
    struct read_ctx r = {0};
    int rc = yggr_read(n, mode, read_cb, &r);
    uint64_t until = now_ms() + 10000;
    while (rc == 0 && !atomic_load(&r.done) && now_ms() < until) {
        sleep_ms(1);
    }
    *total = r.total;
    return rc != 0 ? rc : r.err;
}

static void lease_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->lease_duration_ticks = 5;
}

Test(integration, linearizable_and_lease_reads_see_acknowledged_writes)
{
    start_real(3, lease_tweak);
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    for (uint64_t v = 1; v <= 5; v++) {
        uint64_t total = 0;
        cr_assert(eq(int, cluster_add(&c, (uint32_t)l, v, &total, NULL), 0));
        uint64_t seen = 0;
        cr_assert(eq(int, read_now(c.node[l], YGGR_READ_LINEARIZABLE, &seen), 0));
        cr_assert(eq(u64, seen, total));
        cr_assert(eq(int, read_now(c.node[l], YGGR_READ_LEASE, &seen), 0));
        cr_assert(eq(u64, seen, total));
    }
}

static void busy_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->max_pending_proposals = 8;
}

static void count_cb(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *r,
                     uint32_t len)
{
    (void)err;
    (void)index;
    (void)hint;
    (void)r;
    (void)len;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

Test(integration, busy_backpressure_and_shutdown_with_requests_in_flight)
{
    start_real(3, busy_tweak);
    int l = cluster_wait_leader(&c, 10000);
    cr_assert(ge(int, l, 0));
    atomic_int calls = 0;
    int accepted = 0;
    int busy = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t v = 1;
        int rc = yggr_propose(c.node[l], &v, 8, count_cb, &calls);
        accepted += rc == 0;
        busy += rc == YGGR_ERR_BUSY;
    }
    cr_assert(gt(int, busy, 0), "max_pending_proposals gives BUSY");
    cr_assert(ge(int, accepted, 8));
    cluster_stop(&c, (uint32_t)l);
    cr_assert(eq(int, atomic_load(&calls), accepted), "each accepted proposal completed once");
}
