/* SPDX-License-Identifier: MIT */
/* Classic Raft scenarios as protocol transcripts over a hand-driven cluster (cowsql
 * raft test/integration style): every step is an explicit action, every expectation a
 * trace line, and every safety invariant is checked after each action. */

/*
 * Design notes
 * - Indexes 1..k hold the bootstrap configuration (term 0), so expectations compute
 *   indexes instead of hard-coding the paper's.
 * - Scripted delivery is FIFO; only the messages a step names are delivered or dropped.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "cluster.h"

#define AE YGGR_MSG_APPEND_REQUEST
#define AE_RESP YGGR_MSG_APPEND_RESPONSE

/* Deliver AppendEntries traffic between `leader` and `peer` one message at a time until
 * `peer`'s log ends at `last`. */
static void replicate_until(struct cluster *c, uint64_t leader, uint64_t peer, uint64_t last)
{
    struct sim_node *p = cluster_node(c, peer);
    for (int i = 0; i < 200 && p->last_index != last; i++) {
        if (cluster_deliver(c, leader, peer, AE, 1) + cluster_deliver(c, peer, leader, AE_RESP, 1)
            == 0) {
            cluster_tick(c, leader, 1); /* nothing in flight: let a heartbeat go */
        }
    }
    cr_assert(eq(u64, p->last_index, last));
}

/*
 * Raft paper, Figure 8: an entry from an earlier term that sits on a majority must not be
 * committed by counting replicas; only an entry of the leader's current term commits
 * (and with it everything before it). Otherwise (c) -> (d) overwrites a committed entry.
 */
Test(transcript, figure_8_prior_term_entry_is_not_committed_by_counting)
{
    struct cluster c;
    cluster_init(&c, 5, 0, SIM_F_PROPOSE, 8);
    /* Indexes 1..5 hold the bootstrap configuration (term 0); each leader's first entry
     * is its no-op. The paper's index 2 is x here. */
    const unsigned long long x = 5 + 2;
    /* (a) n1 leads term 1 and replicates index x to n2 only. */
    cluster_elect(&c, 1);
    CLUSTER_EXPECT(&c, "n1 ROLE leader term=1");
    cluster_heartbeats(&c, 1, 3);
    cr_assert(eq(int, cluster_propose(&c, 1, 1), 0));
    CLUSTER_EXPECTF(&c, "n1 APPEND truncate_from=0 first=%llu n=1 term=1", x);
    cluster_deliver(&c, 1, 2, AE, 10);
    CLUSTER_EXPECTF(&c, "n2 APPEND truncate_from=0 first=%llu n=1 term=1", x);
    cluster_drop(&c, 1, 0, 0);
    cluster_crash(&c, 1);
    /* (b) n5 leads term 2 with votes from n3 and n4 (n2's log is ahead of n5's: it
     * refuses) and appends (x,2) that nobody receives. */
    cluster_elect(&c, 5);
    CLUSTER_EXPECT(&c, "n2 SEND RV-RESP to n5 term=2 denied");
    CLUSTER_EXPECTF(&c, "n5 APPEND truncate_from=0 first=%llu n=1 term=2", x);
    CLUSTER_EXPECT(&c, "n5 ROLE leader term=2");
    cluster_drop(&c, 5, 0, 0);
    cluster_crash(&c, 5);
    /* (c) n1 restarts, leads term 3 and copies (x,1) to n3: (x,1) is now on n1, n2, n3,
     * a majority of five, but it is from term 1. */
    cluster_restart(&c, 1);
    cluster_elect(&c, 1);
    CLUSTER_EXPECTF(&c, "n1 APPEND truncate_from=0 first=%llu n=1 term=3", x + 1);
    CLUSTER_EXPECT(&c, "n1 ROLE leader term=3");
    replicate_until(&c, 1, 3, x);
    CLUSTER_EXPECTF(&c, "n3 APPEND truncate_from=0 first=%llu n=1 term=1", x);
    cluster_deliver(&c, 3, 1, AE_RESP, 10);
    cr_assert(lt(u64, cluster_node(&c, 1)->commit, x),
              "(x,1) is on a majority but must not be committed by counting");
    cluster_drop(&c, 1, 0, 0);
    cluster_crash(&c, 1);
    /* (d) n5 restarts and leads term 4 (its last term 2 beats term 1): it overwrites
     * (x,1) everywhere. Safe only because (x,1) was never committed; the checker would
     * flag a lost commit here. */
    cluster_restart(&c, 5);
    cluster_elect(&c, 5);
    CLUSTER_EXPECT(&c, "n5 ROLE leader term=4");
    cluster_heartbeats(&c, 5, 10);
    CLUSTER_EXPECTF(&c, "n2 APPEND truncate_from=%llu", x);
    cr_assert(ge(u64, cluster_node(&c, 5)->commit, x + 1), "n5 commits its term-4 entry");
    for (uint64_t id = 2; id <= 5; id++) {
        const struct yggr_entry *e = slog_at(&cluster_node(&c, id)->store.written.log, x);
        cr_assert(e != NULL && e->term == 2, "n%llu holds (x,2)", (unsigned long long)id);
    }
    cluster_deinit(&c);
}

/* A leader cut off from the majority keeps accepting writes it can never commit; the
 * majority elects a new leader and commits; after the heal the old leader learns the
 * newer term, steps down, and its uncommitted suffix is replaced. None of its writes was
 * ever acknowledged. */
Test(transcript, partitioned_old_leader_writes_are_discarded)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE, 9);
    cluster_elect(&c, 1);
    cluster_heartbeats(&c, 1, 2);
    uint64_t acked = c.sim->stats.acked;
    cluster_isolate(&c, 1);
    uint64_t committed = cluster_node(&c, 1)->commit; /* bootstrap entries and no-op */
    cr_assert(eq(int, cluster_propose(&c, 1, 3), 0));
    CLUSTER_EXPECTF(&c, "n1 APPEND truncate_from=0 first=%llu n=3 term=1",
                    (unsigned long long)committed + 1);
    cluster_heartbeats(&c, 1, 3);
    CLUSTER_EXPECT(&c, "LOST AE from n1");
    cr_assert(eq(u64, cluster_node(&c, 1)->commit, committed), "no majority: no commit");
    cluster_elect(&c, 2);
    CLUSTER_EXPECT(&c, "n2 ROLE leader term=2");
    cr_assert(eq(int, cluster_propose(&c, 2, 2), 0));
    cluster_heartbeats(&c, 2, 4);
    CLUSTER_EXPECT(&c, "n2 COMMIT");
    cr_assert(eq(u64, c.sim->stats.acked, acked + 2), "only n2's writes are acknowledged");
    cluster_heal(&c);
    cluster_heartbeats(&c, 2, 6);
    CLUSTER_EXPECT(&c, "n1 ROLE follower term=2 leader=n2");
    CLUSTER_EXPECTF(&c, "n1 APPEND truncate_from=%llu", (unsigned long long)committed + 1);
    struct sim_node *old = cluster_node(&c, 1);
    struct sim_node *leader = cluster_node(&c, 2);
    cr_assert(eq(u64, old->applied, leader->commit));
    cr_assert(eq(u64, old->sm.hash, leader->sm.hash), "same state machine");
    cr_assert(eq(u64, c.sim->stats.acked, acked + 2), "n1's three writes were never acked");
    cluster_deinit(&c);
}

/* A follower with a long divergent suffix (30 entries of a deposed leader's term)
 * catches up in a few rejected round trips thanks to the conflict term hint, not one
 * rejection per entry (REFERENCE 8.3 #29). Messages are delivered in send order. */
Test(transcript, long_divergent_suffix_catches_up_in_few_round_trips)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE, 10);
    cluster_elect(&c, 1);
    cluster_heartbeats(&c, 1, 2);
    cluster_isolate(&c, 1);
    for (int i = 0; i < 10; i++) {
        cr_assert(eq(int, cluster_propose(&c, 1, 3), 0));
    }
    cluster_drop(&c, 1, 0, 0);
    cluster_elect(&c, 2);
    for (int i = 0; i < 10; i++) {
        cr_assert(eq(int, cluster_propose(&c, 2, 3), 0));
        cluster_heartbeats(&c, 2, 1);
    }
    cluster_heartbeats(&c, 2, 6);
    struct yggr_engine_metrics before;
    yggr_engine_metrics(cluster_node(&c, 1)->engine, &before);
    cluster_heal(&c);
    struct sim_node *f = cluster_node(&c, 1);
    struct sim_node *l = cluster_node(&c, 2);
    for (int r = 0; r < 100 && f->applied != l->commit; r++) {
        cluster_heartbeats(&c, 2, 1);
    }
    CLUSTER_EXPECT(&c, "n1 ROLE follower term=2 leader=n2");
    CLUSTER_EXPECT(&c, "n1 APPEND truncate_from=");
    cr_assert(eq(u64, f->applied, l->commit), "caught up");
    cr_assert(eq(u64, f->sm.hash, l->sm.hash));
    struct yggr_engine_metrics after;
    yggr_engine_metrics(f->engine, &after);
    uint64_t rejects = after.append_entries_rejected - before.append_entries_rejected;
    cr_assert(le(u64, rejects, 3), "%llu rejections for a 30-entry divergent suffix",
              (unsigned long long)rejects);
    cluster_deinit(&c);
}

/* The read checker has teeth on a real engine: a lease assumes bounded clock drift. Here
 * the old leader's clock stands still while the others run on, elect a new leader and
 * acknowledge a write; a lease read on the old leader is then stale and must be caught.
 * (The random runs keep drift within the lease margin and find no stale read.) */
Test(transcript, stale_lease_read_is_caught_when_clocks_drift_beyond_the_lease)
{
    struct cluster c;
    cluster_init(&c, 3, 0, SIM_F_PROPOSE | SIM_F_READS | SIM_F_LEASE, 12);
    cluster_elect(&c, 1);
    cr_assert(eq(int, cluster_propose(&c, 1, 1), 0));
    cluster_heartbeats(&c, 1, 3);
    cr_assert(gt(u32, cluster_node(&c, 1)->cfg.lease_duration_ticks, 0));
    cluster_isolate(&c, 1);
    cluster_tick(&c, 3, cluster_node(&c, 3)->cfg.election_timeout_min_ticks);
    for (int i = 0; i < 2000 && cluster_node(&c, 2)->role != YGGR_ROLE_LEADER; i++) {
        cluster_tick(&c, 2, 1);
        cluster_deliver(&c, 2, 3, 0, 10);
        cluster_deliver(&c, 3, 2, 0, 10);
    }
    CLUSTER_EXPECT(&c, "n2 ROLE leader term=2");
    cr_assert(eq(int, cluster_propose(&c, 2, 1), 0));
    for (int i = 0; i < 20 && c.sim->check.max_acked < cluster_node(&c, 2)->last_index; i++) {
        cluster_tick(&c, 2, 1);
        cluster_deliver(&c, 2, 3, 0, 10);
        cluster_deliver(&c, 3, 2, 0, 10);
    }
    CLUSTER_EXPECT(&c, "n2 ACK");
    cr_assert(eq(int, cluster_node(&c, 1)->role, YGGR_ROLE_LEADER), "n1 still thinks it leads");
    c.sim->step++;
    c.sim->now_step = c.sim->step;
    (void)sim_read(c.sim, 1); /* n1's clock did not move: its lease looks valid */
    cr_assert(sim_violation(c.sim) != NULL, "a stale lease read went unnoticed");
    cr_assert(strstr(sim_violation(c.sim), "stale read") != NULL, "%s", sim_violation(c.sim));
    cluster_deinit(&c);
}
