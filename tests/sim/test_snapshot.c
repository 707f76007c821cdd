/* SPDX-License-Identifier: MIT */
/* Snapshots: compaction keeps every invariant; a follower that fell behind the leader's
 * floor catches up through InstallSnapshot and then replicates normally
 * (REFERENCE 6.3 snapshot and 8.1 #1: the installed configuration must include the
 * leader, or the follower drops its AppendEntries forever). */

/*
 * Design notes
 * - Scripted runs take snapshots by hand (cluster_snapshot) and hold a node's disk
 *   (cluster_hold_disk) to build the durable-log-behind-snapshot states of F4 and F8.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "cluster.h"

Test(snapshot, leader_snapshot_compacts_and_keeps_every_invariant)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE | SIM_F_SNAPSHOT, 21);
    cluster_elect(&c, 1);
    for (int i = 0; i < 4; i++) {
        cr_assert(eq(int, cluster_propose(&c, 1, 3), 0));
        cluster_heartbeats(&c, 1, 2);
    }
    struct sim_node *l = cluster_node(&c, 1);
    uint64_t floor = l->sm.applied;
    cr_assert(cluster_snapshot(&c, 1));
    CLUSTER_EXPECT(&c, "n1 SNAPSHOT last=(");
    CLUSTER_EXPECT(&c, "n1 COMPACT below=");
    cr_assert(gt(u64, l->store.written.log.first, 1), "entries below the snapshot dropped");
    cr_assert(eq(u64, l->store.durable.snap.meta.last.index, floor));
    cr_assert(eq(int, cluster_propose(&c, 1, 2), 0));
    cluster_heartbeats(&c, 1, 3);
    for (uint64_t id = 1; id <= 3; id++) {
        cr_assert(eq(u64, cluster_node(&c, id)->applied, l->commit), "n%llu",
                  (unsigned long long)id);
    }
    cluster_deinit(&c);
}

Test(snapshot, crashed_follower_catches_up_by_install_snapshot_then_replicates_normally)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE | SIM_F_SNAPSHOT, 22);
    cluster_elect(&c, 1);
    cr_assert(eq(int, cluster_propose(&c, 1, 2), 0));
    cluster_heartbeats(&c, 1, 2);
    cluster_crash(&c, 3);
    for (int i = 0; i < 5; i++) {
        cr_assert(eq(int, cluster_propose(&c, 1, 3), 0));
        cluster_heartbeats(&c, 1, 2);
    }
    cr_assert(cluster_snapshot(&c, 1));
    struct sim_node *l = cluster_node(&c, 1);
    uint64_t floor = l->store.written.snap.meta.last.index;
    cr_assert(gt(u64, l->store.written.log.first, 3), "n3's next entries are compacted away");
    cluster_restart(&c, 3);
    cluster_heartbeats(&c, 1, 12);
    CLUSTER_EXPECT(&c, "n3 RECV IS from n1");
    CLUSTER_EXPECT(&c, "n3 INSTALL last=");
    struct sim_node *f = cluster_node(&c, 3);
    cr_assert(ge(u64, f->store.durable.snap.meta.last.index, floor));
    cr_assert(yggr_membership_is_voter(&f->store.durable.snap.meta.config, 1),
              "the installed configuration includes the leader (8.1 #1)");
    cr_assert(eq(u64, f->applied, l->commit), "caught up to the leader's commit");
    /* ... and keeps replicating normally afterwards. */
    for (int i = 0; i < 3; i++) {
        cr_assert(eq(int, cluster_propose(&c, 1, 2), 0));
        cluster_heartbeats(&c, 1, 2);
    }
    CLUSTER_EXPECT(&c, "n3 APPEND");
    cr_assert(eq(u64, f->applied, l->commit));
    cr_assert(eq(u64, f->last_index, l->last_index));
    cluster_deinit(&c);
}

Test(snapshot, random_snapshots_with_crashes_and_slow_disks_keep_every_invariant)
{
    for (uint64_t seed = 1; seed <= 100; seed++) {
        struct sim_options o;
        sim_options_init(&o);
        o.seed = seed;
        o.steps = 2000;
        o.features = SIM_F_PROPOSE | SIM_F_SNAPSHOT | SIM_F_NETFAULT | SIM_F_CRASH |
                     SIM_F_TORN | SIM_F_SLOWDISK | SIM_F_READS;
        struct sim_stats st;
        cr_assert(cluster_run_seed(&o, &st), "seed %llu", (unsigned long long)seed);
    }
}

/* A follower applies entries that are committed cluster-wide before its own copy is
 * durable, the host snapshots at that applied index (durable at once), then the node
 * crashes: the durable log ends below the durable snapshot. The engine must restart from
 * it (finding F4: it aborted in log_warm; fixed in engine 1bc07b8). */
Test(regress, f4_restart_with_the_durable_log_below_the_durable_snapshot)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE | SIM_F_SNAPSHOT, 41);
    cluster_elect(&c, 1);
    cluster_heartbeats(&c, 1, 2);
    cluster_hold_disk(&c, 2, true);
    cr_assert(eq(int, cluster_propose(&c, 1, 3), 0));
    cluster_heartbeats(&c, 1, 6);
    struct sim_node *f = cluster_node(&c, 2);
    cr_assert(eq(u64, f->applied, cluster_node(&c, 1)->commit), "applied from memory");
    cr_assert(lt(u64, slog_last(&f->store.durable.log), f->applied), "not durable on n2");
    cr_assert(cluster_snapshot(&c, 2));
    cluster_crash(&c, 2);
    cluster_hold_disk(&c, 2, false);
    cluster_restart(&c, 2);
    CLUSTER_EXPECT(&c, "n2 RESTART");
    cluster_heartbeats(&c, 1, 6);
    cr_assert(eq(u64, f->applied, cluster_node(&c, 1)->commit));
    cluster_deinit(&c);
}

/* The same with a conflicting durable entry at or below the snapshot index: n2 durably
 * holds (x,1) of a deposed leader, the new leader's (x,2) replaces it in memory, commits,
 * n2 applies it and snapshots above it before the overwrite is durable, then crashes.
 * Finding F8: RECOVER asserted that the log's term at the snapshot index matches (fixed
 * in engine a767cd3: such a log is dropped and storage is told so). */
Test(regress, f8_restart_with_a_durable_log_that_conflicts_with_the_snapshot)
{
    struct cluster c;
    cluster_init(&c, 5, 0, SIM_F_PROPOSE | SIM_F_SNAPSHOT, 42);
    cluster_elect(&c, 1);
    cluster_heartbeats(&c, 1, 2);
    cr_assert(eq(int, cluster_propose(&c, 1, 1), 0));
    uint64_t x = cluster_node(&c, 1)->last_index; /* after the bootstrap entries and noop */
    cluster_deliver(&c, 1, 2, YGGR_MSG_APPEND_REQUEST, 10); /* (x,1) durable on n2 only */
    cluster_drop(&c, 1, 0, 0);
    cluster_crash(&c, 1);
    cluster_elect(&c, 5); /* votes from n3 and n4 */
    cluster_hold_disk(&c, 2, true);
    cluster_heartbeats(&c, 5, 8);
    struct sim_node *f = cluster_node(&c, 2);
    const struct yggr_entry *old = slog_at(&f->store.durable.log, x);
    cr_assert(old != NULL && old->term == 1, "n2's disk still holds (x,1)");
    const struct yggr_entry *now = slog_at(&f->store.written.log, x);
    cr_assert(now != NULL && now->term == 2, "n5's (x,2) replaced it in memory");
    cr_assert(ge(u64, f->applied, x), "n2 applied the new (x,2) from memory");
    cr_assert(cluster_snapshot(&c, 2));
    cluster_crash(&c, 2);
    cluster_hold_disk(&c, 2, false);
    cluster_restart(&c, 2); /* engine.c recover_log asserts here today */
    cluster_heartbeats(&c, 5, 6);
    cr_assert(eq(u64, f->applied, cluster_node(&c, 5)->commit));
    cluster_deinit(&c);
}
