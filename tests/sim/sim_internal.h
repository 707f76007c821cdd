/* SPDX-License-Identifier: MIT */
/* Simulator internals shared by tests/sim/ sources and the sim test suites. */
#ifndef YGGR_TESTS_SIM_INTERNAL_H
#define YGGR_TESTS_SIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim.h"
#include "yggr/engine.h"
#include "yggr/types.h"

/* ---------------------------------------------------------------------------------------
 * PRNG and hashing (rng.c)
 * ------------------------------------------------------------------------------------- */

struct sim_rng {
    uint64_t state;
};

void rng_seed(struct sim_rng *rng, uint64_t seed);
uint64_t rng_next(struct sim_rng *rng);
/* Uniform in [0, n) (n > 0). */
uint64_t rng_below(struct sim_rng *rng, uint64_t n);
/* Uniform in [lo, hi] inclusive. */
uint64_t rng_range(struct sim_rng *rng, uint64_t lo, uint64_t hi);
/* true with probability num/den. */
bool rng_chance(struct sim_rng *rng, uint64_t num, uint64_t den);

uint64_t rng_mix(uint64_t h, uint64_t v);
uint64_t rng_hash_bytes(uint64_t h, const uint8_t *data, size_t len);
/* Content digest of an entry (type, change, node, payload); never 0. */
uint64_t rng_entry_digest(const struct yggr_entry *e);

/* ---------------------------------------------------------------------------------------
 * Logs, snapshots and the simulated disk (store.c)
 * ------------------------------------------------------------------------------------- */

/* A contiguous run of entries [first, first + count). Entries own one buf reference. When
 * count == 0, `first` is the index the next append must use. */
struct slog {
    uint64_t first;
    uint32_t count;
    uint32_t cap;
    struct yggr_entry *e;
};

struct ssnap {
    bool present;
    struct yggr_snapshot_meta meta;
    struct yggr_buf *bytes;     /* one reference; bytes->size == meta.size */
};

/* One view of a disk: what is durable, or what a read sees (durable + pending writes). */
struct sview {
    uint64_t term;
    uint64_t vote;
    struct slog log;
    struct ssnap snap;
};

enum pop_kind {
    POP_HARD = 1,
    POP_APPEND,
    POP_SNAPSHOT, /* an installed snapshot, complete (the done chunk) */
    POP_COMPACT,
};

/* One pending write (submitted, not yet durable). */
struct pop {
    enum pop_kind kind;
    uint64_t ready_step;        /* earliest step a flush may make it durable */
    uint64_t term;              /* HARD */
    uint64_t vote;
    uint64_t truncate_from;     /* APPEND */
    struct yggr_entry *entries; /* APPEND: owned copies */
    uint32_t count;
    struct ssnap snap;          /* SNAPSHOT */
    uint64_t below;             /* COMPACT */
};

struct store {
    struct sview durable;
    struct sview written;
    struct ssnap partial;       /* incoming snapshot being assembled (volatile); */
    uint8_t *partial_data;      /* its bytes: the total size is known only at the end */
    uint64_t partial_len;
    uint64_t partial_cap;
    struct pop *ops;            /* FIFO ring */
    uint32_t op_head;
    uint32_t op_count;
    uint32_t op_cap;
};

void slog_init(struct slog *log, uint64_t first);
void slog_deinit(struct slog *log);
uint64_t slog_last(const struct slog *log);          /* first - 1 when empty */
const struct yggr_entry *slog_at(const struct slog *log, uint64_t index); /* NULL if absent */
void slog_copy(struct slog *dst, const struct slog *src);
/* Copy an entry, taking a reference on (or allocating) its payload buffer. */
void slog_entry_copy(struct yggr_entry *dst, const struct yggr_entry *src);
void slog_entry_release(struct yggr_entry *e);

void ssnap_copy(struct ssnap *dst, const struct ssnap *src);
void ssnap_release(struct ssnap *s);

void store_init(struct store *store);
void store_deinit(struct store *store);
/* Submit a write: applied to the written view now, durable after store_flush. Returns
 * NULL or a contract violation description. */
const char *store_submit(struct store *store, const struct pop *op);
/* Durable-ize the first `n` pending writes; `done` receives each op (for the events). */
typedef void (*store_flushed_fn)(void *ctx, const struct pop *op);
void store_flush(struct store *store, uint32_t n, store_flushed_fn done, void *ctx);
/* How many pending writes are ready at `step` (a prefix). */
uint32_t store_ready(const struct store *store, uint64_t step);
/* Crash: `survive` pending writes reach the disk, then the next append (if any) is torn
 * after `torn_entries` entries (UINT32_MAX = not torn); the rest is lost. Returns 0 when
 * nothing was torn, else 1 + the number of entries of the torn append that survived. */
uint32_t store_crash(struct store *store, uint32_t survive, uint32_t torn_entries);
/* Apply `op` to `view` (shared by durable and written views). */
void store_apply(struct sview *view, const struct pop *op);
void pop_release(struct pop *op);
/* Is an installed snapshot submitted but not durable yet? */
bool store_snapshot_pending(const struct store *store);

/* ---------------------------------------------------------------------------------------
 * State machine (sm.c): a hash chain over applied commands, serialisable
 * ------------------------------------------------------------------------------------- */

struct sm {
    uint64_t applied;           /* index */
    uint64_t applied_term;
    uint64_t hash;              /* chain over (index, term, digest) of COMMAND entries */
    uint64_t commands;
    struct yggr_membership config; /* configuration as of `applied` */
};

void sm_init(struct sm *sm, const struct yggr_membership *base);
void sm_apply(struct sm *sm, const struct yggr_entry *e);
/* Serialise into a new buffer whose size has `pad` extra verification bytes. */
struct yggr_buf *sm_serialise(const struct sm *sm, uint32_t pad);
/* Restore from bytes; false when the bytes are not a valid snapshot (corrupt). */
bool sm_restore(struct sm *sm, const uint8_t *data, uint64_t len);

/* ---------------------------------------------------------------------------------------
 * Invariant checker (check.c): cumulative histories, engine independent
 * ------------------------------------------------------------------------------------- */

/* Every (index, term) ever written to any log: content digest and predecessor's term. */
struct lm_rec {
    uint64_t term;
    uint64_t digest;
    uint64_t prev_term;         /* UINT64_MAX = unknown (first entry after a floor) */
};

struct lm_slot {
    uint32_t count;
    uint32_t cap;
    struct lm_rec *recs;
};

/* What is known about index i once committed / applied. */
struct commit_rec {
    bool committed;
    uint64_t term;              /* 0 for the bootstrap entries */
    uint64_t digest;
    uint64_t term_bound;        /* every leader of a higher term must hold it */
    uint64_t state;             /* state hash after applying i (valid when has_state) */
    bool has_state;
    bool acked;
};

struct ack_rec {
    uint64_t index;
    uint64_t term;
    uint64_t digest;
    uint64_t step;
};

struct check {
    bool failed;
    char why[768];
    uint64_t *leaders;          /* term -> leader id (0 = none seen) */
    uint64_t leaders_cap;
    struct lm_slot *lm;         /* index -> records */
    uint64_t lm_cap;
    struct commit_rec *commits; /* index -> record */
    uint64_t commits_cap;
    uint64_t max_commit;        /* highest index known committed */
    struct ack_rec *acks;
    uint64_t ack_count;
    uint64_t ack_cap;
    uint64_t max_acked;         /* highest acknowledged index */
    uint64_t elections;
    uint64_t new_commits;
};

void check_init(struct check *c);
void check_deinit(struct check *c);
/* Each returns true when fine; on a violation sets c->failed / c->why (first one wins). */
bool check_leader(struct check *c, uint64_t term, uint64_t id);
bool check_log_entry(struct check *c, uint64_t node, const struct yggr_entry *e,
                     uint64_t prev_term);
bool check_commit(struct check *c, uint64_t node, uint64_t index, uint64_t term,
                  uint64_t digest, uint64_t term_bound);
bool check_apply(struct check *c, uint64_t node, uint64_t index, uint64_t term,
                 uint64_t digest, uint64_t state);
/* A snapshot restored at `index` gives state `state`. */
bool check_restore(struct check *c, uint64_t node, uint64_t index, uint64_t state);
/* The leader that appended (index, term, digest) applied it: a client got its answer. */
bool check_ack(struct check *c, uint64_t node, uint64_t index, uint64_t term,
               uint64_t digest, uint64_t step);
/* A read issued when max_acked was `bound` got read index `read_index`. */
bool check_read_ready(struct check *c, uint64_t node, uint64_t id, uint64_t bound,
                      uint64_t read_index);
/* The read is served from state (`applied`, `state`) on `node`. */
bool check_read_serve(struct check *c, uint64_t node, uint64_t id, uint64_t bound,
                      uint64_t applied, uint64_t state);
/* Leader completeness: does a leader of `term` whose log is `log` above snapshot `snap`
 * (may be NULL) hold every committed entry it must? */
bool check_leader_log(struct check *c, uint64_t node, uint64_t term, const struct slog *log,
                      const struct ssnap *snap);
/* The same for one committed index. */
bool check_leader_entry(struct check *c, uint64_t node, uint64_t term, const struct slog *log,
                        const struct ssnap *snap, uint64_t index);
bool check_fail(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const struct commit_rec *check_committed(const struct check *c, uint64_t index);

/* ---------------------------------------------------------------------------------------
 * Trace (trace.c): compact binary records, formatted only when printed
 * ------------------------------------------------------------------------------------- */

enum trace_kind {
    TR_TICK = 1,
    TR_RECV,
    TR_SEND,
    TR_DROP,      /* network dropped a message (fault) */
    TR_LOST,      /* undeliverable: partition, dead or unknown target */
    TR_DUP,
    TR_DELAY,
    TR_PROPOSE,
    TR_CHANGE,
    TR_TRANSFER,
    TR_READ,
    TR_RESULT,
    TR_READ_DONE,
    TR_FLUSH,
    TR_CRASH,
    TR_RESTART,
    TR_PARTITION,
    TR_HEAL,
    TR_ROLE,
    TR_COMMIT,
    TR_APPLY,
    TR_APPEND,
    TR_HARD,
    TR_SNAPSHOT,
    TR_INSTALL,
    TR_COMPACT,
    TR_ACK,
    TR_CONFIG,    /* a CONFIG entry written to a log */
    TR_GARBAGE,   /* an invalid copy of a message delivered */
    TR_NOTE,
};

struct trace_rec {
    uint64_t step;
    uint16_t kind;
    uint8_t node;
    uint8_t peer;
    uint32_t x;
    uint64_t a[6];
};

#define TRACE_RING 4096

struct trace {
    struct trace_rec ring[TRACE_RING];
    uint64_t count;
    uint64_t hash;
    FILE *out;
};

void trace_init(struct trace *t, FILE *out);
void trace_add(struct trace *t, const struct trace_rec *r);
/* Record a message (SEND/RECV/DROP/LOST/DUP/DELAY) at node `node`. */
void trace_msg(struct trace *t, uint64_t step, enum trace_kind kind, uint64_t node,
               const struct yggr_msg *m, uint64_t extra);
void trace_format(const struct trace_rec *r, char *buf, size_t size);
void trace_dump(const struct trace *t, FILE *out, uint32_t max_records);

/* ---------------------------------------------------------------------------------------
 * Network (net.c)
 * ------------------------------------------------------------------------------------- */

struct flight {
    uint64_t id;
    uint64_t deliver_at;        /* step */
    struct yggr_msg msg;        /* deep copy: entries / chunk / config owned below */
    struct yggr_entry *entries;
    struct yggr_membership config;
};

#define SIM_MAX_IDS (SIM_MAX_NODES + SIM_MAX_SPARES + 1)

struct net {
    struct flight *q;
    uint32_t count;
    uint32_t cap;
    uint64_t next_id;
    bool blocked[SIM_MAX_IDS][SIM_MAX_IDS]; /* [from][to]: messages are lost */
    bool partitioned;
};

void net_init(struct net *net);
void net_deinit(struct net *net);
/* Deep-copy `m` into the in-flight list (retains payloads). */
void net_send(struct net *net, const struct yggr_msg *m, uint64_t deliver_at);
/* Remove message `i` into *out (caller owns it; release with net_flight_release). */
void net_take(struct net *net, uint32_t i, struct flight *out);
void net_flight_release(struct flight *f);
void net_duplicate(struct net *net, uint32_t i);
void net_heal(struct net *net);
bool net_blocked(const struct net *net, uint64_t from, uint64_t to);

/* ---------------------------------------------------------------------------------------
 * The cluster (sim.c) and the scheduler (sched.c)
 * ------------------------------------------------------------------------------------- */

struct proposal {
    uint64_t index;
    uint64_t term;
    uint64_t digest;
};

struct read_req {
    uint64_t id;
    uint64_t issued;            /* step */
    uint64_t bound;             /* check.max_acked when issued */
    uint64_t index;             /* READY: the read index */
    bool ready;
};

struct sim_node {
    uint64_t id;
    bool exists;                /* has a store (was started at least once) */
    bool alive;
    bool founder;
    struct yggr_engine *engine;
    struct yggr_engine_config cfg;
    struct store store;
    struct sm sm;
    uint64_t disk_latency;      /* steps before a write may become durable */
    uint64_t clock;             /* ticks this node has seen (bounded drift, see sched.c) */
    uint32_t clock_rate;        /* relative tick rate 1..4 (drift runs), else 1 */
    bool hinted;                /* the engine asked for a snapshot (SNAPSHOT_HINT) */
    uint64_t heard_clock;       /* own clock when it last received a message */
    uint64_t transfer_clock;    /* own clock when its current transfer started (0 = none) */
    uint64_t starts;
    /* Observed from actions during this lifetime. */
    enum yggr_role role;
    uint64_t term;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied;
    uint64_t last_index;
    uint64_t config_idx[4];     /* CONFIG entries in the written log (newest last) */
    uint32_t config_count;
    struct proposal *props;     /* outstanding proposals, ascending index */
    uint32_t prop_count;
    uint32_t prop_cap;
    struct read_req reads[64];
    uint32_t read_count;
};

struct sim {
    struct sim_options opt;
    struct sim_rng rng;
    uint64_t step;
    uint64_t now_step;          /* step being executed */
    struct sim_node nodes[SIM_MAX_IDS]; /* index = id; [0] unused */
    uint32_t id_count;          /* highest id in use (founders + spares) */
    struct yggr_membership founders;
    struct net net;
    struct check check;
    struct trace trace;
    struct sim_stats stats;
    uint64_t next_command;
    uint64_t next_read;
    bool pre_vote;
    bool check_quorum;
    uint64_t clock;             /* global clock: min over live nodes' clocks */
    uint64_t clock_skew;        /* a node's clock may run at most this far ahead */
    uint64_t checked_commit;    /* leader completeness checked up to here */
    bool healed;
    bool converged;
    uint64_t violation_step;
    struct yggr_actions actions; /* scratch */
};

/* Feed one event to a live node's engine and carry out every action (node.c). */
void node_step(struct sim *sim, struct sim_node *n, const struct yggr_event *ev);
/* Start a node: bootstrap a founder / joiner, or restart from its durable store. */
void node_start(struct sim *sim, uint64_t id);
/* Crash: drop the engine and the pending writes (some may survive, one may tear). */
void node_crash(struct sim *sim, uint64_t id, uint32_t survive, uint32_t torn_entries);
/* Flush the first `count` pending writes of node `id` and report them to its engine. */
void node_flush(struct sim *sim, uint64_t id, uint32_t count);
/* Release everything a node holds (engine, store, tables). */
void node_destroy(struct sim_node *n);

/* Deliver in-flight message `i` (or lose it across a partition / to a dead node). */
void sim_deliver(struct sim *sim, uint32_t i);
void sim_tick(struct sim *sim, uint64_t id);
/* Client requests; return the result error (0 on acceptance). */
int sim_propose(struct sim *sim, uint64_t id, uint32_t count, uint32_t size);
int sim_change(struct sim *sim, uint64_t id, enum yggr_change_type type, uint64_t node);
int sim_transfer(struct sim *sim, uint64_t id, uint64_t target);
int sim_read(struct sim *sim, uint64_t id);
/* Take a snapshot at the node's applied index; false when there is nothing to take. */
bool sim_snapshot(struct sim *sim, uint64_t id);
/* Run the cross-node checks (after every scheduler step). */
void sim_check(struct sim *sim);
bool sim_violate(struct sim *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_note(struct sim *sim, enum trace_kind kind, uint64_t node, uint64_t peer,
              uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3);
/* The live leader with the highest term (0 = none). */
uint64_t sim_leader(const struct sim *sim);
/* Has the cluster converged (one leader, every live member applied its commit)? */
bool sim_converged(const struct sim *sim);
void sim_heal(struct sim *sim);

/* Deliver an invalid copy of in-flight message `i` (garbage.c); false if none applies. */
bool garbage_deliver(struct sim *sim, uint32_t i);

/* One random scheduler action (sched.c). */
void sched_step(struct sim *sim);

#endif /* YGGR_TESTS_SIM_INTERNAL_H */
