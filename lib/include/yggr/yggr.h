/* SPDX-License-Identifier: MIT */
/* yggr runtime API: a replicated, durable, linearizable log for your state machine. */
#ifndef YGGR_YGGR_H
#define YGGR_YGGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/types.h"

/*
 * A yggr node runs four threads (driver, apply, network, disk) and owns a data directory
 * and a TCP listen address. Your state machine's callbacks run on the apply thread, one at
 * a time, in log order. Completion callbacks run on yggr's threads: keep them short and
 * never call blocking yggr functions from them.
 *
 * Every call returns 0 (YGGR_OK) or a negative enum yggr_err; yggr_strerror() describes it.
 */

#ifdef __cplusplus
extern "C" {
#endif

struct yggr_node;
struct yggr_storage;            /* yggr/plugin.h */
struct yggr_storage_ops;
struct yggr_transport;
struct yggr_transport_ops;

/* ---------------------------------------------------------------------------------------
 * State machine
 * ------------------------------------------------------------------------------------- */

/* A committed command handed to apply(). */
struct yggr_command {
    uint64_t index;          /* log index: strictly increasing, identical on every node */
    uint64_t term;
    const uint8_t *data;     /* valid during the call only */
    uint32_t len;
};

/* Where apply() writes its response for the proposer (optional). */
struct yggr_reply;
/* Copy `len` bytes as the response (replaces an earlier one). Returns 0 or NOMEM. */
YGGR_API int yggr_reply_set(struct yggr_reply *reply, const void *data, uint32_t len);

/* Snapshot streams (valid during the callback only). */
struct yggr_snapshot_writer;
struct yggr_snapshot_reader;
YGGR_API int yggr_snapshot_write(struct yggr_snapshot_writer *w, const void *data, size_t len);
/* Reads up to `len` bytes; returns the count (0 at the end) or a negative yggr_err. */
YGGR_API long yggr_snapshot_read(struct yggr_snapshot_reader *r, void *data, size_t len);

struct yggr_state_machine {
    void *ctx;
    /* Apply one committed command. Deterministic; no clock, randomness or I/O. */
    void (*apply)(void *ctx, const struct yggr_command *cmd, struct yggr_reply *reply);
    /* Serialise the whole state (at the last applied index). Return 0, or
     * YGGR_ERR_DECLINED to skip this snapshot. NULL = snapshots unsupported. */
    int (*snapshot)(void *ctx, struct yggr_snapshot_writer *w);
    /* Replace the whole state with a snapshot. Return 0 or a negative yggr_err (fatal). */
    int (*restore)(void *ctx, struct yggr_snapshot_reader *r);
};

/* ---------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------- */

enum yggr_bootstrap {
    YGGR_BOOTSTRAP_NEW = 1,      /* first boot of a founder: data dir must be empty */
    YGGR_BOOTSTRAP_JOIN = 2,     /* first boot of a node a running cluster will add */
    YGGR_BOOTSTRAP_RECOVER = 3,  /* every later boot: data dir must be initialised */
    YGGR_BOOTSTRAP_AUTO = 4,     /* RECOVER if the data dir is initialised, else NEW */
};

struct yggr_peer {
    uint64_t id;
    const char *addr;            /* "host:port" of its Raft listener */
};

struct yggr_config {
    uint64_t node_id;                      /* non-zero */
    uint64_t cluster_id;                   /* 0 = derived from the founders' ids */
    const char *data_dir;
    const char *listen_addr;               /* "host:port" for Raft traffic */
    const struct yggr_peer *peers;         /* the OTHER members (borrowed during start) */
    uint32_t peer_count;
    enum yggr_bootstrap bootstrap;
    struct yggr_state_machine sm;

    /* Timing (REFERENCE 3.4 defaults). */
    uint32_t tick_ms;                      /* 50 */
    uint32_t election_timeout_min_ticks;   /* 10, inclusive */
    uint32_t election_timeout_max_ticks;   /* 20, exclusive */
    uint32_t heartbeat_interval_ticks;     /* 3 */
    bool pre_vote;                         /* true */
    bool check_quorum;                     /* true */
    uint32_t lease_duration_ticks;         /* 0 = off */

    /* Flow control. */
    uint32_t max_pending_proposals;        /* 1024; beyond -> YGGR_ERR_BUSY */
    uint32_t max_pending_applies;          /* 4096 entries queued to the apply thread */
    uint32_t max_pending_reads;            /* 4096 */
    uint32_t max_batch_entries;            /* 4096 proposals per engine step */
    uint32_t max_command_bytes;            /* 4 MiB */

    /* Snapshots. */
    uint64_t snapshot_threshold_entries;   /* 1024; 0 = never snapshot automatically */
    uint64_t max_log_entries;              /* 0 = off */
    uint32_t snapshot_chunk_bytes;         /* 65536 */
    uint64_t snapshot_trailing_entries;    /* 0: entries kept below a snapshot */

    /* Storage. */
    uint64_t segment_bytes;                /* 64 MiB */
    uint32_t log_cache_entries;            /* 65536, power of two */

    /* Threads: CPU to pin each actor to, -1 = not pinned (default). Pinning is ignored
     * when the machine has fewer cores than yggr threads. */
    int cpu_driver;
    int cpu_apply;
    int cpu_network;
    int cpu_disk;

    /* Peer authentication: a shared secret (>= 16 bytes) turns on the HMAC-SHA256
     * handshake; NULL = unauthenticated peers, reference-compatible wire. */
    const uint8_t *cluster_secret;
    uint32_t cluster_secret_len;

    /* Pluggable storage and transport (yggr/plugin.h). NULL = the io_uring disk actor over
     * data_dir and the io_uring TCP actor on listen_addr. The node takes ownership of what
     * is passed here (it calls close() at stop, and on a failed start). */
    const struct yggr_storage_ops *storage_ops;
    struct yggr_storage *storage;
    const struct yggr_transport_ops *transport_ops;
    struct yggr_transport *transport;

    /* Logging: called for notable events (level 0 error, 1 warn, 2 info, 3 debug).
     * NULL = stderr for levels <= log_level. */
    void (*log_fn)(void *ctx, int level, const char *msg);
    void *log_ctx;
    int log_level;                         /* 1 */

    /* TESTING ONLY (default false): create the default disk storage with
     * yggr_disk_options.fault_injection, which makes yggr_node_power_cut() available.
     * Ignored when storage_ops is set. Never set it in production: it is slower. */
    bool test_fault_injection;
};

/* Defaults for node `node_id` (every field above). */
YGGR_API void yggr_config_init(struct yggr_config *config, uint64_t node_id);

/* Returns 0 or YGGR_ERR_CONFIG with a precise message in `why` (may be NULL). */
YGGR_API int yggr_config_validate(const struct yggr_config *config, char *why,
                                  size_t why_size);

/* ---------------------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------------------- */

/* Validate, open/initialise the data directory, recover, start the threads. On failure
 * returns a negative yggr_err and a precise message (file and offset for storage errors). */
YGGR_API int yggr_node_start(const struct yggr_config *config, struct yggr_node **out,
                             char *why, size_t why_size);

/* Stop accepting requests, fail what cannot complete (YGGR_ERR_SHUTDOWN), drain the
 * apply queue, stop the threads, close files and sockets, free the node. */
YGGR_API void yggr_node_stop(struct yggr_node *node);

/* TESTING ONLY: simulate a power loss of this node's disk (yggr_disk_power_cut() on the
 * default disk storage): writes not yet durable are reverted, the last one torn, and all
 * further I/O fails. Requires config.test_fault_injection; otherwise YGGR_ERR_INVALID.
 * The node keeps running with a dead disk (it turns FATAL at its next I/O): follow it
 * with _exit() to model the machine losing power, then restart from the data directory. */
YGGR_API int yggr_node_power_cut(struct yggr_node *node);

/* ---------------------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------------------- */

/* Called once per proposal: err == 0 with the state machine's response (valid during the
 * call), or an error: NOT_LEADER (leader_hint set; nothing was appended), NO_LEADER, BUSY,
 * STEPPED_DOWN (outcome unknown), SHUTDOWN, FATAL, TOO_LARGE. */
typedef void (*yggr_propose_fn)(void *ctx, int err, uint64_t index, uint64_t leader_hint,
                                const uint8_t *reply, uint32_t reply_len);

/* Asynchronous proposal. The command bytes are copied. Returns 0 when queued (the
 * callback will run exactly once), or an error right away (the callback will not run). */
YGGR_API int yggr_propose(struct yggr_node *node, const void *cmd, uint32_t len,
                          yggr_propose_fn cb, void *ctx);

/* Blocking proposal. Copies up to `reply_cap` bytes of the response into `reply` and sets
 * *reply_len to the full length (pointers may be NULL). timeout_ms 0 = wait forever;
 * on timeout returns YGGR_ERR_TIMEOUT (the outcome is then unknown). */
YGGR_API int yggr_propose_sync(struct yggr_node *node, const void *cmd, uint32_t len,
                               void *reply, uint32_t reply_cap, uint32_t *reply_len,
                               uint64_t *index, uint64_t *leader_hint, uint64_t timeout_ms);

/* ---------------------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------------------- */

enum yggr_read_mode {
    YGGR_READ_LINEARIZABLE = 0,  /* ReadIndex: confirm leadership with a heartbeat round */
    YGGR_READ_LEASE = 1,         /* leader lease when configured, else ReadIndex */
    YGGR_READ_LOCAL = 2,         /* this node's current state, possibly stale */
};

/* Runs on the apply thread. err == 0: `sm_ctx` (your state machine's ctx) may be read at a
 * point that reflects every write acknowledged before the read was issued. err != 0:
 * NOT_LEADER (leader_hint), NOT_READY, STEPPED_DOWN, BUSY, SHUTDOWN, FATAL; sm_ctx is NULL. */
typedef void (*yggr_read_fn)(void *ctx, int err, uint64_t leader_hint, void *sm_ctx);

YGGR_API int yggr_read(struct yggr_node *node, enum yggr_read_mode mode, yggr_read_fn cb,
                       void *ctx);

/* ---------------------------------------------------------------------------------------
 * Administration (blocking; timeout_ms 0 = wait forever)
 * ------------------------------------------------------------------------------------- */

/* Membership changes, one at a time (Raft 4.3). Each returns once the change is
 * committed, with the resulting configuration in `out` (may be NULL). `addr` is the new
 * node's Raft address (required for add_voter/add_learner, ignored otherwise). */
YGGR_API int yggr_add_voter(struct yggr_node *node, uint64_t id, const char *addr,
                            uint64_t timeout_ms, struct yggr_membership *out);
YGGR_API int yggr_add_learner(struct yggr_node *node, uint64_t id, const char *addr,
                              uint64_t timeout_ms, struct yggr_membership *out);
YGGR_API int yggr_promote_learner(struct yggr_node *node, uint64_t id, uint64_t timeout_ms,
                                  struct yggr_membership *out);
YGGR_API int yggr_remove_voter(struct yggr_node *node, uint64_t id, uint64_t timeout_ms,
                               struct yggr_membership *out);

/* Hand leadership to `target`; returns when `target` is leader, or TIMEOUT. */
YGGR_API int yggr_transfer_leadership(struct yggr_node *node, uint64_t target,
                                      uint64_t timeout_ms);

/* Take a snapshot now (at the last applied index) and compact the log below it. */
YGGR_API int yggr_trigger_snapshot(struct yggr_node *node, uint64_t timeout_ms);

/* ---------------------------------------------------------------------------------------
 * Observability
 * ------------------------------------------------------------------------------------- */

enum yggr_health {
    YGGR_HEALTH_RUNNING = 0,
    YGGR_HEALTH_SHUTTING_DOWN = 1,
    YGGR_HEALTH_FATAL = 2,
};

struct yggr_status {
    uint64_t id;
    enum yggr_role role;
    uint64_t term;
    uint64_t leader;             /* the leader (self when leader), 0 = unknown */
    bool removed;                /* removed from the cluster: requests fail with
                                  * YGGR_ERR_REMOVED; stop this node (or add it back) */
    uint64_t commit_index;
    uint64_t applied_index;      /* executed by the state machine */
    uint64_t last_log_index;
    uint64_t snapshot_index;
    struct yggr_membership config;  /* latest configuration, self included */
    enum yggr_health health;
    int fatal_err;               /* when health == FATAL */
    char fatal_reason[160];
};

YGGR_API int yggr_status(struct yggr_node *node, struct yggr_status *out);

struct yggr_peer_metrics {
    uint64_t id;
    bool learner;
    uint64_t match_index;
    uint64_t next_index;
    uint32_t inflight_msgs;
    uint8_t state;               /* 0 probe, 1 replicate, 2 snapshot */
    bool connected;
    uint64_t bytes_out;
    uint64_t bytes_in;
    uint64_t frames_out;
    uint64_t frames_in;
    uint64_t reconnects;
    uint64_t send_drops;
    uint64_t decode_errors;
};

struct yggr_metrics {
    /* Engine (see struct yggr_engine_metrics in yggr/engine.h for the meaning). */
    uint64_t elections_started, pre_votes_granted, pre_votes_denied, votes_granted,
        votes_denied, leader_elections_won, higher_term_stepdowns, append_entries_sent,
        append_entries_received, append_entries_rejected, entries_appended,
        entries_committed, entries_applied, snapshots_sent, snapshots_installed,
        read_index_started, reads_completed, reads_failed, check_quorum_stepdowns,
        transfers_started, transfers_completed, transfers_timed_out;
    uint64_t current_term, commit_index, last_applied, log_len, role_code;
    /* Runtime. */
    uint64_t proposals_submitted, proposals_completed, proposals_failed, proposals_busy;
    uint64_t driver_wakeups, driver_steps, proposal_batches;
    uint64_t disk_writes, disk_syncs, disk_bytes_written, disk_entries_written;
    uint64_t disk_reads, snapshots_taken, snapshots_restored;
    uint32_t ring_client_depth, ring_apply_depth;  /* queued client requests, apply items */
    uint32_t peer_count;
    struct yggr_peer_metrics peers[YGGR_MAX_MEMBERS];
};

/* One consistent snapshot, built by the driver between two steps. */
YGGR_API int yggr_metrics(struct yggr_node *node, struct yggr_metrics *out);

#ifdef __cplusplus
}
#endif

#endif /* YGGR_YGGR_H */
