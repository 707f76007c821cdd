/* SPDX-License-Identifier: MIT */
/* Internal structure of a yggr node: the actors, their rings and the request pool. */
#ifndef YGGR_RUNTIME_NODE_H
#define YGGR_RUNTIME_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "doorbell.h"
#include "ring.h"
#include "yggr/engine.h"
#include "yggr/plugin.h"
#include "yggr/yggr.h"

/* Payload arena chunks: proposal commands are copied once into these (by the proposing
 * thread) and referenced from then on by the engine, disk, network and apply actors. */
#define ARENA_CHUNK_BYTES (256u * 1024u)
#define ARENA_FREE_CHUNKS 64u
/* Commands larger than this get a buffer of their own instead of a chunk slice. */
#define ARENA_MAX_SLICE (ARENA_CHUNK_BYTES / 4u)

enum req_type {
    REQ_PROPOSE = 1,
    REQ_READ,
    REQ_ADMIN,
};

/* A client request slot, from the node's fixed pool. Owned by exactly one thread at a
 * time: the client (filling), the MPSC ring, the driver (pending tables), the apply ring,
 * the apply thread (completing) — then it returns to the free ring. */
struct req {
    enum req_type type;
    uint32_t slot;                  /* index in the pool; also the engine read id */
    /* PROPOSE */
    yggr_propose_fn propose_cb;
    void *ctx;
    uint32_t len;
    struct yggr_buf *cmd_buf;       /* holds the command (one reference owned by the req) */
    const uint8_t *cmd_data;        /* the command bytes inside cmd_buf */
    uint64_t index;                 /* assigned by the engine */
    uint64_t term;
    /* READ */
    yggr_read_fn read_cb;
    enum yggr_read_mode mode;
    uint64_t read_index;
    /* ADMIN */
    struct admin *admin;
};

enum admin_type {
    ADMIN_CHANGE = 1,
    ADMIN_TRANSFER,
    ADMIN_SNAPSHOT,
    ADMIN_METRICS,
};

/* A blocking administrative request; heap-allocated, shared by the waiting caller and the
 * driver (refs = 2); whoever drops the last reference frees it. */
struct admin {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;                      /* guarded by mu */
    int err;
    uint64_t leader_hint;
    enum admin_type type;
    enum yggr_change_type change;
    uint64_t target;
    char addr[128];
    uint64_t timeout_ms;            /* client: 0 = wait forever */
    uint64_t deadline_tick;         /* driver: give up at this tick (0 = never) */
    uint64_t wait_index;            /* CHANGE: committed entry to wait for */
    uint64_t wait_term;
    struct yggr_membership config;  /* CHANGE result */
    struct yggr_metrics *metrics;   /* METRICS result */
};

/* Items on the driver -> apply ring. */
enum apply_kind {
    APPLY_ENTRY = 1,   /* a committed entry (every type) */
    APPLY_READ,        /* run a read callback (linearizable point reached) */
    APPLY_RESTORE,     /* restore the state machine from snapshot `meta` */
    APPLY_SNAPSHOT,    /* take a snapshot at the current applied index */
    APPLY_STOP,        /* drain done: exit */
    APPLY_HOLE,        /* driver only: committed entries still being read from storage */
};

struct apply_item {
    uint8_t kind;
    uint8_t entry_type;
    uint8_t change;
    uint32_t len;
    uint64_t index;
    uint64_t term;
    uint64_t node;                  /* CONFIG: the node changed */
    const uint8_t *data;
    struct yggr_buf *buf;           /* retained by the driver, released by apply */
    struct req *req;                /* ENTRY: proposal to complete; READ: the read */
    struct yggr_snapshot_meta *meta;/* RESTORE: heap copy, freed by apply */
    struct apply_hole *hole;        /* HOLE (driver only) */
};
RING_DEFINE(apply_ring, apply_item)

/* Items on the apply -> driver ring. */
enum apply_event_kind {
    APPLY_EV_SNAPSHOT_DONE = 1,     /* local snapshot durable: last, size */
    APPLY_EV_SNAPSHOT_FAILED,       /* declined or failed: err */
    APPLY_EV_RESTORED,              /* restore finished (address book follows in book) */
    APPLY_EV_FATAL,                 /* restore failed: the node must stop */
};

struct apply_event {
    uint8_t kind;
    int err;
    struct yggr_log_id last;
    uint64_t size;
};
RING_DEFINE(apply_ev_ring, apply_event)

/* Address book: every member's Raft address we know. Guarded by book_mu (written by the
 * driver and the apply thread, read by both). */
struct book_entry {
    uint64_t id;
    char addr[128];
};

struct status_cache {
    pthread_mutex_t mu;
    struct yggr_status status;
};

struct driver;
struct apply_hole;

struct yggr_node {
    struct yggr_config config;      /* copy; pointers inside are not kept */
    char *data_dir;
    char *listen_addr;
    uint8_t *secret;
    uint64_t cluster_id;

    /* Plugins. */
    const struct yggr_storage_ops *sops;
    struct yggr_storage *storage;
    const struct yggr_transport_ops *tops;
    struct yggr_transport *transport;

    /* Request pool and client -> driver MPSC ring. */
    struct req *pool;
    uint32_t pool_size;
    struct mpsc_ring free_reqs;     /* MPMC: any thread frees, clients allocate */
    struct mpsc_ring to_drv;        /* MPSC: clients -> driver */
    atomic_uint pending_proposals;  /* allocated PROPOSE slots */
    atomic_uint pending_reads;

    /* Actors. */
    struct driver *drv;
    pthread_t drv_thread;
    pthread_t apply_thread;
    bool drv_started;
    bool apply_started;
    struct doorbell drv_bell;
    struct doorbell apply_bell;
    struct apply_ring to_apply;     /* driver -> apply */
    struct apply_ev_ring from_apply;/* apply -> driver */

    /* Apply thread state (owner: apply). */
    atomic_uint_fast64_t applied_index;
    uint64_t applied_term;
    struct yggr_membership apply_config;
    struct yggr_buf *apply_run_buf;  /* references released in runs (see apply_entry) */
    uint32_t apply_run_len;

    /* Shared state. */
    atomic_int health;              /* enum yggr_health */
    atomic_bool stopping;
    pthread_mutex_t fatal_mu;
    char fatal_reason[160];
    int fatal_err;
    struct status_cache status;
    pthread_mutex_t book_mu;
    struct book_entry book[YGGR_MAX_MEMBERS * 2];
    uint32_t book_count;

    /* Arena of payload chunks (any thread returns chunks). Proposing threads carve command
     * slices out of `client_chunk` under client_mu; its references are reserved in bulk
     * (client_reserved of them belong to us), so a proposal costs no atomic operation on
     * the chunk's counter. */
    struct mpsc_ring free_chunks;
    atomic_uint chunks_live;
    pthread_mutex_t client_mu;
    struct yggr_buf *client_chunk;
    uint32_t client_used;
    uint32_t client_reserved;

    /* Runtime counters (atomics: read by metrics from the driver). */
    atomic_uint_fast64_t proposals_submitted;
    atomic_uint_fast64_t proposals_completed;
    atomic_uint_fast64_t proposals_failed;
    atomic_uint_fast64_t proposals_busy;
    atomic_uint_fast64_t snapshots_restored;
    atomic_uint_fast64_t snapshots_taken;
};

/* node.c */
void node_log(struct yggr_node *node, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void node_set_fatal(struct yggr_node *node, int err, const char *reason);
struct req *node_req_alloc(struct yggr_node *node, enum req_type type);
void node_req_free(struct yggr_node *node, struct req *req);
void node_admin_put(struct admin *admin);
void node_admin_complete(struct admin *admin, int err);
void node_book_set(struct yggr_node *node, uint64_t id, const char *addr, uint32_t len);
bool node_book_get(struct yggr_node *node, uint64_t id, char *out, size_t cap);
/* Hand every known address to the transport (before start, and after a restore). */
void node_register_peers(struct yggr_node *node);

/* driver.c */
int driver_create(struct yggr_node *node, const struct yggr_storage_state *state);
void driver_destroy(struct yggr_node *node);
void *driver_main(void *arg);
void driver_wake(void *node);

/* apply.c */
void *apply_main(void *arg);
void apply_complete_propose(struct yggr_node *node, struct req *req, int err, uint64_t hint,
                            const uint8_t *reply, uint32_t len);
void apply_complete_read(struct yggr_node *node, struct req *req, int err, uint64_t hint,
                         void *sm_ctx);

/* arena.c */
struct yggr_buf *arena_chunk_get(struct yggr_node *node);
void arena_drain(struct yggr_node *node);
/* Copy `len` bytes into the client arena; returns the buffer (one reference for the
 * caller) and the copy's address in *data, or NULL on ENOMEM. Any thread. */
struct yggr_buf *arena_copy_command(struct yggr_node *node, const void *cmd, uint32_t len,
                                    const uint8_t **data);
void arena_client_release(struct yggr_node *node);

/* threads.c */
void threads_setup(const char *name, int cpu, struct yggr_node *node);

#endif /* YGGR_RUNTIME_NODE_H */
