/* SPDX-License-Identifier: MIT */
/* Internal state of the disk storage actor, shared by its files (disk, batch, read,
 * snapshot, recovery, storage). Not a public header. */
#ifndef YGGR_STORAGE_DISK_H
#define YGGR_STORAGE_DISK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "io.h"
#include "segment.h"
#include "storage.h"
#include "yggr/plugin.h"

#define DISK_WHY 256
#define DISK_CACHELINE 64
#define DISK_MAX_IOV 1024             /* IOV_MAX */
#define DISK_MAX_SNAPSHOTS 64         /* snapshot files tracked (older ones get deleted) */

/* ---- Rings between the driver and the disk thread (single producer, single consumer) --- */

/* Positions only grow; slot = position & mask. `head` is published by the producer with a
 * release store and read by the consumer with an acquire load (so the slot contents are
 * visible); `tail` the other way round (so the producer never overwrites a slot the
 * consumer still reads). */
struct disk_spsc {
    _Alignas(DISK_CACHELINE) _Atomic uint64_t head;
    _Alignas(DISK_CACHELINE) _Atomic uint64_t tail;
    _Alignas(DISK_CACHELINE) uint64_t mask;
};

struct disk_chunk;                     /* SNAP_CHUNK payload, heap (snapshot.c) */

/* A queued request (copied from struct yggr_storage_req by submit()). */
struct disk_req {
    enum yggr_storage_req_type type;
    uint32_t count;                    /* APPEND: entries; READ: entries */
    uint64_t tag;
    uint64_t a;                        /* APPEND truncate_from, HARD_STATE term, READ first,
                                          COMPACT below, SNAP_READ offset */
    uint64_t b;                        /* HARD_STATE vote, READ max_bytes, SNAP_READ len */
    uint64_t entry_pos;                /* APPEND: first entry in the entry ring */
    struct yggr_log_id snap;           /* SNAP_READ */
    struct disk_chunk *chunk;          /* SNAP_CHUNK */
};

struct disk_read_result;               /* read.c */
struct disk_incoming;                  /* snapshot.c */

/* SNAP_READ: the snapshot file last opened (kept open; deleting it is then harmless),
 * and the chunk read in flight. */
struct disk_snap_cache {
    struct yggr_log_id id;
    int fd;
    uint64_t size;
    struct yggr_buf *buf;
    uint32_t len;
    uint64_t tag;
};
struct storage_sync;                   /* storage.c */
struct fault_io;                       /* fault_io.h */

/* A completion queued for the driver (expanded into struct yggr_storage_done by poll). */
struct disk_done {
    enum yggr_storage_done_type type;
    int err;
    uint64_t tag;
    struct yggr_log_id log;
    bool has_hard_state;
    uint64_t term;
    uint64_t vote;
    struct disk_read_result *read;     /* READ_DONE (owned until release) */
    struct yggr_buf *buf;              /* SNAP_READ_DONE */
    uint32_t len;
    struct yggr_log_id snapshot;       /* SNAP_INSTALLED */
};

/* ---- Operations of the current phase ------------------------------------------------- */

/* An io op plus what the actor needs to map its result (file name for errors). */
struct disk_op {
    struct io_op io;
    struct yggr_storage *s;
    const char *file;                  /* for messages; borrowed */
    int64_t expect;                    /* bytes a write/read must transfer (-1: n/a) */
    bool tolerate_enoent;              /* unlink of a file that may be gone */
    bool nonfatal;                     /* reads: the phase maps the result itself */
    bool in_use;
};

enum disk_phase {
    DISK_PHASE_IDLE = 0,
    DISK_PHASE_WRITE,                  /* batch.c: appends, hard state, compaction */
    DISK_PHASE_READ,                   /* read.c: READ requests */
    DISK_PHASE_SNAP_READ,              /* read.c: one SNAP_READ */
    DISK_PHASE_SNAP_CHUNK,             /* snapshot.c: one SNAP_CHUNK */
};

/* The ops of a phase run in stages; a stage starts when every op of the previous one
 * completed successfully (ordering without relying on kernel links). */
#define DISK_STAGES 8

struct disk_stages {
    struct disk_op *ops;               /* pool, grown between phases only */
    uint32_t op_cap;
    uint32_t op_count;
    uint32_t stage_begin[DISK_STAGES + 1];
    bool sequential[DISK_STAGES];      /* ops of the stage run one after another */
    uint32_t next_op;                  /* sequential stage: next op to submit */
    uint32_t stage;                    /* stage running */
    uint32_t pending;                  /* ops of the stage not completed yet */
    void (*finish)(struct yggr_storage *s); /* all stages done and successful */
};

/* Write batch (batch.c). */
struct disk_batch {
    uint64_t req_end;                  /* requests [req_cursor, req_end) fully covered */
    uint32_t partial;                  /* entries of request req_end laid out (split request) */
    uint64_t entry_end;                /* entry ring: consumed up to here */
    bool has_tag;
    uint64_t tag;
    bool has_hard_state;
    uint64_t term;
    uint64_t vote;
    bool rollover;                     /* the data goes to a new segment (next.ready) */
    uint64_t write_offset;
    uint64_t write_bytes;
    int write_fd;                      /* segment written (one per batch) */
    struct iovec *iov;                 /* DISK_MAX_IOV */
    uint32_t iov_count;
    bool has_data;                     /* records laid out */
    uint8_t *arena;                    /* headers and small payloads */
    uint32_t arena_used;
    uint32_t arena_run;                /* arena bytes before this are already in iov */
    uint32_t arena_cap;
    uint8_t slot[FORMAT_SLOT_BYTES];   /* hard-state slot image */
    uint32_t slot_index;
    struct iovec slot_iov;
    uint8_t *zeros;                    /* zero page source for truncation zeroing */
    char seg_path[512];                /* new segment name (rollover) */
    char (*unlink_paths)[512];         /* files to delete: truncation, compaction, snapshots */
    uint32_t unlink_cap;
    uint32_t unlink_count;
    uint32_t trunc_unlinks;            /* the first ones: segments cut by a truncation */
    uint32_t compact_unlinks;          /* then: segments compacted (the rest: snapshots) */
    bool trunc_zero;
    uint64_t zero_offset;
    uint64_t zero_end;
    int zero_fd;
    char zero_path[512];
    struct iovec zero_iov[64];         /* full 64 KiB pieces of `zeros` */
    struct iovec zero_tail_iov[64];    /* the last zero write's pieces */
};

/* Background preparation of the next segment (batch.c). */
/* The state names the next step (one op at a time, `in_flight` while it runs). */
enum disk_prep_state {
    DISK_PREP_NONE = 0,                /* open(next.prep, O_CREAT | O_EXCL) */
    DISK_PREP_ALLOCATE,                /* fallocate(segment_bytes) */
    DISK_PREP_ZERO,                    /* write zeros, prep_chunk_bytes per step */
    DISK_PREP_FLUSH,                   /* fdatasync every 8 MiB: bounded write-back bursts */
    DISK_PREP_SYNC,                    /* fsync the file (size, allocation) */
    DISK_PREP_RENAME,                  /* rename next.prep -> next.ready */
    DISK_PREP_SYNC_DIR,                /* fsync log/ */
    DISK_PREP_READY,                   /* next.ready exists, fd open */
};

struct disk_prep {
    enum disk_prep_state state;
    bool blocked;                      /* a rollover batch is renaming next.ready */
    int fd;
    uint64_t offset;                   /* zeroed so far */
    bool in_flight;
    struct disk_op op;
    struct iovec iov[16];
};

/* Snapshot files known to the storage (the apply thread adds, the disk thread deletes). */
struct disk_snaps {
    pthread_mutex_t mu;
    struct yggr_log_id ids[DISK_MAX_SNAPSHOTS]; /* ascending; the last is the current one */
    uint32_t count;
};

/* Recovery output kept alive until start() or close() (recovery.c). */
struct disk_recovered {
    struct yggr_term_run *terms;
    struct yggr_entry *configs;
    uint32_t config_count;
    uint32_t config_cap;
    struct yggr_entry *tail;
    uint32_t tail_count;
    struct yggr_buf *tail_buf;
    struct yggr_buf **config_bufs;
};

struct yggr_storage {
    /* Immutable after create. */
    const struct yggr_storage_ops *ops;
    struct storage_options opt;
    char dir[384];
    char log_dir[400];
    char meta_path[400];
    char hs_path[400];
    char ready_path[416];
    char prep_path[416];
    char partial_path[416];
    struct storage_io *io;
    bool io_owned;
    struct fault_io *fault;            /* fault_injection: the io above, else NULL */
    int wake_fd;                       /* eventfd: the disk thread's doorbell */
    /* Rings. */
    struct disk_req *reqs;
    struct disk_spsc req_ring;
    struct yggr_entry *entries;
    struct disk_spsc entry_ring;       /* head published together with req_ring.head */
    struct disk_done *dones;
    struct disk_spsc done_ring;
    /* owner: drv */
    uint64_t req_head;                 /* submitted, not yet flushed */
    uint64_t entry_head;
    bool started;
    bool recovered;
    /* Shared flags. */
    _Atomic int parked;                /* disk thread is about to block or blocked */
    _Atomic int stopping;
    _Atomic int failed;                /* sticky error state entered */
    _Atomic int exited;                /* the disk thread returned */
    yggr_wake_fn wake;
    void *wake_ctx;
    pthread_t thread;
    /* owner: disk thread (recovery before start). */
    struct segment_log log;
    int dir_fd;
    int log_dir_fd;
    int hs_fd;
    uint64_t hs_seq;                   /* sequence of the newest slot */
    uint32_t hs_slot;                  /* slot holding hs_seq */
    uint64_t term;                     /* durable hard state */
    uint64_t vote;
    uint64_t req_cursor;               /* next request to act on */
    uint32_t req_partial;              /* entries of req_cursor already written */
    uint64_t trunc_done;               /* req_cursor + 1 once its truncation was applied */
    uint64_t last_tag;                 /* tag of the last request completed */
    struct yggr_log_id base;           /* (first - 1, its term): what an empty log ends at */
    uint64_t entry_cursor;             /* next entry to lay out */
    enum disk_phase phase;
    struct disk_stages st;
    struct disk_batch batch;
    struct disk_prep prep;
    struct disk_snaps snaps;
    uint64_t rng;
    int fail_err;
    char fail_why[DISK_WHY];
    struct disk_read_result *reading_list[64]; /* READ phase: results being filled */
    uint32_t reading_count;
    struct disk_snap_cache snap_cache; /* read.c: the snapshot file SNAP_READ reads */
    struct disk_incoming *incoming;    /* snapshot.c: the incoming snapshot being written */
    struct disk_recovered rec;
    struct storage_sync *sync;         /* storage.c: the synchronous API's waiter */
};

/* disk.c */
void disk_push_done(struct yggr_storage *s, const struct disk_done *done);
uint64_t disk_done_room(struct yggr_storage *s);
struct disk_op *disk_stage_op(struct yggr_storage *s, uint32_t stage, const char *file);
/* Run the ops of `stage` strictly one after another, stopping at the first failure (an
 * ordered chain of any length: e.g. unlinks that must leave a prefix or a suffix). */
void disk_stage_sequential(struct yggr_storage *s, uint32_t stage);
void disk_stages_reset(struct yggr_storage *s, void (*finish)(struct yggr_storage *s));
int disk_stages_reserve(struct yggr_storage *s, uint32_t ops);
void disk_stages_start(struct yggr_storage *s);
void disk_fail(struct yggr_storage *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int disk_map_errno(enum io_op_type type, int64_t result, bool *retry);
bool disk_check_op(struct yggr_storage *s, struct disk_op *op, bool *retry);
uint64_t disk_random(struct yggr_storage *s);
void disk_seg_path(const struct yggr_storage *s, uint64_t first_index, char *out, size_t size);
/* Advance the request ring consumer to `req_end` and the entry ring to `entry_end`,
 * releasing every entry buf in between (the batch's entries were written). */
void disk_consume(struct yggr_storage *s, uint64_t req_end, uint64_t entry_end);

/* batch.c */
bool batch_start(struct yggr_storage *s, uint64_t req_avail);
void batch_prep_step(struct yggr_storage *s);
bool batch_prep_busy(const struct yggr_storage *s);
int batch_add_unlink(struct yggr_storage *s, const char *path);
/* Unlink ops for batch.unlink_paths[from, to) in `stage`; `ordered`: one after another. */
void batch_add_unlinks(struct yggr_storage *s, uint32_t stage, uint32_t from, uint32_t to,
                       bool ordered);
/* Does the log hold (index, term)? The entry the log starts after counts (its term is
 * known from the snapshot or the compaction that removed it), and so do compacted
 * (committed) entries below it. The install rule of engine.h uses this. */
bool batch_log_matches(const struct yggr_storage *s, struct yggr_log_id id);
int batch_drop_segment(struct yggr_storage *s, uint32_t k);

/* read.c */
uint32_t read_start(struct yggr_storage *s, uint64_t req_avail);
bool read_snap_start(struct yggr_storage *s);
void read_result_free(struct disk_read_result *r);
/* Free the READ_DONE result whose entries array is `entries`. */
void read_release_entries(const struct yggr_entry *entries);
void read_fill_done(const struct disk_done *done, struct yggr_storage_done *out);

/* snapshot.c: the apply thread's ops of the vtable, then the disk thread's side. */
int snapshot_begin(struct yggr_storage *s, struct yggr_storage_snapshot_writer **w);
int snapshot_write(struct yggr_storage_snapshot_writer *w, const void *data, size_t len);
int snapshot_commit(struct yggr_storage_snapshot_writer *w, const struct yggr_snapshot_meta *meta,
                    char *why, size_t why_size);
void snapshot_abort(struct yggr_storage_snapshot_writer *w);
/* Open snapshot `last` read-only with a verified header (see snapshot.c); fd or -yggr_err. */
int64_t snapshot_open_verified(struct yggr_storage *s, struct yggr_log_id last,
                               struct format_snap_header *h, bool check_size);
int snapshot_open(struct yggr_storage *s, struct yggr_log_id last,
                  struct yggr_storage_snapshot_reader **r, struct yggr_snapshot_meta *meta);
long snapshot_read(struct yggr_storage_snapshot_reader *r, void *data, size_t len);
void snapshot_close(struct yggr_storage_snapshot_reader *r);
int snapshot_registry_init(struct disk_snaps *snaps);
void snapshot_registry_deinit(struct disk_snaps *snaps);
void snapshot_registry_add(struct disk_snaps *snaps, struct yggr_log_id id);
bool snapshot_registry_current(struct disk_snaps *snaps, struct yggr_log_id *id);
/* Pop up to max ids older than the current snapshot into out; returns how many. */
uint32_t snapshot_registry_take_old(struct disk_snaps *snaps, struct yggr_log_id *out,
                                    uint32_t max);
bool snapshot_chunk_start(struct yggr_storage *s);
void snapshot_chunk_free(struct disk_chunk *chunk);
int snapshot_chunk_copy(const struct yggr_storage_req *req, struct disk_chunk **out);
void snapshot_close_incoming(struct yggr_storage *s);
void snapshot_path(const struct yggr_storage *s, struct yggr_log_id id, char *out,
                   size_t size);

/* storage.c */
void storage_sync_free(struct yggr_storage *s);

/* recovery.c */
int recovery_bootstrap(struct yggr_storage *s, const struct yggr_storage_meta *meta, char *why,
                       size_t why_size);
int recovery_run(struct yggr_storage *s, struct yggr_storage_state *out, char *why,
                 size_t why_size);
void recovery_free(struct yggr_storage *s);

#endif /* YGGR_STORAGE_DISK_H */
