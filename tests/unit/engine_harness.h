/* SPDX-License-Identifier: MIT */
/* Engine test harness: fixture engines, message builders, action finders, a mini cluster. */
#ifndef YGGR_TESTS_UNIT_ENGINE_HARNESS_H
#define YGGR_TESTS_UNIT_ENGINE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "yggr/engine.h"

/* Fixture config: pre-vote off, lease off, check-quorum off, heartbeat 1, election timeout
 * 10 (min 10, max 11), small caches. */
struct yggr_engine_config h_config(uint64_t id);

/* A node: engine + the actions of its last step. */
struct h_node {
    struct yggr_engine *e;
    struct yggr_actions act;
    uint64_t id;
    uint64_t hs_term;  /* last HARD_STATE handed out */
    uint64_t hs_vote;
};

/* A node created with a non-empty configuration bootstraps it as its first log entries
 * (term 0, committed): one per member. H_BOOT is their count for the fixture {1,2,3}, so
 * the first entry a test appends there is at H_BOOT + 1 and prev = (H_BOOT, 0). */
#define H_BOOT 3u

/* Create node `id` with voters `ids[0..n)` (NULL cfg = fixture) and feed RECOVER. */
void h_init(struct h_node *n, uint64_t id, const uint64_t *ids, uint32_t count,
            const struct yggr_engine_config *cfg);
void h_init3(struct h_node *n, uint64_t id); /* cluster {1,2,3} with the fixture */
void h_init_learners(struct h_node *n, uint64_t id, const uint64_t *voters, uint32_t nv,
                     const uint64_t *learners, uint32_t nl, const struct yggr_engine_config *cfg);
void h_fini(struct h_node *n);

/* Step and check invariants (cr_assert on yggr_engine_check). */
void h_step(struct h_node *n, const struct yggr_event *ev);
void h_tick(struct h_node *n);
void h_ticks(struct h_node *n, uint32_t count);
void h_recv(struct h_node *n, const struct yggr_msg *m);
void h_hs_persisted(struct h_node *n); /* reports the current (term, vote) durable */
void h_log_persisted(struct h_node *n, uint64_t index, uint64_t term);
void h_persist_all(struct h_node *n);  /* hard state + whole log durable */
void h_propose(struct h_node *n, uint32_t count);
void h_read(struct h_node *n, uint64_t id);

/* Message builders (from -> n->id). */
struct yggr_msg h_vote_req(uint64_t from, uint64_t to, uint64_t term, uint64_t last_index,
                           uint64_t last_term);
struct yggr_msg h_prevote_req(uint64_t from, uint64_t to, uint64_t term, uint64_t last_index,
                              uint64_t last_term);
struct yggr_msg h_vote_resp(uint64_t from, uint64_t to, uint64_t term, bool granted);
struct yggr_msg h_prevote_resp(uint64_t from, uint64_t to, uint64_t term, bool granted);
/* Entries come from h_entries(): `count` COMMAND entries from `first` with `term`. */
const struct yggr_entry *h_entries(uint64_t first, uint64_t term, uint32_t count);
/* Entries with explicit terms (terms[k] for first + k). */
const struct yggr_entry *h_entries_terms(uint64_t first, const uint64_t *terms, uint32_t count);
struct yggr_msg h_append(uint64_t from, uint64_t to, uint64_t term, uint64_t prev_index,
                         uint64_t prev_term, const struct yggr_entry *entries, uint32_t count,
                         uint64_t commit);
struct yggr_msg h_append_ok(uint64_t from, uint64_t to, uint64_t term, uint64_t last,
                            uint64_t round);
struct yggr_msg h_append_conflict(uint64_t from, uint64_t to, uint64_t term, uint64_t hint,
                                  uint64_t conflict_term);

/* Finders over the last step's actions. */
const struct yggr_msg *h_find(const struct h_node *n, enum yggr_msg_type type, uint64_t to);
uint32_t h_count(const struct h_node *n, enum yggr_msg_type type);
bool h_has(const struct h_node *n, uint32_t flag);
const struct yggr_read_result *h_read_result(const struct h_node *n, uint64_t id);
struct yggr_engine_metrics h_metrics(const struct h_node *n);
struct yggr_peer_progress h_progress(const struct h_node *n, uint64_t peer);

/* Make node 1 of a fresh fixture cluster {1,2,3} leader: election, grant from 2, the no-op
 * (at H_BOOT + 1) persisted and acknowledged by 2 and 3 (so the no-op is committed). */
void h_make_leader(struct h_node *n);
/* Make n a follower of leader 2 in term `term` with only the bootstrap entries. */
void h_make_follower(struct h_node *n, uint64_t term);

/* ------------------------------------------------------------------------------------
 * Mini cluster: N engines, a network queue, immediate or delayed persistence.
 * ---------------------------------------------------------------------------------- */

struct h_cluster;

struct h_cluster_options {
    uint32_t nodes;              /* founders: ids 1..nodes, bootstrapped with {1..nodes} */
    uint32_t joiners;            /* ids nodes+1..: empty configuration, must be added */
    uint64_t seed;
    uint32_t drop_percent;       /* per delivery */
    bool random_order;           /* deliver a random message (else FIFO) */
    bool delay_persist;          /* persistence reports are delayed events */
    const struct yggr_engine_config *cfg; /* NULL = fixture with random timeouts */
};

struct h_cluster *h_cluster_new(const struct h_cluster_options *o);
void h_cluster_free(struct h_cluster *c);
/* One scheduler step: tick, deliver, drop or persist; checks every safety invariant. */
void h_cluster_step(struct h_cluster *c);
/* Deliver every queued message and persistence report (bounded). */
void h_cluster_settle(struct h_cluster *c);
uint64_t h_cluster_leader(const struct h_cluster *c);
struct yggr_engine *h_cluster_engine(const struct h_cluster *c, uint64_t id);
/* Propose `count` commands at the leader (if any); returns accepted. */
uint32_t h_cluster_propose(struct h_cluster *c, uint32_t count);
uint64_t h_cluster_min_applied(const struct h_cluster *c);
void h_cluster_crash(struct h_cluster *c, uint64_t id);
void h_cluster_tick(struct h_cluster *c, uint64_t id);
uint64_t h_cluster_steps(const struct h_cluster *c);
/* The node takes a snapshot at its applied index (durable at once). */
void h_cluster_snapshot(struct h_cluster *c, uint64_t id);
/* Step node `id` with `ev` (its actions are absorbed like any other step). */
void h_cluster_event(struct h_cluster *c, uint64_t id, const struct yggr_event *ev);

#endif /* YGGR_TESTS_UNIT_ENGINE_HARNESS_H */
