/* SPDX-License-Identifier: MIT */
/* The log on disk as the disk thread sees it: segments, the index -> (segment, offset) table,
 * term runs, and the pure scanner that recovery runs over a segment's bytes. */
#ifndef YGGR_STORAGE_SEGMENT_H
#define YGGR_STORAGE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "yggr/engine.h"

/* One segment file log/<first_index>.seg. Invariant: holds at least one record. */
struct segment {
    uint64_t first_index;
    uint64_t last_index;
    uint64_t end;             /* offset just past the last record */
    uint64_t size;            /* file size: records must end at or before it */
    uint32_t seed;            /* header CRC: chain seed of the first record */
    uint32_t last_crc;        /* chain value of the last record */
    int fd;                   /* O_RDWR, owned by the storage */
};

/* Where entry `index` lives, and the chain value it was written with. */
struct segment_loc {
    uint32_t offset;
    uint32_t crc;
};

struct segment_log {
    uint64_t segment_bytes;
    uint64_t first;           /* first index held (or the next index when empty) */
    uint64_t last;            /* last index held; first - 1 when empty */
    struct segment *segs;     /* oldest first */
    uint32_t seg_count;
    uint32_t seg_cap;
    struct segment_loc *locs; /* ring: locs[(loc_head + i) & loc_mask] is entry first + i */
    uint64_t loc_head;
    uint64_t loc_mask;
    struct yggr_term_run *runs; /* ascending; covers [first, last] */
    uint32_t run_count;
    uint32_t run_cap;
};

/* Truncation of the suffix >= from, computed before any I/O (segment_log_plan_truncate). */
struct segment_cut {
    uint64_t from;
    uint32_t keep_segs;       /* segments [0, keep_segs) stay; the rest are deleted */
    bool zero;                /* zero [zero_offset, zero_end) of segs[keep_segs - 1] */
    uint64_t zero_offset;
    uint64_t zero_end;
};

int segment_log_init(struct segment_log *log, uint64_t segment_bytes, uint64_t first_index);
void segment_log_deinit(struct segment_log *log);
bool segment_log_empty(const struct segment_log *log);
/* The last segment (NULL when there is none): appends go there while they fit. */
struct segment *segment_log_active(struct segment_log *log);
/* Add a new (still empty) last segment; its first index must be last + 1. */
int segment_log_add(struct segment_log *log, const struct segment *seg);
/* Record entry `index` (= last + 1) written at `offset` of the active segment. */
int segment_log_push(struct segment_log *log, uint64_t index, uint64_t term, uint32_t offset,
                     uint32_t size, uint32_t crc);
/* Index of the segment holding `index` (first <= index <= last). */
uint32_t segment_log_find(const struct segment_log *log, uint64_t index);
struct segment_loc segment_log_loc(const struct segment_log *log, uint64_t index);
/* Bytes of the record at `index` on disk. */
uint32_t segment_log_size(const struct segment_log *log, uint64_t index);
/* The chain seed entry `index` was written with. */
uint32_t segment_log_seed(const struct segment_log *log, uint64_t index);
/* Term of entry `index`, 0 when not held. */
uint64_t segment_log_term(const struct segment_log *log, uint64_t index);
/* Plan dropping entries >= from (first <= from <= last + 1). */
void segment_log_plan_truncate(const struct segment_log *log, uint64_t from,
                               struct segment_cut *cut);
/* Apply a planned cut in memory (the caller closed the deleted segments' fds). */
void segment_log_apply_truncate(struct segment_log *log, const struct segment_cut *cut);
/* How many leading segments hold only entries < below (never the last segment). */
uint32_t segment_log_compactable(const struct segment_log *log, uint64_t below);
/* Forget the first n segments (the caller closed their fds). */
void segment_log_drop_head(struct segment_log *log, uint32_t n);
/* Forget every segment; the log restarts empty at `first` (fds closed by the caller). */
void segment_log_reset(struct segment_log *log, uint64_t first);
/* Full invariant check (O(n)); returns false and describes the first violation. */
bool segment_log_check(const struct segment_log *log, char *why, size_t why_size);

/* ---- Pure scanner (recovery, fuzzing) ------------------------------------------------ */

struct segment_scan {
    /* In. */
    const uint8_t *buf;       /* the whole file */
    size_t len;
    uint64_t first_index;     /* from the file name */
    uint64_t prev_term;       /* last term before this segment (0 = none) */
    uint64_t expect_last;     /* sealed segment: must end exactly here; 0 = last segment */
    /* Out. */
    struct format_segment_header hdr;
    uint64_t last_index;      /* first_index - 1 when no record */
    uint64_t last_term;
    uint32_t last_crc;        /* chain value of the last valid record (hdr.crc if none) */
    uint64_t end;             /* offset just past the last valid record */
    uint64_t garbage_end;     /* last non-zero byte + 1 (>= end): torn bytes to zero */
    enum format_record_status stop;  /* why the scan stopped at `end` */
    char why[256];            /* on -EILSEQ: offset, expected vs found */
};

/* Called for each valid record, in order. Non-zero stops the scan and is returned. */
typedef int (*segment_record_fn)(void *ctx, const struct format_record *rec, uint64_t offset);

/* Verify the header and every record (chain CRC, index contiguity, term monotonicity).
 * Returns 0 when the segment is sound (for the last segment: possibly with a torn tail,
 * garbage_end > end, and nothing valid after it), -EILSEQ when it must not be trusted
 * (damage in a sealed segment, valid data after damage, bad header), or fn's value. */
int segment_scan(struct segment_scan *scan, segment_record_fn fn, void *ctx);

#endif /* YGGR_STORAGE_SEGMENT_H */
