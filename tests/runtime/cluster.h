/* SPDX-License-Identifier: MIT */
/* Test harness: N yggr nodes in one process, on in-memory or real storage and transport,
 * each with a counter state machine. */
#ifndef YGGR_TESTS_RUNTIME_CLUSTER_H
#define YGGR_TESTS_RUNTIME_CLUSTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem.h"
#include "yggr/yggr.h"

#define CLUSTER_MAX 7

/* The harness asserts with Criterion in Criterion suites and with abort() in the plain
 * scenario driver (-DYGGR_NO_CRITERION, used for ThreadSanitizer: Criterion cannot run
 * under TSAN, Snaipe/Criterion#274). */
#ifdef YGGR_NO_CRITERION
#include <stdio.h>
#include <stdlib.h>
#define CL_ASSERT(cond, fmt, ...)                                                             \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: check `%s' failed: " fmt "\n", __FILE__, __LINE__, #cond,  \
                    __VA_ARGS__);                                                             \
            abort();                                                                          \
        }                                                                                     \
    } while (0)
#else
#include <criterion/criterion.h>
#define CL_ASSERT(cond, fmt, ...) cr_assert(cond, fmt, __VA_ARGS__)
#endif

/* Counter state machine: each command is a little-endian u64 added to `total`; the reply
 * is the new total. `digest` hashes every applied (index, value). */
struct counter {
    pthread_mutex_t mu;
    uint64_t total;
    uint64_t applied;
    uint64_t digest;
    uint64_t commands;
    _Atomic uint32_t apply_delay_us; /* slow state machine */
    bool decline_snapshots;
};

struct cluster {
    uint32_t n;
    bool real;                 /* real disk + TCP instead of mem plugins */
    char *dir;                 /* real: base data dir */
    uint16_t base_port;
    struct mem_net *net;
    struct mem_disk *disk[CLUSTER_MAX];
    struct yggr_node *node[CLUSTER_MAX];
    struct counter sm[CLUSTER_MAX];
    struct yggr_config cfg[CLUSTER_MAX];
    struct yggr_peer peers[CLUSTER_MAX][CLUSTER_MAX];
    char addr[CLUSTER_MAX][32];
    /* Writes retried by cluster_add_any after an outcome-unknown error (they may have been
     * applied twice: correct Raft behaviour, an application-level duplicate). */
    uint32_t unknown_count;
    uint64_t unknown_sum;
};

/* Defaults: tick 5 ms, elections 10-20 ticks, heartbeat 2 ticks. `tweak` (may be NULL) may
 * change each node's config before start. */
typedef void (*cluster_tweak_fn)(struct yggr_config *cfg, uint32_t i);
void cluster_init(struct cluster *c, uint32_t n, bool real, cluster_tweak_fn tweak);
/* Start node i (0-based) with its bootstrap mode; asserts success. */
void cluster_start(struct cluster *c, uint32_t i);
void cluster_start_all(struct cluster *c);
void cluster_stop(struct cluster *c, uint32_t i);
void cluster_destroy(struct cluster *c);
/* Index of the leader once exactly one live node claims it (waits up to timeout_ms), or -1. */
int cluster_wait_leader(struct cluster *c, uint64_t timeout_ms);
/* Wait until every live node applied at least `index`; false on timeout. */
bool cluster_wait_applied(struct cluster *c, uint64_t index, uint64_t timeout_ms);
/* Propose `value` through node i (blocking); returns the error, *total = reply. */
int cluster_add(struct cluster *c, uint32_t i, uint64_t value, uint64_t *total, uint64_t *index);
/* Propose through whoever is leader, retrying until it succeeds; retries after an
 * outcome-unknown error are counted in unknown_count / unknown_sum. */
int cluster_add_any(struct cluster *c, uint64_t value, uint64_t *total, uint64_t timeout_ms);
/* True when `total` is what `expected` acknowledged writes give, allowing for the retried
 * unknown-outcome writes (never less: a lost acknowledged write fails this). */
bool cluster_total_ok(const struct cluster *c, uint64_t total, uint64_t expected);
uint64_t counter_total(struct counter *sm);
uint64_t now_ms(void);
/* Fresh temp dir (malloc'd path) / rm -rf. */
char *cluster_tmpdir(const char *tag);
void cluster_rmtree(const char *path);
void sleep_ms(uint64_t ms);

#endif /* YGGR_TESTS_RUNTIME_CLUSTER_H */
