/* SPDX-License-Identifier: MIT */
/* yggr plugin API: the storage and transport interfaces the runtime's driver talks to. */
#ifndef YGGR_PLUGIN_H
#define YGGR_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/engine.h"
#include "yggr/types.h"
#include "yggr/yggr.h"

/*
 * The runtime's driver thread owns one storage and one transport through these vtables.
 * The defaults are the io_uring disk actor (storage/) and the io_uring TCP actor
 * (transport/); in-memory implementations exist for tests. Rules common to both:
 *
 *   - Every op is called from the DRIVER thread only, except where marked (apply thread).
 *   - No op blocks on I/O: requests are queued to the implementation's own thread(s) and
 *     completions are collected with poll(). When an implementation has produced something
 *     for the driver to poll, it calls the `wake` callback given at start() (from any
 *     thread; cheap; may be called spuriously).
 *   - Errors: 0 or a negative enum yggr_err. Messages are written to `why` buffers with
 *     precise detail (file and offset for storage).
 */

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*yggr_wake_fn)(void *ctx);

/* ======================================================================================
 * Storage
 * ==================================================================================== */

struct yggr_storage;

/* Written once by bootstrap(), read back by recover(). */
struct yggr_storage_meta {
    uint64_t cluster_id;
    uint64_t node_id;
    struct yggr_membership bootstrap_config;  /* empty for a node that joined */
};

/* What recover() found. All pointers stay valid until start() or close(). */
struct yggr_storage_state {
    struct yggr_storage_meta meta;
    struct yggr_recovered recovered;   /* feed to the engine as YGGR_EVENT_RECOVER */
    uint64_t torn_bytes_dropped;       /* torn tail truncated by recovery (0 = clean) */
    uint64_t temp_files_removed;
    char notes[256];                   /* human-readable recovery summary */
};

enum yggr_storage_req_type {
    YGGR_STORAGE_APPEND = 1,       /* truncate (optional) then append entries */
    YGGR_STORAGE_HARD_STATE,       /* replace (term, vote) */
    YGGR_STORAGE_READ,             /* read log entries */
    YGGR_STORAGE_SNAP_READ,        /* read a chunk of a snapshot */
    YGGR_STORAGE_SNAP_CHUNK,       /* write a chunk of an incoming snapshot */
    YGGR_STORAGE_COMPACT,          /* drop log entries below an index, old snapshots */
};

struct yggr_storage_req {
    enum yggr_storage_req_type type;
    uint64_t tag;                  /* echoed in the completion */
    union {
        struct {
            uint64_t truncate_from;          /* 0 = none; else drop stored entries >= it */
            const struct yggr_entry *entries; /* borrowed: submit copies the descriptors and */
            uint32_t count;                   /* retains each buf until written */
        } append;
        struct {
            uint64_t term;
            uint64_t vote;
        } hard_state;
        struct {
            uint64_t first;                   /* entries [first, first + count) */
            uint32_t count;
            uint32_t max_bytes;               /* stop early past this many payload bytes */
        } read;
        struct {
            struct yggr_log_id snapshot;      /* which snapshot */
            uint64_t offset;
            uint32_t len;
        } snap_read;
        struct {
            struct yggr_snapshot_meta meta;   /* the incoming snapshot */
            uint64_t offset;                  /* 0 starts (or restarts) it */
            const uint8_t *data;              /* borrowed; submit retains buf (or copies) */
            struct yggr_buf *buf;
            uint32_t len;
            bool done;                        /* last chunk: install atomically */
        } snap_chunk;
        struct {
            uint64_t below;                   /* entries < below may go (whole segments) */
        } compact;
    } as;
};

enum yggr_storage_done_type {
    YGGR_STORAGE_DURABLE = 1,      /* APPEND / HARD_STATE / COMPACT requests completed */
    YGGR_STORAGE_READ_DONE,
    YGGR_STORAGE_SNAP_READ_DONE,
    YGGR_STORAGE_SNAP_INSTALLED,   /* SNAP_CHUNK with done: the snapshot is durable */
    YGGR_STORAGE_FAILED,           /* fatal: the node must stop */
};

struct yggr_storage_done {
    enum yggr_storage_done_type type;
    uint64_t tag;                  /* of the last request this completion covers */
    int err;                       /* READ_DONE / SNAP_READ_DONE / FAILED */
    /* DURABLE: every APPEND and HARD_STATE submitted up to `tag` is durable. */
    struct yggr_log_id log;        /* last durable (index, term); index 0 = empty */
    bool has_hard_state;
    uint64_t term;
    uint64_t vote;
    /* READ_DONE: entries (payload bufs owned by the storage until release()). */
    const struct yggr_entry *entries;
    uint32_t count;
    /* SNAP_READ_DONE. */
    const uint8_t *data;
    struct yggr_buf *buf;
    uint32_t len;
    /* SNAP_INSTALLED. */
    struct yggr_log_id snapshot;
    /* FAILED: what failed, where (file and offset), and why. */
    char why[256];
};

/* Streams used on the APPLY thread for local snapshots and restores. */
struct yggr_storage_snapshot_writer;
struct yggr_storage_snapshot_reader;

struct yggr_storage_ops {
    /* Before start(): initialise an empty data directory (EXISTS if it already holds
     * state). Durable on return. */
    int (*bootstrap)(struct yggr_storage *s, const struct yggr_storage_meta *meta, char *why,
                     size_t why_size);
    /* Before start(): recover. NOT_FOUND when not bootstrapped; CORRUPT with file and
     * offset in `why` when the data cannot be trusted. */
    int (*recover)(struct yggr_storage *s, struct yggr_storage_state *out, char *why,
                   size_t why_size);
    /* Start the worker thread(s); `cpu` >= 0 pins the worker. */
    int (*start)(struct yggr_storage *s, yggr_wake_fn wake, void *wake_ctx, int cpu);
    /* Queue one request. Returns 0 or YGGR_ERR_BUSY when the queue is full (the caller
     * keeps the request and retries after polling a completion). Requests execute in
     * submission order. */
    int (*submit)(struct yggr_storage *s, const struct yggr_storage_req *req);
    /* Make queued requests visible to the worker (rings its doorbell if parked). */
    void (*flush)(struct yggr_storage *s);
    /* Next completion, or false. */
    bool (*poll)(struct yggr_storage *s, struct yggr_storage_done *out);
    /* Return a READ_DONE / SNAP_READ_DONE completion's memory. */
    void (*release)(struct yggr_storage *s, struct yggr_storage_done *done);

    /* APPLY thread: write a local snapshot covering `last`. begin() opens a private temp
     * file; commit() makes it durable and visible atomically (nothing is visible after a
     * crash before commit returns); abort() discards it. The driver then learns of it via
     * YGGR_EVENT_SNAPSHOT_TAKEN and submits COMPACT. */
    int (*snapshot_begin)(struct yggr_storage *s, struct yggr_storage_snapshot_writer **w);
    int (*snapshot_write)(struct yggr_storage_snapshot_writer *w, const void *data, size_t len);
    int (*snapshot_commit)(struct yggr_storage_snapshot_writer *w,
                           const struct yggr_snapshot_meta *meta, char *why, size_t why_size);
    void (*snapshot_abort)(struct yggr_storage_snapshot_writer *w);
    /* APPLY thread: read the snapshot `last` (the current one; meta filled in). */
    int (*snapshot_open)(struct yggr_storage *s, struct yggr_log_id last,
                         struct yggr_storage_snapshot_reader **r, struct yggr_snapshot_meta *meta);
    long (*snapshot_read)(struct yggr_storage_snapshot_reader *r, void *data, size_t len);
    void (*snapshot_close)(struct yggr_storage_snapshot_reader *r);

    /* Stop the worker after completing every submitted request; then free everything. */
    void (*close)(struct yggr_storage *s);
};

struct yggr_disk_options {
    const char *dir;
    uint64_t segment_bytes;        /* default 64 MiB */
    uint32_t queue_entries;        /* submit() capacity in entries; default 1 << 16 */
    /* TESTING ONLY (default false): run every file operation through the fault injector
     * (plain synchronous system calls that remember what is not durable yet) instead of
     * io_uring, so that yggr_disk_power_cut() can simulate a power loss. Slower. */
    bool fault_injection;
};

/* The default: the io_uring disk actor over a data directory. */
YGGR_API int yggr_disk_storage_create(const struct yggr_disk_options *options,
                                      const struct yggr_storage_ops **ops,
                                      struct yggr_storage **out, char *why, size_t why_size);

/* TESTING ONLY: cut the power of a disk storage created with `fault_injection`. Every
 * change not yet made durable (file data not covered by an fsync/fdatasync, names not
 * covered by a directory fsync) is reverted; the last write not yet synced is torn at a
 * random 512-byte boundary (possibly nothing of it kept); every later file operation fails
 * with EIO, so nothing more reaches the files (the node turns FATAL at its next I/O).
 * Returns 0 (also when already cut), or YGGR_ERR_INVALID when `s` is NULL or was created
 * without fault_injection. `s` must come from yggr_disk_storage_create() (borrowed);
 * callable from any thread. Meant to be followed by _exit(): the process is a dead
 * machine, only the files matter. */
YGGR_API int yggr_disk_power_cut(struct yggr_storage *s);

/* ======================================================================================
 * Transport
 * ==================================================================================== */

struct yggr_transport;

/* A batch of inbound messages; `msgs[i].from` is authenticated by the transport. Entry
 * payloads and snapshot data point into transport buffers: the engine retains what it
 * keeps (yggr_buf_retain), then the driver calls release(). */
struct yggr_inbound {
    const struct yggr_msg *msgs;
    uint32_t count;
};

struct yggr_transport_ops {
    /* Bind the listener and start the worker thread; `cpu` >= 0 pins it. */
    int (*start)(struct yggr_transport *t, yggr_wake_fn wake, void *wake_ctx, int cpu,
                 char *why, size_t why_size);
    /* Add or replace a peer's address ("host:port"); remove a peer (closes its links). */
    int (*set_peer)(struct yggr_transport *t, uint64_t id, const char *addr);
    int (*remove_peer)(struct yggr_transport *t, uint64_t id);
    /* Encode and queue one message for msg->to. Never blocks. When the peer's queue is
     * over its memory budget the message is dropped and counted (the engine resends);
     * queued heartbeats to a slow peer are coalesced. Returns 0, or UNKNOWN_NODE. */
    int (*send)(struct yggr_transport *t, const struct yggr_msg *msg);
    /* Hand queued messages to the worker (rings its doorbell if parked). */
    void (*flush)(struct yggr_transport *t);
    /* Next inbound batch, or false. */
    bool (*poll)(struct yggr_transport *t, struct yggr_inbound *out);
    void (*release)(struct yggr_transport *t, struct yggr_inbound *batch);
    /* Per-peer counters (connected, bytes/frames in/out, reconnects, drops, errors). */
    int (*peer_metrics)(struct yggr_transport *t, uint64_t id, struct yggr_peer_metrics *out);
    /* Stop the worker, close every socket (the listen port is free on return), free. */
    void (*close)(struct yggr_transport *t);
};

struct yggr_tcp_options {
    uint64_t node_id;
    const char *listen_addr;       /* "host:port"; outgoing links bind to the same host */
    uint32_t max_frame_bytes;      /* default 64 MiB (the reference's limit) */
    uint64_t peer_queue_bytes;     /* per-peer outbound budget; default 64 MiB */
    const uint8_t *secret;         /* NULL = unauthenticated (reference wire) */
    uint32_t secret_len;
    uint64_t cluster_id;           /* checked by the authenticated handshake */
    void (*log_fn)(void *ctx, int level, const char *msg);
    void *log_ctx;
};

YGGR_API int yggr_tcp_transport_create(const struct yggr_tcp_options *options,
                                       const struct yggr_transport_ops **ops,
                                       struct yggr_transport **out, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* YGGR_PLUGIN_H */
