/* SPDX-License-Identifier: MIT */
/* Smoke, determinism and liveness of the simulator on happy (fault-free) schedules
 * (REFERENCE 6.3 smoke and happy proptests). */

/*
 * Design notes
 * - Liveness bounds follow REFERENCE 6.3: a leader within 2000 steps, a commit on a
 *   majority within 3000; convergence after faults stop uses the --heal-at machinery.
 * - Replay is checked by the trace fingerprint (every record of the run).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "cluster.h"

static struct sim_options happy(uint64_t seed, uint32_t nodes, uint64_t steps)
{
    struct sim_options o;
    sim_options_init(&o);
    o.seed = seed;
    o.node_count = nodes;
    o.steps = steps;
    o.features = SIM_FEATURES_HAPPY;
    return o;
}

Test(smoke, three_node_happy_run_elects_a_leader_and_commits_on_a_majority)
{
    struct sim_options o = happy(7, 3, 2000);
    struct sim *sim = sim_create(&o);
    cr_assert(sim_run(sim), "%s", sim_violation(sim));
    uint64_t leader = sim_leader(sim);
    cr_assert(ne(u64, leader, 0));
    struct sim_stats st;
    sim_stats(sim, &st);
    cr_assert(gt(u64, st.acked, 20), "acknowledged writes: %llu", (unsigned long long)st.acked);
    uint64_t commit = sim->nodes[leader].commit;
    uint32_t holders = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        holders += sim->nodes[id].applied + 20 >= commit ? 1u : 0u;
    }
    cr_assert(ge(u32, holders, 2), "a majority applied (almost) everything committed");
    sim_destroy(sim);
}

Test(smoke, ids_are_one_to_n)
{
    struct sim_options o = happy(1, 5, 10);
    struct sim *sim = sim_create(&o);
    for (uint32_t id = 1; id <= 5; id++) {
        cr_assert(eq(u64, sim->nodes[id].id, id));
        cr_assert(sim->nodes[id].alive);
        cr_assert(eq(u64, sim->nodes[id].cfg.id, id));
    }
    cr_assert(not(sim->nodes[6].alive), "spares start only when they join");
    sim_destroy(sim);
}

static uint64_t run_hash(uint64_t seed, uint32_t features)
{
    struct sim_options o = happy(seed, 5, 1500);
    o.features = features;
    struct sim *sim = sim_create(&o);
    (void)sim_run(sim);
    uint64_t h = sim_trace_hash(sim);
    sim_destroy(sim);
    return h;
}

Test(smoke, same_seed_replays_bit_for_bit)
{
    cr_assert(eq(u64, run_hash(42, SIM_FEATURES_HAPPY), run_hash(42, SIM_FEATURES_HAPPY)));
    cr_assert(eq(u64, run_hash(43, SIM_FEATURES_BASIC), run_hash(43, SIM_FEATURES_BASIC)),
              "faults replay too");
}

Test(smoke, different_seeds_diverge)
{
    cr_assert(ne(u64, run_hash(1, SIM_FEATURES_BASIC), run_hash(2, SIM_FEATURES_BASIC)));
}

static uint64_t steps_until_leader(uint64_t seed, uint32_t nodes, bool pre_vote)
{
    struct sim_options o = happy(seed, nodes, 3000);
    o.features |= pre_vote ? SIM_F_PREVOTE : 0u;
    struct sim *sim = sim_create(&o);
    uint64_t steps = 0;
    while (steps < 2000 && sim_leader(sim) == 0 && sim_step(sim)) {
        steps++;
    }
    cr_assert(sim_violation(sim) == NULL, "%s", sim_violation(sim));
    sim_destroy(sim);
    return steps;
}

Test(smoke, happy_schedules_elect_a_leader_within_2000_steps)
{
    for (uint64_t seed = 1; seed <= 64; seed++) {
        cr_assert(lt(u64, steps_until_leader(seed, 3, false), 2000), "seed %llu",
                  (unsigned long long)seed);
        cr_assert(lt(u64, steps_until_leader(seed, 5, true), 2000), "pre-vote, seed %llu",
                  (unsigned long long)seed);
    }
}

Test(smoke, happy_schedules_commit_on_a_majority_within_3000_steps)
{
    for (uint64_t seed = 1; seed <= 64; seed++) {
        struct sim_options o = happy(seed, 3, 3000);
        o.features |= seed % 2 ? SIM_F_PREVOTE : 0u;
        struct sim *sim = sim_create(&o);
        cr_assert(sim_run(sim), "seed %llu: %s", (unsigned long long)seed, sim_violation(sim));
        cr_assert(gt(u64, sim->check.max_acked, 0), "seed %llu acknowledged nothing",
                  (unsigned long long)seed);
        sim_destroy(sim);
    }
}

Test(smoke, cluster_converges_after_faults_stop)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct sim_options o;
        sim_options_init(&o);
        o.seed = seed;
        o.node_count = 3 + (uint32_t)(seed % 2) * 2;
        o.steps = 2000;
        o.heal_at = 1500;
        /* Crashes, torn writes, slow disks, partitions, drops, duplicates, delays
         * (this caught F5, docs/sim-findings.md). */
        o.features = SIM_FEATURES_BASIC;
        struct sim *sim = sim_create(&o);
        cr_assert(sim_run(sim), "seed %llu: %s", (unsigned long long)seed, sim_violation(sim));
        cr_assert(sim->converged);
        sim_destroy(sim);
    }
}

Test(smoke, single_node_cluster_elects_itself_and_commits)
{
    struct sim_options o = happy(5, 1, 500);
    struct sim *sim = sim_create(&o);
    cr_assert(sim_run(sim), "%s", sim_violation(sim));
    cr_assert(eq(u64, sim_leader(sim), 1));
    cr_assert(gt(u64, sim->check.max_acked, 0));
    sim_destroy(sim);
}
