/* SPDX-License-Identifier: MIT */
/* yggr engine API: a pure, deterministic Raft protocol engine driven by one step function. */
#ifndef YGGR_ENGINE_H
#define YGGR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/types.h"

/*
 * The engine is a pure state machine: no threads, no I/O, no clock, no malloc after
 * yggr_engine_create(). The host feeds events with yggr_engine_step() and executes the
 * actions it gets back. The same configuration (including the seed) and the same event
 * sequence produce byte-identical actions.
 *
 * Ownership rules (apply to every pointer below):
 *   - Everything reachable from a `struct yggr_event` is BORROWED for the duration of the
 *     step, except entry payloads: when the engine keeps an entry (proposal, inbound
 *     AppendEntries) it takes its own reference on `entry.buf` with yggr_buf_retain(), so
 *     the host may release its reference after the step returns.
 *   - Everything reachable from `struct yggr_actions` is OWNED BY THE ENGINE and valid
 *     until the next call to yggr_engine_step() or yggr_engine_destroy() on that engine.
 *     A host that needs a payload longer (disk write, network send, apply) must retain
 *     `entry.buf` itself and release it when done.
 *
 * Host duties, in this order, for each returned `struct yggr_actions`:
 *   1. YGGR_ACT_HARD_STATE: persist (term, vote) durably, report HARD_STATE_PERSISTED.
 *   2. YGGR_ACT_SNAPSHOT_CHUNK / YGGR_ACT_APPEND / YGGR_ACT_COMPACT: submit to storage in
 *      this order (storage executes its queue in FIFO order); report LOG_PERSISTED /
 *      SNAPSHOT_PERSISTED when durable.
 *   3. YGGR_ACT_SEND: send every message (best effort: drops are fine). The engine never
 *      emits a message whose correctness depends on state that is not yet reported
 *      durable: vote grants, RequestVotes and AppendEntries successes are held inside the
 *      engine until the matching *_PERSISTED event arrives. A leader's own AppendEntries
 *      go out while its local write is still in flight (Raft thesis 10.2.1).
 *   4. YGGR_ACT_APPLY_SNAPSHOT then YGGR_ACT_APPLY: hand to the state machine, in order.
 *   5. Reads ready/failed, the event result, hints: complete host-side requests.
 */

#ifdef __cplusplus
extern "C" {
#endif

struct yggr_engine;

/* ---------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------- */

struct yggr_engine_config {
    uint64_t id;                          /* this node, non-zero */
    uint64_t seed;                        /* PRNG seed for election timeouts (0 is remapped) */
    uint32_t election_timeout_min_ticks;  /* inclusive; default 10 */
    uint32_t election_timeout_max_ticks;  /* exclusive; default 20 */
    uint32_t heartbeat_interval_ticks;    /* default 3; must be < election_timeout_min_ticks */
    bool pre_vote;                        /* Raft thesis 9.6; default true */
    bool check_quorum;                    /* leader steps down without a live majority; true */
    uint32_t lease_duration_ticks;        /* 0 = lease reads off (default) */
    /* Replication flow control. */
    uint32_t max_append_entries;          /* entries per AppendEntries; default 4096 */
    uint32_t max_append_bytes;            /* payload bytes per AppendEntries; default 1 MiB */
    uint32_t max_inflight_msgs;           /* AppendEntries in flight per peer; default 256 */
    uint64_t max_inflight_bytes;          /* payload bytes in flight per peer; default 64 MiB */
    /* Memory bounds (all fixed at create time). */
    uint32_t log_cache_entries;           /* in-memory log ring, power of two; default 1<<16 */
    uint32_t max_term_runs;               /* (term, first index) table; default 1<<16 */
    uint32_t max_pending_reads;           /* queued ReadIndex reads; default 4096 */
    uint32_t max_step_entries;            /* descriptors emitted per step; default 1<<16 */
    /* Snapshots. */
    uint32_t snapshot_chunk_bytes;        /* InstallSnapshot chunk size; default 1 MiB */
    uint32_t snapshot_chunks_inflight;    /* chunks streamed ahead of acks; default 4 */
    uint64_t snapshot_threshold_entries;  /* SnapshotHint band; 0 = off; default 0 */
    uint64_t max_log_entries;             /* live-log guard for SnapshotHint; 0 = off */
    uint64_t snapshot_trailing_entries;   /* entries kept below a snapshot for catch-up; 1024 */
    /* Wire compatibility: when true this engine never SENDS the protocol extensions
     * (round, conflict term, transfer flag, removed flag), exactly like a reference peer.
     * Received extensions are always honoured; missing ones are handled conservatively.
     * A response without a round confirms (for ReadIndex and leases) the round of the
     * oldest request still unanswered: a lower bound only if the transport never
     * DUPLICATES messages (TCP does not); a duplicated round-less response can confirm a
     * round its sender never saw. Replication does not depend on rounds. */
    bool reference_wire;
};

/* Fill `config` with the defaults documented above for node `id`. */
YGGR_API void yggr_engine_config_init(struct yggr_engine_config *config, uint64_t id);

/* Validate; returns 0 or a negative yggr_err and writes a precise message to `why`
 * (may be NULL). */
YGGR_API int yggr_engine_config_validate(const struct yggr_engine_config *config, char *why,
                                         size_t why_size);

/* ---------------------------------------------------------------------------------------
 * Messages (the reference's raft.proto records plus our optional extensions)
 * ------------------------------------------------------------------------------------- */

/* Values equal the `Message.kind` oneof field numbers of the reference schema. */
enum yggr_msg_type {
    YGGR_MSG_VOTE_REQUEST = 1,
    YGGR_MSG_VOTE_RESPONSE = 2,
    YGGR_MSG_APPEND_REQUEST = 3,
    YGGR_MSG_APPEND_RESPONSE = 4,
    YGGR_MSG_SNAPSHOT_REQUEST = 5,
    YGGR_MSG_SNAPSHOT_RESPONSE = 6,
    YGGR_MSG_TIMEOUT_NOW = 7,
    YGGR_MSG_PRE_VOTE_REQUEST = 8,
    YGGR_MSG_PRE_VOTE_RESPONSE = 9,
};

/* VoteRequest and PreVoteRequest. For a pre-vote, `term` is the PROPOSED term. */
struct yggr_msg_vote_request {
    uint64_t candidate_id;         /* must equal msg.from */
    struct yggr_log_id last;       /* index 0 = empty log (field absent) */
    bool transfer;                 /* ext field 4: campaign started by TimeoutNow */
};

/* VoteResponse and PreVoteResponse. `term` is the responder's current term. */
struct yggr_msg_vote_response {
    bool granted;
    bool removed;                  /* ext field 3: you are not a member of my config */
};

struct yggr_msg_append_request {
    uint64_t leader_id;            /* must equal msg.from */
    struct yggr_log_id prev;       /* index 0 = none (entries start at index 1) */
    uint64_t leader_commit;
    uint64_t round;                /* ext field 6: leader's heartbeat round; 0 = absent */
    /* Entries, contiguous from prev.index + 1. When `from_storage` is true (only in SEND
     * actions), `entries` is NULL and the host must read `entry_count` entries starting at
     * prev.index + 1 from its log storage and fill them in before encoding; if storage no
     * longer has them (compacted), the host drops the message. */
    const struct yggr_entry *entries;
    uint32_t entry_count;
    bool from_storage;
};

struct yggr_msg_append_response {
    bool success;
    /* success: the highest index known to match the leader's log AND durable here.
     * 0 = empty log (encoded as an absent `last_appended`). */
    uint64_t last_appended;
    /* conflict: the index the leader should try next (>= 1 on the wire). */
    uint64_t hint;
    uint64_t conflict_term;        /* ext: term of our entry at hint's index; 0 = absent */
    uint64_t round;                /* ext field 4: round of the request answered; 0 = absent */
};

struct yggr_msg_snapshot_request {
    uint64_t leader_id;            /* must equal msg.from */
    struct yggr_log_id last;       /* last_included, index >= 1 */
    uint64_t offset;
    uint64_t leader_commit;
    bool done;                     /* this chunk ends the snapshot */
    /* Chunk bytes. In SEND actions `data` is NULL: the host reads `len` bytes at `offset`
     * from its snapshot (last.index, last.term) and fills data/buf before encoding (drop the
     * message if that snapshot is gone). In RECEIVE events data/buf point at the bytes.
     * The host sends EXACTLY `len` bytes (it reads until it has them). If its read comes
     * back short it either drops the message or sends the prefix it got with `len`
     * reduced AND `done` cleared; never a shortened chunk with `done` set: the wire has no
     * total size, so the follower would install the truncated snapshot as complete. The
     * engine resends what the follower does not acknowledge. */
    const uint8_t *data;
    struct yggr_buf *buf;
    uint32_t len;
    /* The configuration as of `last` (full: voters and learners, leader included). */
    const struct yggr_membership *config;
    uint64_t round;                /* ext field 10: heartbeat round; 0 = absent */
};

struct yggr_msg_snapshot_response {
    struct yggr_log_id last;       /* the snapshot the reply refers to */
    uint64_t next_offset;          /* bytes held contiguously (meaningful when !done) */
    bool done;
    uint64_t round;                /* ext field 5 */
};

struct yggr_msg_timeout_now {
    uint64_t leader_id;            /* must equal msg.from */
};

struct yggr_msg {
    enum yggr_msg_type type;
    uint64_t from;                 /* sender (authenticated by the transport) */
    uint64_t to;                   /* receiver */
    uint64_t term;
    union {
        struct yggr_msg_vote_request vote_request;     /* VOTE_REQUEST, PRE_VOTE_REQUEST */
        struct yggr_msg_vote_response vote_response;   /* VOTE_RESPONSE, PRE_VOTE_RESPONSE */
        struct yggr_msg_append_request append;
        struct yggr_msg_append_response append_response;
        struct yggr_msg_snapshot_request snapshot;
        struct yggr_msg_snapshot_response snapshot_response;
        struct yggr_msg_timeout_now timeout_now;
    } as;
};

/* ---------------------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------------------- */

enum yggr_event_type {
    YGGR_EVENT_TICK = 1,              /* one unit of logical time */
    YGGR_EVENT_RECEIVE,               /* an inbound message */
    YGGR_EVENT_PROPOSE,               /* client commands (batch of 1..n) */
    YGGR_EVENT_CHANGE,                /* membership change proposal */
    YGGR_EVENT_READ,                  /* linearizable read request */
    YGGR_EVENT_TRANSFER,              /* leadership transfer request */
    YGGR_EVENT_LOG_PERSISTED,         /* storage durably holds the log up to (index, term) */
    YGGR_EVENT_HARD_STATE_PERSISTED,  /* storage durably holds (term, vote) */
    YGGR_EVENT_SNAPSHOT_TAKEN,        /* a local snapshot is durable; compact below it */
    YGGR_EVENT_SNAPSHOT_PERSISTED,    /* an installed (received) snapshot is durable */
    YGGR_EVENT_RECOVER,               /* rebuild from durable state; must be the first event */
};

/* One run of consecutive log entries with the same term, as found on disk. */
struct yggr_term_run {
    uint64_t term;
    uint64_t first_index;
};

/* Everything durable that the engine needs after a restart. Borrowed for the step.
 *
 * Bootstrap (etcd-style): the founders' configuration is the FIRST LOG ENTRIES. When there
 * is no snapshot and the log is empty, a non-empty `base_config` makes the engine append
 * k = voter_count + learner_count CONFIG entries at indexes 1..k with TERM 0 (ADD_VOTER for
 * each voter in ascending id order, then ADD_LEARNER for each learner, no addresses). They
 * come out in this step's YGGR_ACT_APPEND (persist them like any entries) and, being
 * committed by definition, in its YGGR_ACT_APPLY. Every founder must be given the SAME
 * base_config: term-0 entries are identical on every founder by construction, which is
 * what lets any node treat them as committed. A node whose log already holds them (or any
 * entry of a real term) ignores base_config: the configuration is always replayed from
 * the log's CONFIG entries starting EMPTY (or from the snapshot's configuration). A log
 * holding only a prefix of the bootstrap entries (a torn write) is completed, also above
 * a snapshot of term 0 that covers only some of them (a host may snapshot at any applied
 * index, and a snapshot is durable before the log writes queued ahead of it).
 * A JOINER passes an empty base_config: it keeps an empty configuration, never campaigns,
 * follows the first leader that contacts it and learns the configuration from the term-0
 * entries it receives (or from a snapshot).
 *
 * Recovery commits max(snapshot index, last index of the log's term-0 prefix); every entry
 * of a real term stays uncommitted until a leader says otherwise. Committed entries that
 * are not in the cache are handed out in APPLY `from_storage`.
 *
 * With a snapshot (I, T) the stored log is used only if it starts at I + 1 or holds I with
 * term T (the install rule of YGGR_ACT_SNAPSHOT_CHUNK). Any other log (for instance one that
 * ends below I because log writes behind a durable snapshot were lost in a crash) is
 * ignored, and this step tells storage to drop it: YGGR_ACT_APPEND with truncate_from =
 * first_index and no entries (if the stored log is not empty), then YGGR_ACT_COMPACT below
 * I + 1: the log continues at I + 1. A snapshot of term 0 (it covers only bootstrap
 * entries) is a valid snapshot; when it covers only some of a founder's bootstrap entries
 * the rest are appended above it in this step (so that APPEND is contiguous from
 * truncate_from, it then carries the bootstrap entries from first_index on, the ones at
 * or below I included, which the COMPACT drops again). */
struct yggr_recovered {
    uint64_t term;
    uint64_t vote;                              /* 0 = none */
    bool has_snapshot;
    struct yggr_snapshot_meta snapshot;         /* valid when has_snapshot */
    /* The bootstrap configuration of a founder (see above; empty for a joiner), passed at
     * every recovery. Used only while the log (with a snapshot of term 0: the snapshot
     * and the log) holds fewer than all of the bootstrap entries. */
    struct yggr_membership base_config;
    /* The log on disk is [first_index, last_index] (empty when last_index < first_index).
     * first_index may be <= snapshot.last.index (trailing entries kept for catch-up);
     * without a snapshot it is 1. */
    uint64_t first_index;
    uint64_t last_index;
    const struct yggr_term_run *terms;          /* ascending, covers [first_index, last];
                                                 * the bootstrap entries are a term-0 run */
    uint32_t term_count;
    const struct yggr_entry *configs;           /* every CONFIG entry above the snapshot,
                                                 * the bootstrap entries included */
    uint32_t config_count;
    const struct yggr_entry *tail;              /* optional: the newest entries, ending at */
    uint32_t tail_count;                        /* last_index, to warm the cache */
};

struct yggr_event {
    enum yggr_event_type type;
    union {
        struct yggr_msg receive;                                   /* RECEIVE */
        struct {
            const struct yggr_entry *entries; /* COMMAND entries; index/term ignored */
            uint32_t count;
        } propose;                                                 /* PROPOSE */
        struct {
            enum yggr_change_type type;
            uint64_t node;
            /* Optional address of `node` ("host:port", no NUL, at most 256 bytes), copied
             * into the CONFIG entry's payload (ADD_VOTER / ADD_LEARNER). */
            const uint8_t *addr;
            uint32_t addr_len;
        } change;                                                  /* CHANGE */
        struct {
            uint64_t id;                      /* opaque, echoed in ready/failed */
        } read;                                                    /* READ */
        struct {
            uint64_t target;
        } transfer;                                                /* TRANSFER */
        struct yggr_log_id log_persisted;                          /* LOG_PERSISTED */
        struct {
            uint64_t term;
            uint64_t vote;
        } hard_state_persisted;                                    /* HARD_STATE_PERSISTED */
        struct {
            struct yggr_log_id last;          /* must be applied and known to the log
                                               * (term 0 for a bootstrap index) */
            uint64_t size;                    /* total snapshot bytes */
        } snapshot_taken;                                          /* SNAPSHOT_TAKEN */
        struct yggr_log_id snapshot_persisted;                     /* SNAPSHOT_PERSISTED */
        struct yggr_recovered recover;                             /* RECOVER */
    } as;
};

/* ---------------------------------------------------------------------------------------
 * Actions
 * ------------------------------------------------------------------------------------- */

enum yggr_action_flag {
    YGGR_ACT_HARD_STATE = 1u << 0,      /* persist `hard_state` */
    YGGR_ACT_APPEND = 1u << 1,          /* persist `append` */
    YGGR_ACT_SEND = 1u << 2,            /* send `send.msgs` */
    YGGR_ACT_APPLY = 1u << 3,           /* apply `apply.entries` */
    YGGR_ACT_SNAPSHOT_CHUNK = 1u << 4,  /* persist a received snapshot chunk */
    YGGR_ACT_APPLY_SNAPSHOT = 1u << 5,  /* restore the state machine from a snapshot */
    YGGR_ACT_COMPACT = 1u << 6,         /* storage may drop entries below compact_below */
    YGGR_ACT_SNAPSHOT_HINT = 1u << 7,   /* host may take a snapshot at snapshot_hint */
    YGGR_ACT_READS = 1u << 8,           /* reads ready and/or failed */
    YGGR_ACT_RESULT = 1u << 9,          /* `result` answers this step's request event */
};

enum yggr_read_status {
    YGGR_READ_READY = 1,       /* run it once the state machine applied `index` */
    YGGR_READ_NOT_LEADER,      /* retry at `leader_hint` (0 = unknown) */
    YGGR_READ_NOT_READY,       /* no leader yet / leader has not committed in its term */
    YGGR_READ_STEPPED_DOWN,    /* leadership lost while the read waited */
    YGGR_READ_BUSY,            /* too many reads queued */
};

struct yggr_read_result {
    uint64_t id;
    enum yggr_read_status status;
    uint64_t index;            /* READY: the read index (apply at least up to here) */
    uint64_t leader_hint;
};

/* Outcome of a PROPOSE, CHANGE, TRANSFER or READ event. */
struct yggr_result {
    int err;                   /* 0 or a negative enum yggr_err */
    uint64_t leader_hint;      /* on YGGR_ERR_NOT_LEADER; 0 = no leader known */
    uint64_t index;            /* PROPOSE: index of the first accepted entry; CHANGE: entry */
    uint64_t term;             /* term of the appended entries */
    uint32_t count;            /* PROPOSE: entries accepted (a prefix of the batch) */
};

struct yggr_actions {
    uint32_t flags;            /* enum yggr_action_flag bits */

    /* YGGR_ACT_HARD_STATE. */
    struct {
        uint64_t term;
        uint64_t vote;         /* 0 = none */
    } hard_state;

    /* YGGR_ACT_APPEND: delete every stored entry >= truncate_from (0 = no truncation),
     * then append `entries` (contiguous, ascending; the first one is at truncate_from when
     * truncating, else at the previous last index + 1). count may be 0 with truncation. */
    struct {
        uint64_t truncate_from;
        const struct yggr_entry *entries;
        uint32_t count;
    } append;

    /* YGGR_ACT_SEND. */
    struct {
        const struct yggr_msg *msgs;
        uint32_t count;
    } send;

    /* YGGR_ACT_APPLY: newly committed entries in index order, every type (NOOP and
     * CONFIG entries are included so the host sees every index; it applies COMMANDs). */
    struct {
        const struct yggr_entry *entries;
        uint32_t count;
        uint64_t first_index;  /* index of the first entry handed out */
        /* true: `entries` is NULL; read the `count` entries from first_index on from log
         * storage (they are durable there) and apply them. Happens after a restart, and
         * whenever committed entries were evicted from the in-memory cache (any durable
         * entry may be, applied or not). */
        bool from_storage;
    } apply;

    /* YGGR_ACT_SNAPSHOT_CHUNK: write `len` bytes at `offset` of the incoming snapshot
     * `meta.last` (a new snapshot starts at offset 0 and replaces any partial one).
     * Chunks are CONTIGUOUS: `offset` is 0 or exactly the number of bytes received so far
     * for this snapshot (the engine trims overlapping chunks and never hands out a gap).
     * `meta.size` is set on the final chunk only (`done`: size = offset + len, the total);
     * earlier chunks carry size 0, since the wire has no total size. meta.last and
     * meta.config are set on every chunk. The final chunk may have len 0. When `done`,
     * make it the node's snapshot atomically, drop every log entry <= meta.last.index,
     * and also every entry above it UNLESS the stored entry at meta.last.index has
     * meta.last.term (then keep the entries above it); report SNAPSHOT_PERSISTED.
     * data/buf point into the RECEIVE event's bytes (data is NULL when len is 0); the
     * engine holds a reference on `buf` until the next step. */
    struct {
        struct yggr_snapshot_meta meta;
        uint64_t offset;
        const uint8_t *data;
        struct yggr_buf *buf;
        uint32_t len;
        bool done;
    } snapshot_chunk;

    /* YGGR_ACT_APPLY_SNAPSHOT: restore the state machine from the (now durable) snapshot
     * before any later APPLY. */
    struct yggr_snapshot_meta apply_snapshot;

    /* YGGR_ACT_COMPACT: entries below this index are no longer needed by the engine. */
    uint64_t compact_below;

    /* YGGR_ACT_SNAPSHOT_HINT: take a snapshot at (or below) this applied index. */
    uint64_t snapshot_hint;

    /* YGGR_ACT_READS. */
    struct {
        const struct yggr_read_result *results;
        uint32_t count;
    } reads;

    /* YGGR_ACT_RESULT. */
    struct yggr_result result;

    /* Summary, always valid after a step. */
    enum yggr_role role;
    uint64_t term;
    uint64_t leader_id;        /* known leader, self when leader, 0 = unknown */
    uint64_t commit_index;
    uint64_t last_index;
    uint64_t applied_index;    /* highest index handed out in APPLY (or snapshot) */
    bool transferring;         /* leader: transfer in progress, proposals refused */
    bool removed;              /* a member told this node it is not in the configuration:
                                * it no longer campaigns (cleared if it is added again) */
};

/* ---------------------------------------------------------------------------------------
 * Metrics
 * ------------------------------------------------------------------------------------- */

struct yggr_engine_metrics {
    /* The reference's counters (REFERENCE 1.21). */
    uint64_t elections_started;
    uint64_t pre_votes_granted;
    uint64_t pre_votes_denied;
    uint64_t votes_granted;
    uint64_t votes_denied;
    uint64_t leader_elections_won;
    uint64_t higher_term_stepdowns;
    uint64_t append_entries_sent;
    uint64_t append_entries_received;
    uint64_t append_entries_rejected;
    uint64_t entries_appended;
    uint64_t entries_committed;
    uint64_t entries_applied;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
    uint64_t read_index_started;
    uint64_t reads_completed;
    uint64_t reads_failed;
    /* Ours. */
    uint64_t check_quorum_stepdowns;
    uint64_t transfers_started;
    uint64_t transfers_completed;
    uint64_t transfers_timed_out;
    uint64_t proposals_accepted;
    uint64_t proposals_refused;
    uint64_t config_changes_accepted;
    uint64_t messages_dropped;       /* failed the gate or validation */
    uint64_t append_windows_full;    /* sends held back by flow control */
    uint64_t snapshots_taken;
    /* Gauges. */
    uint64_t current_term;
    uint64_t commit_index;
    uint64_t last_applied;
    uint64_t log_len;                /* last index - snapshot index */
    uint64_t role_code;              /* 0 follower, 1 pre-candidate, 2 candidate, 3 leader */
};

enum yggr_progress_state {
    YGGR_PROGRESS_PROBE = 0,         /* one AppendEntries at a time until a match is found */
    YGGR_PROGRESS_REPLICATE = 1,     /* optimistic pipelining within the in-flight window */
    YGGR_PROGRESS_SNAPSHOT = 2,      /* streaming a snapshot */
};

struct yggr_peer_progress {
    uint64_t id;
    uint64_t match_index;
    uint64_t next_index;
    uint32_t inflight_msgs;
    uint64_t inflight_bytes;
    enum yggr_progress_state state;
    bool learner;
    bool recent_active;              /* heard from within the last election timeout */
};

/* ---------------------------------------------------------------------------------------
 * Functions
 * ------------------------------------------------------------------------------------- */

/* Allocate an engine (all memory is taken here). Returns 0 or a negative yggr_err. The
 * engine starts as a follower with an empty log and an empty configuration; feed
 * YGGR_EVENT_RECOVER first (with base_config set for a brand-new founder: it becomes the
 * bootstrap entries, see struct yggr_recovered; log_cache_entries and max_step_entries
 * must hold them). */
YGGR_API int yggr_engine_create(const struct yggr_engine_config *config,
                                struct yggr_engine **out);

/* Release every buffer reference the engine holds and free it. */
YGGR_API void yggr_engine_destroy(struct yggr_engine *engine);

/* Process one event. `actions` is overwritten; see the ownership rules at the top. */
YGGR_API void yggr_engine_step(struct yggr_engine *engine, const struct yggr_event *event,
                               struct yggr_actions *actions);

YGGR_API void yggr_engine_metrics(const struct yggr_engine *engine,
                                  struct yggr_engine_metrics *out);

/* Fill up to `max` peers (every member but self); returns how many exist. */
YGGR_API uint32_t yggr_engine_progress(const struct yggr_engine *engine,
                                       struct yggr_peer_progress *out, uint32_t max);

/* The latest configuration in the log (possibly uncommitted) and the committed one. */
YGGR_API void yggr_engine_config_latest(const struct yggr_engine *engine,
                                        struct yggr_membership *out);
YGGR_API void yggr_engine_config_committed(const struct yggr_engine *engine,
                                           struct yggr_membership *out);

/* Term of the entry at `index`, or 0 when unknown (compacted or past the end). Bootstrap
 * entries (see struct yggr_recovered) also have term 0. */
YGGR_API uint64_t yggr_engine_term_at(const struct yggr_engine *engine, uint64_t index);

/* Check the engine's internal invariants (term and commit monotonic, commit <= last index,
 * applied <= commit, log matching inside the in-memory log, config invariants). Returns 0
 * or -1 with a description in `why`. Cheap enough to call after every step in tests. */
YGGR_API int yggr_engine_check(const struct yggr_engine *engine, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* YGGR_ENGINE_H */
