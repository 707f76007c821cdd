/* SPDX-License-Identifier: MIT */
/* yggr-sim: the deterministic simulator's API (implemented in tests/sim/, used by the CLI). */
#ifndef YGGR_TOOLS_SIM_H
#define YGGR_TOOLS_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * One simulation = N yggr engines on a simulated network and simulated disks, driven by
 * ONE seeded PRNG (scheduler, network, disks and every engine's seed draw from it), with
 * Raft's safety invariants checked after every step. The same options reproduce a run
 * bit-for-bit (sim_trace_hash() is equal).
 *
 * This header uses only the C library and is shared by tools/yggr-sim/main.c and the
 * implementation in tests/sim/.
 */

/* Things the scheduler may do (or configure), one bit each. */
enum sim_feature {
    SIM_F_PROPOSE = 1u << 0,      /* random client proposals (batches of 1..k) */
    SIM_F_PREVOTE = 1u << 1,      /* engines run pre-vote */
    SIM_F_CHECK_QUORUM = 1u << 2, /* engines run check-quorum */
    SIM_F_VARY = 1u << 3,         /* choose pre-vote / check-quorum per seed at random */
    SIM_F_CRASH = 1u << 4,        /* crash and restart nodes (pending writes lost) */
    SIM_F_TORN = 1u << 5,         /* a crash may tear the last pending append (a prefix) */
    SIM_F_SLOWDISK = 1u << 6,     /* per-node flush latency, partial flushes */
    SIM_F_NETFAULT = 1u << 7,     /* drop, duplicate, delay messages */
    SIM_F_PARTITION = 1u << 8,    /* symmetric, asymmetric, isolate-the-leader, heal */
    SIM_F_READS = 1u << 9,        /* linearizable (ReadIndex) reads */
    SIM_F_LEASE = 1u << 10,       /* lease reads (forces pre-vote and check-quorum on) */
    SIM_F_MEMBERSHIP = 1u << 11,  /* add/remove voters, add/promote learners */
    SIM_F_TRANSFER = 1u << 12,    /* leadership transfers */
    SIM_F_SNAPSHOT = 1u << 13,    /* snapshots, compaction, InstallSnapshot */
    SIM_F_REFWIRE = 1u << 14,     /* some nodes never send protocol extensions */
    SIM_F_DRIFT = 1u << 15,       /* large clock drift (64 ticks) unless lease is on */
    SIM_F_GARBAGE = 1u << 16,     /* deliver invalid copies of messages (must be dropped) */
    SIM_F_BIGCMD = 1u << 17,      /* commands up to 600 bytes (above the smallest byte cap) */
    SIM_F_SHORTREAD = 1u << 18,   /* hosts send prefixes of snapshot chunks (short reads) */
};

#define SIM_FEATURES_HAPPY (SIM_F_PROPOSE)
#define SIM_FEATURES_BASIC                                                                    \
    (SIM_F_PROPOSE | SIM_F_VARY | SIM_F_CRASH | SIM_F_TORN | SIM_F_SLOWDISK | SIM_F_NETFAULT | \
     SIM_F_PARTITION)
#define SIM_FEATURES_ALL                                                                      \
    (SIM_FEATURES_BASIC | SIM_F_READS | SIM_F_LEASE | SIM_F_MEMBERSHIP | SIM_F_TRANSFER |      \
     SIM_F_SNAPSHOT | SIM_F_REFWIRE | SIM_F_DRIFT | SIM_F_GARBAGE | SIM_F_BIGCMD |        \
     SIM_F_SHORTREAD)

#define SIM_MAX_NODES 9   /* founders */
#define SIM_MAX_SPARES 3  /* extra ids that may join through membership changes */

struct sim_options {
    uint64_t seed;
    uint32_t node_count;      /* founders, ids 1..node_count (1..SIM_MAX_NODES) */
    uint32_t spare_count;     /* joiners, ids node_count+1.. (0..SIM_MAX_SPARES) */
    uint64_t steps;           /* scheduler steps for sim_run() */
    uint32_t features;        /* enum sim_feature bits */
    /* 0 = never. At this step every fault stops: partitions heal, crashed nodes restart,
     * no more random client or admin requests; the cluster must then converge (one
     * leader, every live member applied the same commit) within converge_steps. */
    uint64_t heal_at;
    uint64_t converge_steps;  /* 0 = default (20000) */
    FILE *trace_out;          /* non-NULL: print every trace record as it happens */
    bool fixed_config;        /* scripted tests: fixed engine limits (1 entry per AE) */
    /* Force this clock drift bound and per-node clock rates (0 = the model's choice).
     * Lease reads assume bounded drift: beyond the lease margin they may be stale. */
    uint64_t clock_skew;
};

/* Counters summed over a run (and over runs by the CLI). */
struct sim_stats {
    uint64_t steps;
    uint64_t elections;       /* distinct (term, leader) pairs observed */
    uint64_t commits;         /* entries newly committed cluster-wide */
    uint64_t acked;           /* proposals acknowledged to a client */
    uint64_t reads;           /* reads served and checked */
    uint64_t crashes;
    uint64_t restarts;
    uint64_t torn;            /* crashes that tore an append */
    uint64_t partitions;
    uint64_t snapshots;       /* SNAPSHOT_TAKEN events */
    uint64_t installs;        /* snapshots installed from a leader */
    uint64_t changes;         /* membership changes committed */
    uint64_t transfers;       /* TRANSFER requests accepted */
    uint64_t messages;        /* messages delivered */
    uint64_t peak_inflight;   /* most messages in flight at once (max, not a sum) */
};

struct sim;

/* Fill `options` with defaults: 3 nodes, 2000 steps, SIM_FEATURES_BASIC, seed 1. */
void sim_options_init(struct sim_options *options);

/* Parse a feature list: presets happy|basic|all and names (propose, prevote, checkquorum,
 * vary, crash, torn, slowdisk, netfault, partition, reads, lease, membership, transfer,
 * snapshot, refwire, drift, garbage, bigcmd, shortread), comma-separated; "-name"
 * removes. Returns false and writes the reason into `why` on an unknown name. */
bool sim_features_parse(const char *text, uint32_t *out, char *why, size_t why_size);
/* Comma-separated names of `features` (a preset name when it is exactly one). */
const char *sim_features_name(uint32_t features, char *buf, size_t size);

/* NULL on invalid options (the reason goes to stderr) or out of memory. */
struct sim *sim_create(const struct sim_options *options);
void sim_destroy(struct sim *sim);

/* One scheduler step followed by every invariant check. false once a violation was
 * found (further calls do nothing). */
bool sim_step(struct sim *sim);
/* Step until options.steps (and convergence when heal_at is set) or a violation.
 * Returns true when the run is clean. */
bool sim_run(struct sim *sim);

/* The first violation ("<kind>: <details>") or NULL, and the step it happened at. */
const char *sim_violation(const struct sim *sim);
uint64_t sim_violation_step(const struct sim *sim);

/* Print the last `max_records` trace records, one per line. */
void sim_dump_trace(const struct sim *sim, FILE *out, uint32_t max_records);

/* A hash over every trace record of the run so far (the replay fingerprint). */
uint64_t sim_trace_hash(const struct sim *sim);

void sim_stats(const struct sim *sim, struct sim_stats *out);
void sim_stats_add(struct sim_stats *sum, const struct sim_stats *one);

#endif /* YGGR_TOOLS_SIM_H */
