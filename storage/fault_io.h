/* SPDX-License-Identifier: MIT */
/* A fault-injecting io.h implementation for tests: write/fsync errors, short writes, ENOSPC
 * and power cuts that drop everything not yet synced. */
#ifndef YGGR_STORAGE_FAULT_IO_H
#define YGGR_STORAGE_FAULT_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "io.h"

/*
 * Every op runs synchronously with plain system calls (so it also works where io_uring is
 * unavailable) and completes through run() like the real thing. The injector keeps a
 * SHADOW of everything that is not durable yet:
 *   - data: for each write/fallocate/ftruncate not yet covered by an fsync/fdatasync of
 *     that file (or written with IO_DSYNC), the bytes and size it replaced;
 *   - names: each create, rename and unlink not yet covered by an fsync of its directory
 *     (unlinked and replaced files are kept as hidden hard links until then).
 * A power cut reverts all of it (newest first), keeps a prefix of the write that was in
 * flight cut at a random 512-byte file-offset boundary, and then fails every further op
 * with EIO: the state on disk is exactly what a real power loss could leave.
 *
 * Faults fire on the Nth matching op counted from when they are armed (1 = the next one);
 * `path_filter` (substring of the file path, NULL = any file) restricts what counts.
 * Thread-safe: one mutex around everything.
 */

enum fault_kind {
    FAULT_WRITE_ERROR = 0, /* the write fails with `err` (EIO, ENOSPC...), nothing written */
    FAULT_SHORT_WRITE,     /* the write stores only its first half (512-byte aligned) */
    FAULT_SYNC_ERROR,      /* the fsync/fdatasync (or a DSYNC write's sync) fails with `err` */
    FAULT_POWER_CUT,       /* power is cut during the write: torn, then everything unsynced
                              is lost and the io is dead */
    FAULT_KIND_COUNT,
};

struct fault_io_stats {
    uint64_t writes;           /* write ops executed (any file) */
    uint64_t syncs;            /* fsync/fdatasync ops and DSYNC writes */
    uint64_t faults_fired;
    uint64_t power_cuts;
    uint64_t reverted_writes;  /* data changes undone by a power cut */
    uint64_t reverted_names;   /* directory changes undone by a power cut */
    uint64_t torn_kept_bytes;  /* bytes of the in-flight write kept by the last cut */
};

struct fault_io;

/* Create an injector; `seed` drives the tear points. NULL on ENOMEM. */
struct fault_io *fault_io_create(uint64_t seed);
/* The io interface to hand to storage_disk_create_with_io() (borrowed: the fault_io must
 * outlive the storage). */
struct storage_io *fault_io_base(struct fault_io *f);
/* Arm one fault of each kind at a time; re-arming replaces it. nth = 0 disarms. */
void fault_io_arm(struct fault_io *f, enum fault_kind kind, uint64_t nth, int err,
                  const char *path_filter);
/* Cut the power now (no write in flight). */
void fault_io_power_cut(struct fault_io *f);
/* Cut the power now, treating the newest write not yet synced as the one in flight: it
 * is torn at a random 512-byte boundary (possibly nothing kept) instead of reverted
 * whole. This is yggr_disk_power_cut(). */
void fault_io_power_cut_tear_last(struct fault_io *f);
/* True once the power was cut: every op fails with EIO. */
bool fault_io_dead(struct fault_io *f);
void fault_io_get_stats(struct fault_io *f, struct fault_io_stats *out);
/* Free it (also makes pending name changes final). */
void fault_io_destroy(struct fault_io *f);

#endif /* YGGR_STORAGE_FAULT_IO_H */
