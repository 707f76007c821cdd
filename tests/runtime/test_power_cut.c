/* SPDX-License-Identifier: MIT */
/* The power-cut testing hook (yggr_node_power_cut / yggr_disk_power_cut) through the
 * public API: a node loses power in the middle of a write load, restarts from its data
 * directory, and every write it acknowledged is still there. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "yggr/plugin.h"
#include "yggr/yggr.h"
#include "yggr_test.h"

/*
 * Design notes
 * ------------
 * One voter (so an acknowledgement means "durable on this node's disk" and nothing else
 * can hide a loss) with a state machine that is a bitmap of applied command ids. Each round
 * proposes fresh ids asynchronously with hundreds in flight, and once a random number of
 * them were acknowledged it cuts the power: writes not yet synced are reverted, the newest
 * torn at a 512-byte boundary. The node is then stopped (its disk is dead, so it has gone
 * FATAL or will fail every waiter) and restarted WITHOUT fault injection from the same
 * directory, like a machine powered back on; a linearizable read then checks that every
 * acknowledged id is applied. Snapshots every 1500 entries make some cuts land while a
 * snapshot file or a compaction is not yet durable.
 */

#define ROUNDS 6
#define PER_ROUND 6000u
#define MAX_IDS (ROUNDS * PER_ROUND)
#define IN_FLIGHT 400

struct bits_sm {
    uint8_t bits[MAX_IDS / 8];
};

static struct bits_sm sm;
static _Atomic uint8_t acked[MAX_IDS];
static atomic_uint in_flight;
static atomic_uint acked_count;

static void bits_apply(void *ctx, const struct yggr_command *cmd, struct yggr_reply *reply)
{
    struct bits_sm *s = ctx;
    (void)reply;
    uint32_t id = 0;
    if (cmd->len != 4) {
        abort(); /* apply thread: no Criterion assertions here */
    }
    memcpy(&id, cmd->data, 4);
    if (id >= MAX_IDS) {
        abort();
    }
    s->bits[id / 8] |= (uint8_t)(1u << (id % 8));
}

static int bits_snapshot(void *ctx, struct yggr_snapshot_writer *w)
{
    struct bits_sm *s = ctx;
    return yggr_snapshot_write(w, s->bits, sizeof(s->bits));
}

static int bits_restore(void *ctx, struct yggr_snapshot_reader *r)
{
    struct bits_sm *s = ctx;
    size_t got = 0;
    while (got < sizeof(s->bits)) {
        long n = yggr_snapshot_read(r, s->bits + got, sizeof(s->bits) - got);
        if (n <= 0) {
            return n < 0 ? (int)n : YGGR_ERR_CORRUPT;
        }
        got += (size_t)n;
    }
    return 0;
}

static bool applied(uint32_t id)
{
    return (sm.bits[id / 8] >> (id % 8)) & 1u;
}

static void on_done(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *reply,
                    uint32_t len)
{
    uint32_t id = (uint32_t)(uintptr_t)ctx;
    (void)index;
    (void)hint;
    (void)reply;
    (void)len;
    if (err == 0) {
        atomic_store(&acked[id], 1);
        atomic_fetch_add(&acked_count, 1);
    }
    atomic_fetch_sub(&in_flight, 1);
}

static struct yggr_node *start_node(const char *dir, const char *addr, bool faults)
{
    struct yggr_config cfg;
    yggr_config_init(&cfg, 1);
    cfg.data_dir = dir;
    cfg.listen_addr = addr;
    cfg.tick_ms = 5;
    cfg.snapshot_threshold_entries = 1500;
    cfg.test_fault_injection = faults;
    cfg.log_level = 0; /* the FATAL after each cut is expected */
    cfg.sm = (struct yggr_state_machine){
        .ctx = &sm, .apply = bits_apply, .snapshot = bits_snapshot, .restore = bits_restore};
    memset(&sm, 0, sizeof(sm)); /* a restart rebuilds the state from snapshot + log */
    struct yggr_node *node = NULL;
    char why[256] = "";
    int rc = yggr_node_start(&cfg, &node, why, sizeof(why));
    cr_assert(eq(int, rc, 0), "start: %s (%s)", why, yggr_strerror(rc));
    for (int i = 0; i < 400; i++) {
        struct yggr_status st;
        yggr_status(node, &st);
        if (st.role == YGGR_ROLE_LEADER) {
            return node;
        }
        usleep(10000);
    }
    cr_fatal("the single voter did not become leader within 4 s");
    return NULL;
}

static void read_cb(void *ctx, int err, uint64_t hint, void *sm_ctx)
{
    (void)hint;
    (void)sm_ctx;
    atomic_store((_Atomic int *)ctx, err == 0 ? 1 : 2);
}

/* A linearizable read: returns once the state reflects every acknowledged write. */
static void barrier_read(struct yggr_node *node)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        _Atomic int done = 0;
        if (yggr_read(node, YGGR_READ_LINEARIZABLE, read_cb, &done) == 0) {
            while (atomic_load(&done) == 0) {
                usleep(1000);
            }
            if (atomic_load(&done) == 1) {
                return;
            }
        }
        usleep(20000);
    }
    cr_fatal("no linearizable read succeeded after restart");
}

/* Propose ids [first, first + PER_ROUND) and cut the power once `cut_after` of them were
 * acknowledged. Returns the number acknowledged before the cut. */
static uint32_t load_and_cut(struct yggr_node *node, uint32_t first, uint32_t cut_after)
{
    uint32_t before = atomic_load(&acked_count);
    bool cut = false;
    for (uint32_t id = first; id < first + PER_ROUND && !cut; id++) {
        while (atomic_load(&in_flight) >= IN_FLIGHT) {
            sched_yield();
        }
        atomic_fetch_add(&in_flight, 1);
        int rc = yggr_propose(node, &id, sizeof(id), on_done, (void *)(uintptr_t)id);
        if (rc != 0) {
            atomic_fetch_sub(&in_flight, 1);
            cr_assert(eq(int, rc, YGGR_ERR_BUSY), "propose: %s", yggr_strerror(rc));
            id--;
            usleep(200);
        }
        if (atomic_load(&acked_count) - before >= cut_after) {
            cr_assert(eq(int, yggr_node_power_cut(node), 0));
            cut = true;
        }
    }
    cr_assert(cut, "the load ended before %u writes were acknowledged", cut_after);
    return atomic_load(&acked_count) - before;
}

Test(power_cut, hook_rejects_nodes_without_fault_injection, .timeout = 60)
{
    YGGR_REQUIRE_IO();
    cr_assert(eq(int, yggr_disk_power_cut(NULL), YGGR_ERR_INVALID));
    cr_assert(eq(int, yggr_node_power_cut(NULL), YGGR_ERR_INVALID));
    char *dir = cluster_tmpdir("powercut-off");
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", 23000 + (int)(getpid() % 2000));
    struct yggr_node *node = start_node(dir, addr, false);
    cr_assert(eq(int, yggr_node_power_cut(node), YGGR_ERR_INVALID));
    yggr_node_stop(node);
    struct yggr_disk_options o = {.dir = dir};
    const struct yggr_storage_ops *ops = NULL;
    struct yggr_storage *s = NULL;
    char why[256];
    cr_assert(eq(int, yggr_disk_storage_create(&o, &ops, &s, why, sizeof(why)), 0));
    cr_assert(eq(int, yggr_disk_power_cut(s), YGGR_ERR_INVALID));
    ops->close(s);
    cluster_rmtree(dir);
    free(dir);
}

Test(power_cut, every_acknowledged_write_survives_power_cuts_mid_load, .timeout = 240)
{
    YGGR_REQUIRE_IO();
    char *dir = cluster_tmpdir("powercut");
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", 25000 + (int)(getpid() % 2000));
    srand((unsigned)time(NULL));
    uint32_t total_acked = 0;
    for (uint32_t round = 0; round < ROUNDS; round++) {
        struct yggr_node *node = start_node(dir, addr, true);
        uint32_t cut_after = 500 + (uint32_t)rand() % 3000;
        uint32_t n = load_and_cut(node, round * PER_ROUND, cut_after);
        yggr_node_stop(node); /* fails every waiter the dead disk did not fail already */
        cr_assert(eq(u32, atomic_load(&in_flight), 0));
        node = start_node(dir, addr, false);
        barrier_read(node);
        uint32_t lost = 0;
        uint32_t extra = 0;
        for (uint32_t id = 0; id < (round + 1) * PER_ROUND; id++) {
            lost += atomic_load(&acked[id]) && !applied(id);
            extra += id >= round * PER_ROUND && !atomic_load(&acked[id]) && applied(id);
        }
        cr_log_info("round %u: %u acknowledged before the cut at %u, %u unacknowledged "
                    "writes survived, %u lost",
                    round, n, cut_after, extra, lost);
        cr_assert(eq(u32, lost, 0), "round %u: %u acknowledged writes lost", round, lost);
        total_acked += n;
        yggr_node_stop(node);
    }
    cr_assert(ge(u32, total_acked, ROUNDS * 500));
    cluster_rmtree(dir);
    free(dir);
}
