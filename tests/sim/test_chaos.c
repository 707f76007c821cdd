/* SPDX-License-Identifier: MIT */
/* Chaos seeds: random faults with every safety invariant checked after every step
 * (REFERENCE 6.3 chaos, with crashes that tear writes, slow disks and one-way cuts). */

/*
 * Design notes
 * - Seeds are spread (seed * 7919 + nodes) so the suites do not replay each other.
 * - A failing seed prints its violation and the last trace records (cluster_run_seed);
 *   replay it with the CLI: yggr-sim --seed S --nodes N --features ... --steps M.
 * - Each suite also asserts the runs did real work (commits, crashes), not only that
 *   nothing fired.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "cluster.h"

static void chaos(uint32_t nodes, uint64_t steps, uint32_t features, uint64_t seeds)
{
    struct sim_stats sum = {0};
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        struct sim_options o;
        sim_options_init(&o);
        o.seed = seed * 7919 + nodes;
        o.node_count = nodes;
        o.steps = steps;
        o.features = features;
        struct sim_stats st;
        cr_assert(cluster_run_seed(&o, &st), "seed %llu", (unsigned long long)o.seed);
        sim_stats_add(&sum, &st);
    }
    cr_assert(gt(u64, sum.commits, 0), "the faults still let the clusters commit");
    cr_assert(gt(u64, sum.crashes, 0));
}

#define CHAOS (SIM_FEATURES_BASIC & ~SIM_F_VARY)

Test(chaos, three_nodes)
{
    chaos(3, 1500, CHAOS, 128);
}

Test(chaos, five_nodes)
{
    chaos(5, 1500, CHAOS, 128);
}

Test(chaos, seven_nodes)
{
    chaos(7, 2000, CHAOS, 128);
}

Test(chaos, three_nodes_with_pre_vote)
{
    chaos(3, 1500, CHAOS | SIM_F_PREVOTE, 128);
}

Test(chaos, five_nodes_with_pre_vote_and_check_quorum)
{
    chaos(5, 1500, CHAOS | SIM_F_PREVOTE | SIM_F_CHECK_QUORUM, 128);
}

Test(chaos, reads_leases_transfers_and_reference_wire_peers)
{
    chaos(5, 2000, CHAOS | SIM_F_READS | SIM_F_LEASE | SIM_F_TRANSFER | SIM_F_REFWIRE, 128);
}

Test(chaos, one_thousand_step_fixed_seed_smoke_replays_identically)
{
    struct sim_options o;
    sim_options_init(&o);
    o.seed = 0xC0FFEE;
    o.steps = 1000;
    o.features = SIM_FEATURES_BASIC;
    uint64_t h[2];
    for (int k = 0; k < 2; k++) {
        struct sim *sim = sim_create(&o);
        cr_assert(sim_run(sim), "%s", sim_violation(sim));
        h[k] = sim_trace_hash(sim);
        sim_destroy(sim);
    }
    cr_assert(eq(u64, h[0], h[1]));
}

Test(chaos, crashed_follower_recovers_and_the_cluster_keeps_committing)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE, 11);
    cluster_elect(&c, 1);
    cr_assert(eq(int, cluster_propose(&c, 1, 3), 0));
    cluster_heartbeats(&c, 1, 3);
    cluster_crash(&c, 3);
    cr_assert(eq(int, cluster_propose(&c, 1, 4), 0), "n1 and n2 are a majority");
    cluster_heartbeats(&c, 1, 6);
    cr_assert(ge(u64, cluster_node(&c, 1)->commit, 8), "committed without n3");
    cluster_restart(&c, 3);
    CLUSTER_EXPECT(&c, "n3 RESTART term=");
    cluster_heartbeats(&c, 1, 12);
    cr_assert(eq(u64, cluster_node(&c, 3)->applied, cluster_node(&c, 1)->commit),
              "n3 caught up after its restart");
    cr_assert(eq(int, cluster_propose(&c, 1, 2), 0));
    cluster_heartbeats(&c, 1, 4);
    cr_assert(eq(u64, cluster_node(&c, 3)->applied, cluster_node(&c, 1)->commit));
    cluster_deinit(&c);
}
