/* SPDX-License-Identifier: MIT */
/* The segmented log: lifecycle, invariants, in-memory index and the recovery scanner. */

/*
 * Design notes (the log on disk, in the manner of SQLite's pager.c)
 * ==================================================================
 *
 * Files. log/<first-index, 20 digits>.seg, each preallocated to segment_bytes and filled
 * with zeros before it is used, starting with a 64-byte header {magic, version, first
 * index, random salt, previous segment's last chain value, CRC}, then records
 * [u32 len][u32 crc][u64 index][u64 term][u8 type][body] packed back to back, then zeros.
 * Two more names live in log/: next.prep (a segment being zeroed) and next.ready (a fully
 * zeroed, synced segment waiting to become the next one).
 *
 * Lifecycle of a segment file (function that makes each transition in brackets):
 *
 *      (none) --[prep_step: open O_EXCL, fallocate]--> next.prep
 *      next.prep --[prep_step: write zeros, 1 MiB per step; then fsync]--> (zeroed)
 *      (zeroed) --[prep_step: rename, fsync log/]--> next.ready
 *      next.ready --[batch_build: header + first records; fdatasync;
 *                   rename to <F>.seg; fsync log/]--> ACTIVE
 *      ACTIVE --[batch_build: the next record does not fit; next.ready is taken]--> SEALED
 *      ACTIVE/SEALED --[batch truncation: segment_log_plan_truncate, cut lands inside]-->
 *                      ACTIVE (records past the cut zeroed and synced first)
 *      ACTIVE/SEALED --[batch truncation, whole segment past the cut]--> DELETED
 *      SEALED --[COMPACT: segment_log_compactable]--> DELETED
 *      any --[snapshot install whose boundary does not match: segment_log_reset]--> DELETED
 *
 * Deletions that change what the log says (truncation, snapshot wipe) unlink newest
 * first and fsync log/ BEFORE anything new is written, so a crash leaves either the old
 * log or a prefix of it, never a log with a hole or a stale tail.
 *
 * Invariants (checked by segment_log_check() in tests, asserted at the edges):
 *   1. Segments are contiguous: segs[k+1].first_index == segs[k].last_index + 1, and the
 *      log holds exactly [first, last].
 *   2. Every segment in memory holds at least one record; its records are contiguous by
 *      index, packed from offset 64, and chained: record i's CRC is seeded with record
 *      i-1's, the first with the header CRC.
 *   3. Cross-segment chain: segs[k+1]'s header carries segs[k].last_crc (a stale segment
 *      that survived a deleted predecessor could never match a rewritten one).
 *   4. Every byte past a segment's `end` is zero on disk once the batch that set `end` is
 *      durable: segments are pre-zeroed, and a truncation zeroes the cut region durably
 *      before records are written there again. Hence on disk "end of data" is zeros, and
 *      anything non-zero there is the torn remainder of an unacknowledged write.
 *   5. A <F>.seg name exists only for a segment whose first batch is durable (the rename
 *      comes after its fdatasync). next.prep is always a temp file; next.ready is all
 *      zeros.
 *   6. Term runs are ascending, start at `first`, and cover [first, last]; terms never
 *      decrease along the log.
 *   7. Record offsets inside a segment strictly increase; every offset fits in 32 bits
 *      (segment_bytes <= 4 GiB).
 *   8. Only the disk thread (after recovery, which runs before it starts) touches this
 *      structure.
 *
 * Recovery's reading of a segment (segment_scan):
 *   - sealed segment (not the last): its records must run exactly from its first index to
 *     the next segment's first index - 1; any bad record before that is corruption;
 *   - last segment: records run until the first bad one at offset X. That is a torn write
 *     (the unacknowledged tail of the last batch) when nothing valid follows it: the bytes
 *     from X to the last non-zero byte are reported (garbage_end) and zeroed by recovery.
 *     If the record after X is valid -- its CRC chains from the damaged record's stored
 *     CRC or from the CRC the damaged record should have had, and its index is the next
 *     one -- the damage is corruption of acknowledged data and recovery refuses to start.
 *   - Limitations, stated plainly: damage to the very LAST record of the log, or to several
 *     consecutive records at the end, is indistinguishable from a torn write and is
 *     truncated; and a torn write whose sectors persisted out of order (a hole followed by
 *     intact records of the same unacknowledged batch) is refused as corruption (a false
 *     alarm, never a loss). Detecting either needs redundancy the format does not have.
 *
 * The sticky error state lives in the actor (disk.c): after any failed write, sync,
 * rename or unlink the storage reports FAILED once, never reports anything durable again
 * and drops every further request; this structure is then only freed.
 */
#include "segment.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yggr_assert.h"

#define INITIAL_SEGS 16u
#define INITIAL_LOCS 1024u
#define INITIAL_RUNS 64u

int segment_log_init(struct segment_log *log, uint64_t segment_bytes, uint64_t first_index)
{
    YGGR_ASSERT(log != NULL);
    YGGR_ASSERT(first_index > 0);
    YGGR_ASSERT(segment_bytes <= UINT32_MAX);
    memset(log, 0, sizeof(*log));
    log->segment_bytes = segment_bytes;
    log->segs = calloc(INITIAL_SEGS, sizeof(*log->segs));
    log->locs = calloc(INITIAL_LOCS, sizeof(*log->locs));
    log->runs = calloc(INITIAL_RUNS, sizeof(*log->runs));
    if (log->segs == NULL || log->locs == NULL || log->runs == NULL) {
        segment_log_deinit(log);
        return -ENOMEM;
    }
    log->seg_cap = INITIAL_SEGS;
    log->loc_mask = INITIAL_LOCS - 1;
    log->run_cap = INITIAL_RUNS;
    log->first = first_index;
    log->last = first_index - 1;
    return 0;
}

void segment_log_deinit(struct segment_log *log)
{
    YGGR_ASSERT(log != NULL);
    free(log->segs);
    free(log->locs);
    free(log->runs);
    log->segs = NULL;
    log->locs = NULL;
    log->runs = NULL;
    log->seg_count = 0;
}

bool segment_log_empty(const struct segment_log *log)
{
    YGGR_ASSERT(log->last + 1 >= log->first);
    YGGR_ASSERT((log->seg_count == 0) == (log->last < log->first));
    return log->last < log->first;
}

struct segment *segment_log_active(struct segment_log *log)
{
    YGGR_ASSERT(log != NULL);
    return log->seg_count > 0 ? &log->segs[log->seg_count - 1] : NULL;
}

int segment_log_add(struct segment_log *log, const struct segment *seg)
{
    YGGR_ASSERT(seg->first_index == log->last + 1);
    YGGR_ASSERT(seg->last_index == seg->first_index - 1 && seg->end == FORMAT_SEG_HEADER_BYTES);
    if (log->seg_count == log->seg_cap) {
        struct segment *grown = realloc(log->segs, 2 * log->seg_cap * sizeof(*grown));
        if (grown == NULL) {
            return -ENOMEM;
        }
        log->segs = grown;
        log->seg_cap *= 2;
    }
    log->segs[log->seg_count++] = *seg;
    return 0;
}

/* Double the location ring, keeping entry order (amortised: never per entry). */
static int grow_locs(struct segment_log *log)
{
    YGGR_ASSERT(log->last + 1 - log->first == log->loc_mask + 1);
    uint64_t cap = log->loc_mask + 1;
    struct segment_loc *grown = calloc(2 * cap, sizeof(*grown));
    if (grown == NULL) {
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < cap; i++) {
        grown[i] = log->locs[(log->loc_head + i) & log->loc_mask];
    }
    free(log->locs);
    log->locs = grown;
    log->loc_head = 0;
    log->loc_mask = 2 * cap - 1;
    return 0;
}

static int push_run(struct segment_log *log, uint64_t term, uint64_t index)
{
    if (log->run_count > 0 && log->runs[log->run_count - 1].term == term) {
        return 0;
    }
    YGGR_ASSERT(log->run_count == 0 || log->runs[log->run_count - 1].term < term);
    if (log->run_count == log->run_cap) {
        struct yggr_term_run *grown = realloc(log->runs, 2 * log->run_cap * sizeof(*grown));
        if (grown == NULL) {
            return -ENOMEM;
        }
        log->runs = grown;
        log->run_cap *= 2;
    }
    log->runs[log->run_count++] = (struct yggr_term_run){.term = term, .first_index = index};
    return 0;
}

int segment_log_push(struct segment_log *log, uint64_t index, uint64_t term, uint32_t offset,
                     uint32_t size, uint32_t crc)
{
    struct segment *seg = segment_log_active(log);
    YGGR_ASSERT(seg != NULL && index == log->last + 1);
    YGGR_ASSERT(offset == seg->end && seg->end + size <= seg->size);
    YGGR_ASSERT(seg->size <= UINT32_MAX);
    if (log->last + 1 - log->first == log->loc_mask + 1) {
        int rc = grow_locs(log);
        if (rc < 0) {
            return rc;
        }
    }
    int rc = push_run(log, term, index);
    if (rc < 0) {
        return rc;
    }
    log->locs[(log->loc_head + (index - log->first)) & log->loc_mask] =
        (struct segment_loc){.offset = offset, .crc = crc};
    log->last = index;
    seg->last_index = index;
    seg->end = offset + (uint64_t)size;
    seg->last_crc = crc;
    return 0;
}

uint32_t segment_log_find(const struct segment_log *log, uint64_t index)
{
    YGGR_ASSERT(index >= log->first && index <= log->last);
    uint32_t lo = 0;
    uint32_t hi = log->seg_count; /* segs[lo].first <= index < segs[hi].first */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid].first_index <= index) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    YGGR_ASSERT(log->segs[lo].first_index <= index && index <= log->segs[lo].last_index);
    return lo;
}

struct segment_loc segment_log_loc(const struct segment_log *log, uint64_t index)
{
    YGGR_ASSERT(index >= log->first && index <= log->last);
    return log->locs[(log->loc_head + (index - log->first)) & log->loc_mask];
}

uint32_t segment_log_size(const struct segment_log *log, uint64_t index)
{
    const struct segment *seg = &log->segs[segment_log_find(log, index)];
    uint64_t start = segment_log_loc(log, index).offset;
    uint64_t stop = index == seg->last_index ? seg->end : segment_log_loc(log, index + 1).offset;
    YGGR_ASSERT(stop > start);
    return (uint32_t)(stop - start);
}

uint32_t segment_log_seed(const struct segment_log *log, uint64_t index)
{
    const struct segment *seg = &log->segs[segment_log_find(log, index)];
    return index == seg->first_index ? seg->seed : segment_log_loc(log, index - 1).crc;
}

uint64_t segment_log_term(const struct segment_log *log, uint64_t index)
{
    if (index < log->first || index > log->last) {
        return 0;
    }
    YGGR_ASSERT(log->run_count > 0 && log->runs[0].first_index <= index);
    uint32_t lo = 0;
    uint32_t hi = log->run_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log->runs[mid].first_index <= index) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return log->runs[lo].term;
}

void segment_log_plan_truncate(const struct segment_log *log, uint64_t from,
                               struct segment_cut *cut)
{
    YGGR_ASSERT(from >= log->first);
    YGGR_ASSERT(from <= log->last + 1);
    memset(cut, 0, sizeof(*cut));
    cut->from = from;
    cut->keep_segs = log->seg_count;
    if (from > log->last) {
        return;
    }
    uint32_t k = segment_log_find(log, from);
    if (from == log->segs[k].first_index) {
        cut->keep_segs = k;
        return;
    }
    cut->keep_segs = k + 1;
    cut->zero = true;
    cut->zero_offset = segment_log_loc(log, from).offset;
    cut->zero_end = log->segs[k].end;
    YGGR_ASSERT(cut->zero_offset < cut->zero_end);
}

void segment_log_apply_truncate(struct segment_log *log, const struct segment_cut *cut)
{
    YGGR_ASSERT(cut->keep_segs <= log->seg_count);
    YGGR_ASSERT(cut->from >= log->first);
    if (cut->from > log->last) {
        return;
    }
    log->seg_count = cut->keep_segs;
    if (cut->zero) {
        struct segment *seg = &log->segs[cut->keep_segs - 1];
        seg->end = cut->zero_offset;
        seg->last_index = cut->from - 1;
        seg->last_crc = segment_log_loc(log, cut->from - 1).crc;
        YGGR_ASSERT(seg->last_index >= seg->first_index);
    }
    log->last = cut->from - 1;
    while (log->run_count > 0 && log->runs[log->run_count - 1].first_index >= cut->from) {
        log->run_count--;
    }
    if (log->seg_count == 0) {
        log->run_count = 0;
    }
    YGGR_ASSERT(log->seg_count == 0 || log->segs[log->seg_count - 1].last_index == log->last);
}

uint32_t segment_log_compactable(const struct segment_log *log, uint64_t below)
{
    YGGR_ASSERT(log != NULL);
    uint32_t n = 0;
    while (n + 1 < log->seg_count && log->segs[n + 1].first_index <= below) {
        n++;
    }
    YGGR_ASSERT(n == 0 || n < log->seg_count);
    return n;
}

void segment_log_drop_head(struct segment_log *log, uint32_t n)
{
    YGGR_ASSERT(n < log->seg_count || (n == 0 && log->seg_count == 0));
    if (n == 0) {
        return;
    }
    uint64_t new_first = log->segs[n].first_index;
    YGGR_ASSERT(new_first > log->first && new_first <= log->last);
    log->loc_head = (log->loc_head + (new_first - log->first)) & log->loc_mask;
    log->first = new_first;
    memmove(log->segs, log->segs + n, (log->seg_count - n) * sizeof(*log->segs));
    log->seg_count -= n;
    uint32_t drop = 0;
    while (drop + 1 < log->run_count && log->runs[drop + 1].first_index <= new_first) {
        drop++;
    }
    memmove(log->runs, log->runs + drop, (log->run_count - drop) * sizeof(*log->runs));
    log->run_count -= drop;
    log->runs[0].first_index = new_first;
}

void segment_log_reset(struct segment_log *log, uint64_t first)
{
    YGGR_ASSERT(log != NULL);
    YGGR_ASSERT(first > 0);
    log->seg_count = 0;
    log->run_count = 0;
    log->loc_head = 0;
    log->first = first;
    log->last = first - 1;
}

static bool check_fail(char *why, size_t why_size, const char *what, uint64_t a, uint64_t b)
{
    snprintf(why, why_size, "%s (%" PRIu64 " vs %" PRIu64 ")", what, a, b);
    return false;
}

bool segment_log_check(const struct segment_log *log, char *why, size_t why_size)
{
    YGGR_ASSERT(log != NULL);
    YGGR_ASSERT(why != NULL && why_size > 0);
    uint64_t next = log->first;
    for (uint32_t k = 0; k < log->seg_count; k++) {
        const struct segment *s = &log->segs[k];
        if (s->first_index != next || s->last_index < s->first_index) {
            return check_fail(why, why_size, "segments not contiguous", s->first_index, next);
        }
        uint64_t prev_off = 0;
        for (uint64_t i = s->first_index; i <= s->last_index; i++) {
            uint64_t off = segment_log_loc(log, i).offset;
            bool first_ok = i != s->first_index || off == FORMAT_SEG_HEADER_BYTES;
            if (!first_ok || (i != s->first_index && off <= prev_off) || off >= s->end) {
                return check_fail(why, why_size, "record offsets out of order", i, off);
            }
            prev_off = off;
        }
        next = s->last_index + 1;
    }
    if (next != log->last + 1) {
        return check_fail(why, why_size, "segments do not end at the last index", next,
                          log->last + 1);
    }
    for (uint32_t r = 0; r < log->run_count; r++) {
        bool ordered = r == 0 || (log->runs[r].term > log->runs[r - 1].term &&
                                  log->runs[r].first_index > log->runs[r - 1].first_index);
        if (!ordered || (r == 0 && log->runs[r].first_index != log->first)) {
            return check_fail(why, why_size, "term runs out of order", r, log->runs[r].term);
        }
    }
    if ((log->run_count == 0) != segment_log_empty(log)) {
        return check_fail(why, why_size, "term runs vs empty log", log->run_count, log->last);
    }
    return true;
}

/* ---- Scanner -------------------------------------------------------------------------- */

static uint64_t last_nonzero_end(const uint8_t *buf, size_t from, size_t len)
{
    size_t end = len;
    while (end > from && buf[end - 1] == 0) {
        end--;
    }
    return end;
}

/* Is there a valid record for `next_index` after the damaged one at `bad`, chained from
 * the damaged record's stored CRC or from the CRC it should have had? */
static bool valid_after(const struct segment_scan *s, uint64_t bad, uint32_t seed,
                        uint64_t next_index, uint64_t *found)
{
    YGGR_ASSERT(bad < s->garbage_end);
    YGGR_ASSERT(s->garbage_end <= s->len);
    uint32_t seeds[2];
    unsigned n = 0;
    if (bad + FORMAT_REC_PREFIX_BYTES <= s->len) {
        seeds[n++] = format_get_u32(s->buf + bad + 4);
    }
    uint32_t recomputed = 0;
    if (format_record_chain(s->buf + bad, s->len - bad, seed, &recomputed)) {
        seeds[n++] = recomputed;
    }
    for (uint64_t p = bad + 1; p + FORMAT_REC_HEADER_BYTES <= s->garbage_end; p++) {
        if (format_get_u64(s->buf + p + 8) != next_index) {
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            struct format_record rec;
            if (format_record_parse(s->buf + p, s->len - p, seeds[i], &rec) ==
                FORMAT_RECORD_OK) {
                *found = p;
                return true;
            }
        }
    }
    return false;
}

/* After the records of a segment: decide between "sound", "torn tail" and "corrupt". */
static int scan_finish(struct segment_scan *s, uint64_t next_index)
{
    s->garbage_end = last_nonzero_end(s->buf, s->end, s->len);
    if (s->expect_last != 0) {
        if (s->last_index != s->expect_last) {
            snprintf(s->why, sizeof(s->why),
                     "offset %" PRIu64 ": expected the record for index %" PRIu64
                     " (the segment must end at index %" PRIu64 "), found %s",
                     s->end, next_index, s->expect_last, format_record_status_text(s->stop));
            return -EILSEQ;
        }
        return 0;
    }
    if (s->stop == FORMAT_RECORD_BAD_TYPE || s->stop == FORMAT_RECORD_BAD_CONFIG) {
        snprintf(s->why, sizeof(s->why),
                 "offset %" PRIu64 ": record for index %" PRIu64 " has a valid crc but %s",
                 s->end, next_index, format_record_status_text(s->stop));
        return -EILSEQ;
    }
    uint64_t found = 0;
    if (s->garbage_end > s->end && valid_after(s, s->end, s->last_crc, next_index + 1, &found)) {
        snprintf(s->why, sizeof(s->why),
                 "offset %" PRIu64 ": expected the record for index %" PRIu64
                 ", found %s, but a valid record for index %" PRIu64 " follows at offset %"
                 PRIu64 " (damage inside the log, not a torn write)",
                 s->end, next_index, format_record_status_text(s->stop), next_index + 1, found);
        return -EILSEQ;
    }
    return 0;
}

int segment_scan(struct segment_scan *s, segment_record_fn fn, void *ctx)
{
    YGGR_ASSERT(s != NULL);
    YGGR_ASSERT(s->buf != NULL || s->len == 0);
    int rc = format_segment_header_decode(s->buf, s->len, &s->hdr, s->why, sizeof(s->why));
    if (rc < 0) {
        return -EILSEQ;
    }
    if (s->hdr.first_index != s->first_index) {
        snprintf(s->why, sizeof(s->why),
                 "offset 16: header says first index %" PRIu64 ", the name says %" PRIu64,
                 s->hdr.first_index, s->first_index);
        return -EILSEQ;
    }
    uint64_t off = FORMAT_SEG_HEADER_BYTES;
    uint32_t seed = s->hdr.crc;
    uint64_t next = s->first_index;
    uint64_t term = s->prev_term;
    enum format_record_status st = FORMAT_RECORD_OK;
    for (;;) {
        struct format_record rec;
        st = format_record_parse(s->buf + off, s->len - off, seed, &rec);
        if (st != FORMAT_RECORD_OK) {
            break;
        }
        if (rec.index != next || rec.term < term) {
            snprintf(s->why, sizeof(s->why),
                     "offset %" PRIu64 ": record (index %" PRIu64 ", term %" PRIu64
                     ") where index %" PRIu64 " with a term >= %" PRIu64 " was expected",
                     off, rec.index, rec.term, next, term);
            return -EILSEQ;
        }
        if (s->expect_last != 0 && rec.index > s->expect_last) {
            snprintf(s->why, sizeof(s->why),
                     "offset %" PRIu64 ": holds index %" PRIu64 " past the next segment's start",
                     off, rec.index);
            return -EILSEQ;
        }
        rc = fn != NULL ? fn(ctx, &rec, off) : 0;
        if (rc != 0) {
            return rc;
        }
        off += rec.size;
        seed = rec.crc;
        term = rec.term;
        next++;
    }
    s->end = off;
    s->last_index = next - 1;
    s->last_term = term;
    s->last_crc = seed;
    s->stop = st;
    return scan_finish(s, next);
}
