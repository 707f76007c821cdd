/* SPDX-License-Identifier: MIT */
/* Scripted-cluster helpers for the sim suites: protocol transcripts over the simulator. */
#ifndef YGGR_TESTS_SIM_CLUSTER_H
#define YGGR_TESTS_SIM_CLUSTER_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "sim_internal.h"

/*
 * A scripted test drives the cluster by hand (no random scheduler): tick a node,
 * deliver the messages that match a filter, crash, restart, partition. Disks are fast
 * (every write is durable at the end of each scripted action). After every action the
 * cross-node invariants run and a violation fails the test with the trace.
 * Transcript checks read like the protocol: CLUSTER_EXPECT(c, "n2 ROLE leader term=2")
 * finds the next trace line (after the previous match) containing the text.
 */

struct cluster {
    struct sim *sim;
    uint64_t mark;              /* trace records already matched by CLUSTER_EXPECT */
    bool hold[SIM_MAX_IDS];     /* this node's writes stay pending until cluster_flush */
};

/* Manual cluster of `nodes` founders (and `spares` joinable ids). */
void cluster_init(struct cluster *c, uint32_t nodes, uint32_t spares, uint32_t features,
                  uint64_t seed);
void cluster_deinit(struct cluster *c);

/* Fail the test (with the trace) if the simulator found a violation. */
void cluster_assert_clean(struct cluster *c, const char *file, int line);
#define CLUSTER_CLEAN(c) cluster_assert_clean((c), __FILE__, __LINE__)

void cluster_tick(struct cluster *c, uint64_t id, uint32_t ticks);
/* Deliver every in-flight message from `from` to `to` of `type` (0 = any), including
 * the replies they cause, until none matches or `max` deliveries. Returns deliveries. */
uint32_t cluster_deliver(struct cluster *c, uint64_t from, uint64_t to, uint32_t type,
                         uint32_t max);
/* Drop every in-flight message that matches. */
uint32_t cluster_drop(struct cluster *c, uint64_t from, uint64_t to, uint32_t type);
/* Deliver everything (heartbeats keep coming: bounded by `max`). */
#define cluster_settle(c) cluster_deliver((c), 0, 0, 0, 2000)
/* Make `id` time out and win the election: the other live nodes first tick past leader
 * stickiness, then only `id` ticks; only vote traffic is delivered (the new leader's
 * first AppendEntries stay in flight for the test to deliver or drop). */
void cluster_elect(struct cluster *c, uint64_t id);
/* Let time pass for every live node (one tick each per round, then deliver everything)
 * until some node leads; returns its id (0 after `rounds`). */
uint64_t cluster_await_leader(struct cluster *c, uint32_t rounds);
void cluster_crash(struct cluster *c, uint64_t id);
void cluster_restart(struct cluster *c, uint64_t id);
/* Cut `id` off from everybody (both directions) / heal every cut. */
void cluster_isolate(struct cluster *c, uint64_t id);
void cluster_heal(struct cluster *c);
/* Propose `count` commands at `id`; returns the result error. */
int cluster_propose(struct cluster *c, uint64_t id, uint32_t count);
struct sim_node *cluster_node(struct cluster *c, uint64_t id);
/* Membership change / snapshot at node `id` (scripted step). */
int cluster_change(struct cluster *c, uint64_t id, enum yggr_change_type type, uint64_t node);
bool cluster_snapshot(struct cluster *c, uint64_t id);
/* Start a spare id as a joiner (empty configuration). */
void cluster_join(struct cluster *c, uint64_t id);
/* Keep node `id`'s writes pending (a slow disk) / make its first `count` writes durable
 * (UINT32_MAX = all). */
void cluster_hold_disk(struct cluster *c, uint64_t id, bool hold);
void cluster_flush(struct cluster *c, uint64_t id, uint32_t count);
/* Heartbeat rounds: tick the leader `rounds` x heartbeat and deliver everything. */
void cluster_heartbeats(struct cluster *c, uint64_t leader, uint32_t rounds);

/* Find the next trace line containing `text` after the last match. */
bool cluster_expect(struct cluster *c, const char *text);
#define CLUSTER_EXPECT(c, text)                                                                \
    do {                                                                                       \
        if (!cluster_expect((c), (text))) {                                                    \
            sim_dump_trace((c)->sim, stderr, 80);                                              \
            cr_assert(false, "transcript: no line matching \"%s\"", (text));                          \
        }                                                                                      \
    } while (0)
/* CLUSTER_EXPECT with a printf format (log indexes depend on the bootstrap entries). */
#define CLUSTER_EXPECTF(c, ...)                                                                \
    do {                                                                                       \
        char cluster_text_[160];                                                               \
        snprintf(cluster_text_, sizeof(cluster_text_), __VA_ARGS__);                           \
        CLUSTER_EXPECT((c), cluster_text_);                                                    \
    } while (0)
/* Count trace lines containing `text` after the last match (does not move the mark). */
uint32_t cluster_count(struct cluster *c, const char *text);

/* Random-schedule runs for the chaos-style suites. Returns true when clean; prints the
 * violation, seed and trace otherwise. */
bool cluster_run_seed(const struct sim_options *o, struct sim_stats *stats);

#endif /* YGGR_TESTS_SIM_CLUSTER_H */
