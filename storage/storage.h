/* SPDX-License-Identifier: MIT */
/* Internal (test and tool) entry points of the disk storage: create it over a given io
 * implementation, tune internal knobs, and drive it synchronously. */
#ifndef YGGR_STORAGE_STORAGE_H
#define YGGR_STORAGE_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "yggr/plugin.h"

/* How a batch is made durable (see batch.c's design notes for the measurements). */
enum storage_sync_mode {
    STORAGE_SYNC_FDATASYNC = 0,  /* pwritev, then fdatasync linked behind it */
    STORAGE_SYNC_DSYNC,          /* pwritev with RWF_DSYNC */
};

/* Everything struct yggr_disk_options has, plus knobs tests use. Zero fields = defaults. */
struct storage_options {
    const char *dir;
    uint64_t segment_bytes;          /* default 64 MiB; min 16 KiB; max 4 GiB - 1 */
    uint32_t queue_entries;          /* entry staging ring; default 1 << 16 */
    uint32_t queue_requests;         /* request ring; default min(queue_entries, 8192) */
    enum storage_sync_mode sync_mode;
    uint32_t tail_entries;           /* recovery's `tail`: newest entries; default 4096 */
    uint64_t tail_bytes;             /* ... and at most this much payload; default 16 MiB */
    uint32_t prep_chunk_bytes;       /* zeroing step of the next segment; default 1 MiB */
    uint32_t batch_bytes;            /* write staging arena per batch; default 4 MiB */
};

/* Fill `out` from the public options (defaults applied to zero fields). The sync mode
 * comes from YGGR_DISK_SYNC=fdatasync|dsync when set (for measurements), else the
 * default. */
void storage_options_from_public(struct storage_options *out,
                                 const struct yggr_disk_options *options);

/* Create a disk storage over `io` (borrowed: it must outlive the storage; NULL = a new
 * io_uring io owned by the storage). */
int storage_disk_create_with_io(const struct yggr_disk_options *options, struct storage_io *io,
                                const struct yggr_storage_ops **ops, struct yggr_storage **out,
                                char *why, size_t why_size);
int storage_disk_create_ex(const struct storage_options *options, struct storage_io *io,
                           const struct yggr_storage_ops **ops, struct yggr_storage **out,
                           char *why, size_t why_size);

/* ---- Synchronous API (tests, tools): submit through the same ops, then wait. ---------
 * storage_sync_start() starts the worker with an internal wake callback; the calls below
 * must then be the only users of poll(). On FAILED they return its error and copy its
 * text to `why` (may be NULL). */
int storage_sync_start(struct yggr_storage *s);
int storage_sync_append(struct yggr_storage *s, uint64_t truncate_from,
                        const struct yggr_entry *entries, uint32_t count,
                        struct yggr_log_id *durable, char *why, size_t why_size);
int storage_sync_hard_state(struct yggr_storage *s, uint64_t term, uint64_t vote, char *why,
                            size_t why_size);
int storage_sync_compact(struct yggr_storage *s, uint64_t below, char *why, size_t why_size);
/* On success *out is a READ_DONE to hand back with ops->release(). */
int storage_sync_read(struct yggr_storage *s, uint64_t first, uint32_t count,
                      uint32_t max_bytes, struct yggr_storage_done *out);
/* On success *out is a SNAP_READ_DONE to hand back with ops->release(). */
int storage_sync_snap_read(struct yggr_storage *s, struct yggr_log_id snapshot, uint64_t offset,
                           uint32_t len, struct yggr_storage_done *out);
/* Write one chunk; with `done`, wait until SNAP_INSTALLED. */
int storage_sync_snap_chunk(struct yggr_storage *s, const struct yggr_snapshot_meta *meta,
                            uint64_t offset, const void *data, uint32_t len, bool done,
                            char *why, size_t why_size);
/* Wait for the next completion of any kind (for tests driving ops->submit directly);
 * false on timeout. */
bool storage_sync_wait(struct yggr_storage *s, struct yggr_storage_done *out, int timeout_ms);

/* Test hooks: the log's in-memory invariants (segment_log_check) and its range, read on
 * the caller's thread (only while the worker is idle or not started). */
int storage_debug_check(struct yggr_storage *s, char *why, size_t why_size);
void storage_debug_range(struct yggr_storage *s, uint64_t *first, uint64_t *last,
                         uint32_t *segments);

#endif /* YGGR_STORAGE_STORAGE_H */
