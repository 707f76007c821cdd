/* SPDX-License-Identifier: MIT */
/* Group commit: every queued APPEND / HARD_STATE / COMPACT laid out into one write per
 * batch, made durable with a linked fdatasync (or RWF_DSYNC), plus truncation, compaction
 * and the background preparation of the next segment. */

/*
 * Design notes
 * ------------
 * A batch takes every write-class request queued at the moment the previous phase ended
 * (group commit without a timer) and stops at the first of:
 *   - a request of another class (READ, SNAP_*): FIFO order is kept;
 *   - a truncating APPEND that is not the first thing in the batch (a truncation always
 *     opens a batch, so its deletions and zeroing are ordered before new data);
 *   - a record that does not fit in the active segment once the batch has data (one write
 *     per batch per segment; the next batch rolls over);
 *   - a full staging arena (batch_bytes) or IOV_MAX iovecs; an APPEND may then be split
 *     across batches (DURABLE reports the exact log id; its tag only once complete).
 * Layout: each record header (and every payload <= 4 KiB) is encoded into the arena;
 * larger payloads are referenced in place by an iovec (the entry's retained buf), so the
 * write is one pwritev. The in-memory log (segment.c) is updated as records are laid out:
 * the phase after this one sees the new state, and nothing else runs meanwhile.
 *
 * Stages (disk.c runs them in order):
 *   0  truncation: unlink the segments past the cut, newest first (sequential)
 *   1  fsync log/                                   (only after stage 0)
 *   2  truncation: zero [cut, old end) of the segment the cut lands in
 *   3  fdatasync that segment                       (FDATASYNC mode; DSYNC writes are
 *                                                   already durable)
 *   4  data: pwritev + fdatasync (linked) | pwritev RWF_DSYNC; hard-state slot likewise;
 *      unlink old snapshot files
 *   5  rollover: rename next.ready -> <first>.seg, fsync log/ (linked)
 *   6  compaction: unlink old segments, oldest first (sequential: a crash leaves a suffix)
 *   7  fsync log/ after a compaction
 * Then ONE DURABLE completion: every request up to the tag, the last durable log id, the
 * hard state written.
 *
 * Why truncation zeroes: recovery tells a torn write from corruption by looking for
 * valid data after the first bad record (segment.c). A stale record left after a cut
 * could look like that, so a cut region is zeroed and synced before anything is written
 * there again (invariant 4 of segment.c). Cost: O(bytes cut), only on truncation, which
 * only happens when a leader's uncommitted suffix is replaced. Finding the cut is O(1)
 * (the index -> offset table).
 *
 * Preparation of the next segment runs in the background, one op at a time, between and
 * alongside batches (it touches only next.prep): open O_EXCL, fallocate, write zeros in
 * prep_chunk_bytes steps (1 MiB, buffered), an fdatasync every 8 MiB (bounds the
 * write-back burst a single final flush of 64 MiB caused: p99 ~200 ms -> ~120 ms under
 * load), one fsync, rename to next.ready, fsync log/. A rollover takes next.ready; the
 * preparation of the following one waits until that batch's rename is done. Zeroing
 * steps with RWF_DSYNC (256 KiB each) were measured first: they could not keep up with a
 * 150 MB/s log (rollover stalled, p99 0.75 s); buffered steps + one fsync did.
 *
 * Measurements on this machine (virtio disk, ext4, 2 vCPU; tools/bench-storage and a
 * probe; noisy because the machine is shared, medians of several runs):
 *   - writing into a pre-zeroed, synced extent + fdatasync: 4 KiB ~ 90-140 us;
 *     extending the file instead: ~ 160-260 us; into fallocated (unwritten) extents:
 *     ~ 170-250 us (the unwritten->written conversion is a journal commit). Hence
 *     pre-zeroing (fallocate alone does not help).
 *   - pwritev + linked fdatasync vs pwritev with RWF_DSYNC: equal within noise at every
 *     size from 64 B to 1 MiB (e.g. 4 KiB: 92-138 us vs 114-157 us; 64 KiB: 157 vs
 *     139-169 us). Default: the linked fdatasync, because a failed fsync is then its own
 *     completion with its own errno (nothing is inferred from a write's result), and a
 *     batch's writes to several files share nothing; STORAGE_SYNC_DSYNC remains
 *     selectable (YGGR_DISK_SYNC=dsync) and is covered by the test suite.
 *   - raw O_DSYNC 4 KiB writes reach ~7500/s whatever the queue depth (1, 8, 64): the
 *     flushes serialise, so group commit, not queue depth, is what buys throughput.
 *   - tools/bench-storage (2 s per case, 1024 one-entry appends in flight, 64 MiB
 *     segments; shared, loaded machine: raw O_DSYNC 4 KiB ranged 600-7500 writes/s from
 *     run to run): 64 B 0.16-1.27 M entries/s, 1 KiB 180-300 MB/s, 4 KiB 210-300 MB/s;
 *     that is 10x-600x raw O_DSYNC at the entry size, and 15-55 % of raw O_DSYNC at
 *     yggr's own batch size with 64 writes in flight. The gap is pre-zeroing (every log
 *     byte is written twice: with a 1 GiB segment prepared before the run, 4 KiB reached
 *     394 MB/s instead of 213) and one batch in flight at a time. Recycling compacted
 *     segments instead of zeroing new ones would remove the first part (not done).
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yggr_assert.h"

#define COPY_MAX 4096u                /* payloads up to this size are copied */
#define ZERO_PIECE (64u << 10)        /* size of batch.zeros */
#define ZERO_OP_BYTES (64u * ZERO_PIECE)
#define PREP_FLUSH_BYTES (8u << 20)   /* write-back bound of the zeroing */

static struct disk_req *req_at(struct yggr_storage *s, uint64_t pos)
{
    return &s->reqs[pos & s->req_ring.mask];
}

static const struct yggr_entry *entry_at(struct yggr_storage *s, uint64_t pos)
{
    return &s->entries[pos & s->entry_ring.mask];
}

static bool batch_room(const struct disk_batch *b, uint32_t arena_need)
{
    return b->arena_used + arena_need <= b->arena_cap && b->iov_count + 3 <= DISK_MAX_IOV;
}

static void iov_push(struct disk_batch *b, const void *base, size_t len)
{
    YGGR_ASSERT(b->iov_count < DISK_MAX_IOV);
    YGGR_ASSERT(len > 0);
    b->iov[b->iov_count++] = (struct iovec){.iov_base = (void *)(uintptr_t)base, .iov_len = len};
    b->write_bytes += len;
}

static void flush_arena(struct disk_batch *b)
{
    if (b->arena_used > b->arena_run) {
        iov_push(b, b->arena + b->arena_run, b->arena_used - b->arena_run);
        b->arena_run = b->arena_used;
    }
}

int batch_add_unlink(struct yggr_storage *s, const char *path)
{
    YGGR_ASSERT(path != NULL && path[0] == '/');
    struct disk_batch *b = &s->batch;
    if (b->unlink_count == b->unlink_cap) {
        uint32_t cap = b->unlink_cap == 0 ? 16 : 2 * b->unlink_cap;
        char(*grown)[512] = realloc(b->unlink_paths, cap * sizeof(*grown));
        if (grown == NULL) {
            return -ENOMEM;
        }
        b->unlink_paths = grown;
        b->unlink_cap = cap;
    }
    int n = snprintf(b->unlink_paths[b->unlink_count], 512, "%s", path);
    YGGR_ASSERT(n > 0 && n < 512);
    b->unlink_count++;
    return 0;
}

/* Forget segment k's fd (its file is about to be unlinked; no op of this batch uses it). */
int batch_drop_segment(struct yggr_storage *s, uint32_t k)
{
    char path[512];
    disk_seg_path(s, s->log.segs[k].first_index, path, sizeof(path));
    io_exec_close(s->io, s->log.segs[k].fd);
    s->log.segs[k].fd = -1;
    return batch_add_unlink(s, path);
}

/* Drop every stored entry >= from (the head request is a truncating APPEND). */
static int apply_truncation(struct yggr_storage *s, uint64_t from)
{
    struct disk_batch *b = &s->batch;
    struct segment_log *log = &s->log;
    YGGR_ASSERT(from > 0);
    YGGR_ASSERT(b->unlink_count == 0 && !b->has_data);
    if (from > log->last) {
        return 0; /* nothing stored at or past `from` */
    }
    struct segment_cut cut = {.from = from, .keep_segs = 0};
    if (from >= log->first) {
        segment_log_plan_truncate(log, from, &cut);
    }
    for (uint32_t k = log->seg_count; k-- > cut.keep_segs;) { /* newest first */
        if (batch_drop_segment(s, k) < 0) {
            return -ENOMEM;
        }
    }
    b->trunc_unlinks = b->unlink_count;
    if (cut.zero) {
        const struct segment *seg = &log->segs[cut.keep_segs - 1];
        b->trunc_zero = true;
        b->zero_offset = cut.zero_offset;
        b->zero_end = cut.zero_end;
        b->zero_fd = seg->fd;
        disk_seg_path(s, seg->first_index, b->zero_path, sizeof(b->zero_path));
    }
    if (cut.keep_segs == 0) {
        uint64_t term = from - 1 == s->base.index ? s->base.term : 0;
        segment_log_reset(log, from);
        s->base = (struct yggr_log_id){.index = from - 1, .term = term};
    } else {
        segment_log_apply_truncate(log, &cut);
    }
    return 0;
}

static int add_compact(struct yggr_storage *s, uint64_t below)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    struct disk_batch *b = &s->batch;
    struct yggr_log_id snap = {0, 0};
    snapshot_registry_current(&s->snaps, &snap);
    if (below > snap.index + 1) {
        below = snap.index + 1; /* never open a gap between the snapshot and the log */
    }
    uint32_t n = segment_log_compactable(&s->log, below);
    for (uint32_t k = 0; k < n; k++) { /* oldest first: a crash leaves a suffix */
        if (batch_drop_segment(s, k) < 0) {
            return -ENOMEM;
        }
        b->compact_unlinks++;
    }
    if (n > 0) {
        uint64_t first = s->log.segs[n].first_index;
        s->base = (struct yggr_log_id){first - 1, segment_log_term(&s->log, first - 1)};
        segment_log_drop_head(&s->log, n);
        YGGR_ASSERT(s->log.first == first);
    }
    return 0;
}

/* Queue the deletion of snapshot files older than the current one (after the segment
 * unlinks, so the unlink list stays ordered by kind). */
static int add_old_snapshots(struct yggr_storage *s)
{
    struct yggr_log_id old[DISK_MAX_SNAPSHOTS];
    uint32_t n = snapshot_registry_take_old(&s->snaps, old, DISK_MAX_SNAPSHOTS);
    for (uint32_t i = 0; i < n; i++) {
        char path[512];
        snapshot_path(s, old[i], path, sizeof(path));
        if (batch_add_unlink(s, path) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* Take next.ready as the new active segment starting at first_index. */
static struct segment *roll_over(struct yggr_storage *s, uint64_t first_index)
{
    struct disk_batch *b = &s->batch;
    YGGR_ASSERT(!b->has_data && b->arena_used == 0);
    YGGR_ASSERT(s->prep.state == DISK_PREP_READY && s->prep.fd >= 0);
    const struct segment *prev = segment_log_active(&s->log);
    struct format_segment_header hdr = {
        .first_index = first_index,
        .salt = disk_random(s),
        .has_prev = prev != NULL,
        .prev_crc = prev != NULL ? prev->last_crc : 0,
    };
    format_segment_header_encode(b->arena, &hdr);
    b->arena_used = FORMAT_SEG_HEADER_BYTES;
    struct segment seg = {
        .first_index = first_index,
        .last_index = first_index - 1,
        .end = FORMAT_SEG_HEADER_BYTES,
        .seed = hdr.crc,
        .last_crc = hdr.crc,
        .fd = s->prep.fd,
        .size = s->opt.segment_bytes,
    };
    if (segment_log_add(&s->log, &seg) < 0) {
        return NULL;
    }
    s->prep.fd = -1;
    s->prep.state = DISK_PREP_NONE;
    s->prep.blocked = true; /* no new next.ready until our rename is done */
    b->rollover = true;
    b->write_offset = 0;
    b->write_fd = seg.fd;
    disk_seg_path(s, first_index, b->seg_path, sizeof(b->seg_path));
    return segment_log_active(&s->log);
}

/* The segment the next record (`size` bytes) goes to; NULL when the batch must stop. */
static struct segment *target(struct yggr_storage *s, uint64_t index, uint32_t size)
{
    YGGR_ASSERT(index == s->log.last + 1);
    YGGR_ASSERT(size >= FORMAT_REC_HEADER_BYTES);
    struct disk_batch *b = &s->batch;
    struct segment *seg = segment_log_active(&s->log);
    if (seg != NULL && seg->end + size <= seg->size) {
        if (!b->has_data) {
            b->write_offset = seg->end;
            b->write_fd = seg->fd;
            disk_seg_path(s, seg->first_index, b->seg_path, sizeof(b->seg_path));
        }
        return seg;
    }
    if (b->has_data || s->prep.state != DISK_PREP_READY || s->prep.blocked) {
        return NULL; /* one segment per batch / next segment not ready yet */
    }
    return roll_over(s, index);
}

/* Encode one record into the batch; false when the batch is full. */
static bool lay_out(struct yggr_storage *s, const struct yggr_entry *e)
{
    struct disk_batch *b = &s->batch;
    uint32_t hdr = format_record_header_size(e);
    uint32_t size = format_record_size(e);
    uint32_t body = size - hdr;
    bool copy = body <= COPY_MAX;
    if (!batch_room(b, hdr + (copy ? body : 0))) {
        return false;
    }
    struct segment *seg = target(s, e->index, size);
    if (seg == NULL) {
        return false;
    }
    YGGR_ASSERT(e->index == s->log.last + 1); /* the driver appends contiguously */
    uint64_t offset = seg->end;
    uint8_t *h = b->arena + b->arena_used;
    uint32_t crc = 0;
    uint32_t n = format_record_encode(h, e, seg->last_crc, &crc);
    YGGR_ASSERT(n == hdr && format_get_u32(h + 4) == crc); /* checksum before write */
    b->arena_used += hdr;
    if (body > 0 && copy) {
        memcpy(b->arena + b->arena_used, e->data, body);
        b->arena_used += body;
    } else if (body > 0) {
        flush_arena(b);
        iov_push(b, e->data, body);
    }
    if (segment_log_push(&s->log, e->index, e->term, (uint32_t)offset, size, crc) < 0) {
        disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory growing the log index", s->dir);
        return false;
    }
    b->has_data = true;
    return true;
}

/* Lay out `req`'s entries from `done` on; returns how many more were laid out. */
static uint32_t lay_out_request(struct yggr_storage *s, const struct disk_req *req,
                                uint32_t done)
{
    uint32_t i = done;
    while (i < req->count && lay_out(s, entry_at(s, req->entry_pos + i))) {
        i++;
    }
    s->batch.entry_end = req->entry_pos + i;
    return i - done;
}

static void complete_request(struct yggr_storage *s, const struct disk_req *req)
{
    s->batch.has_tag = true;
    s->batch.tag = req->tag;
    s->batch.req_end++;
    s->batch.partial = 0;
}

/* Take requests into the batch; returns false when not even a part of one fits. */
static bool collect(struct yggr_storage *s, uint64_t avail)
{
    YGGR_ASSERT(avail > 0);
    YGGR_ASSERT(s->batch.req_end == s->req_cursor);
    struct disk_batch *b = &s->batch;
    uint64_t end = s->req_cursor + avail;
    bool compacted = false;
    while (b->req_end < end && !atomic_load_explicit(&s->failed, memory_order_relaxed)) {
        uint64_t r = b->req_end;
        const struct disk_req *req = req_at(s, r);
        if (req->type == YGGR_STORAGE_HARD_STATE) {
            b->has_hard_state = true;
            b->term = req->a;
            b->vote = req->b;
        } else if (req->type == YGGR_STORAGE_COMPACT) {
            if (add_compact(s, req->a) < 0) {
                disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory compacting", s->dir);
                return false;
            }
            compacted = true;
        } else if (req->type == YGGR_STORAGE_APPEND) {
            if (req->a != 0 && s->trunc_done != r + 1) {
                if (b->has_data || b->unlink_count > 0) {
                    break; /* a truncation opens a batch */
                }
                if (apply_truncation(s, req->a) < 0) {
                    disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory truncating", s->dir);
                    return false;
                }
                s->trunc_done = r + 1;
            }
            b->partial += lay_out_request(s, req, b->partial);
            if (b->partial < req->count) {
                break; /* split: the rest goes into the next batch */
            }
        } else {
            break; /* READ / SNAP_*: another phase */
        }
        complete_request(s, req);
    }
    if (compacted && add_old_snapshots(s) < 0) {
        disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory compacting", s->dir);
        return false;
    }
    return b->req_end > s->req_cursor || b->partial > s->req_partial || b->unlink_count > 0 ||
           b->trunc_zero;
}

static void add_write(struct yggr_storage *s, uint32_t stage, const char *file, int fd,
                      const struct iovec *iov, uint32_t count, uint64_t offset, uint64_t bytes)
{
    struct disk_op *w = disk_stage_op(s, stage, file);
    io_prep_writev(&w->io, fd, iov, count, offset);
    w->expect = (int64_t)bytes;
    if (s->opt.sync_mode == STORAGE_SYNC_DSYNC) {
        w->io.flags |= IO_DSYNC;
        return;
    }
    w->io.flags |= IO_LINK;
    struct disk_op *f = disk_stage_op(s, stage, file);
    io_prep_sync(&f->io, IO_FDATASYNC, fd);
    f->io.offset = offset; /* not used by the call: names the range in error messages */
}

void batch_add_unlinks(struct yggr_storage *s, uint32_t stage, uint32_t from, uint32_t to,
                       bool ordered)
{
    YGGR_ASSERT(from <= to && to <= s->batch.unlink_count);
    YGGR_ASSERT(stage < DISK_STAGES);
    if (ordered && from < to) {
        disk_stage_sequential(s, stage);
    }
    for (uint32_t i = from; i < to; i++) {
        struct disk_op *op = disk_stage_op(s, stage, s->batch.unlink_paths[i]);
        io_prep_unlink(&op->io, s->batch.unlink_paths[i]);
        op->tolerate_enoent = true;
    }
}

static void add_sync_dir(struct yggr_storage *s, uint32_t stage)
{
    struct disk_op *op = disk_stage_op(s, stage, s->log_dir);
    io_prep_sync(&op->io, IO_FSYNC, s->log_dir_fd);
}

/* Stage 2 (and 3): zero the truncated region in writes of at most 4 MiB. */
static void add_zeroing(struct yggr_storage *s)
{
    YGGR_ASSERT(s->batch.trunc_zero);
    YGGR_ASSERT(s->batch.zero_offset < s->batch.zero_end);
    struct disk_batch *b = &s->batch;
    for (uint64_t off = b->zero_offset; off < b->zero_end; off += ZERO_OP_BYTES) {
        uint64_t len = b->zero_end - off < ZERO_OP_BYTES ? b->zero_end - off : ZERO_OP_BYTES;
        bool last = off + len >= b->zero_end;
        struct iovec *iov = last ? b->zero_tail_iov : b->zero_iov;
        uint32_t n = 0;
        for (uint64_t done = 0; done < len; done += ZERO_PIECE) {
            size_t piece = len - done < ZERO_PIECE ? (size_t)(len - done) : ZERO_PIECE;
            iov[n++] = (struct iovec){.iov_base = b->zeros, .iov_len = piece};
        }
        struct disk_op *w = disk_stage_op(s, 2, b->zero_path);
        io_prep_writev(&w->io, b->zero_fd, iov, n, off);
        w->expect = (int64_t)len;
        if (s->opt.sync_mode == STORAGE_SYNC_DSYNC) {
            w->io.flags |= IO_DSYNC;
        }
    }
    if (s->opt.sync_mode == STORAGE_SYNC_FDATASYNC) {
        struct disk_op *f = disk_stage_op(s, 3, b->zero_path);
        io_prep_sync(&f->io, IO_FDATASYNC, b->zero_fd);
    }
}

static void add_hard_state(struct yggr_storage *s)
{
    struct disk_batch *b = &s->batch;
    b->slot_index = s->hs_seq == 0 ? 0 : 1 - s->hs_slot; /* the older slot */
    struct format_hard_state hs = {.seq = s->hs_seq + 1, .term = b->term, .vote = b->vote};
    format_slot_encode(b->slot, &hs);
    b->slot_iov = (struct iovec){.iov_base = b->slot, .iov_len = FORMAT_SLOT_BYTES};
    add_write(s, 4, s->hs_path, s->hs_fd, &b->slot_iov, 1,
              (uint64_t)b->slot_index * FORMAT_SLOT_BYTES, FORMAT_SLOT_BYTES);
}

static void batch_finish(struct yggr_storage *s);

static int build_ops(struct yggr_storage *s)
{
    YGGR_ASSERT(s->st.pending == 0);
    YGGR_ASSERT(s->phase == DISK_PHASE_WRITE);
    YGGR_ASSERT(!s->batch.has_data || s->batch.write_bytes > 0 || s->batch.arena_used > 0);
    struct disk_batch *b = &s->batch;
    uint32_t zero_ops = (uint32_t)((b->zero_end - b->zero_offset + ZERO_OP_BYTES - 1) /
                                   ZERO_OP_BYTES);
    int rc = disk_stages_reserve(s, b->unlink_count + zero_ops + 12);
    if (rc < 0) {
        return rc;
    }
    disk_stages_reset(s, batch_finish);
    batch_add_unlinks(s, 0, 0, b->trunc_unlinks, true);
    if (b->trunc_unlinks > 0) {
        add_sync_dir(s, 1);
    }
    if (b->trunc_zero) {
        add_zeroing(s);
    }
    if (b->has_data) {
        flush_arena(b);
        add_write(s, 4, b->rollover ? s->ready_path : b->seg_path, b->write_fd, b->iov, b->iov_count,
                  b->write_offset, b->write_bytes);
    }
    if (b->has_hard_state) {
        add_hard_state(s);
    }
    uint32_t compact_end = b->trunc_unlinks + b->compact_unlinks;
    batch_add_unlinks(s, 4, compact_end, b->unlink_count, false); /* snapshots */
    if (b->rollover) {
        struct disk_op *op = disk_stage_op(s, 5, s->ready_path);
        io_prep_rename(&op->io, s->ready_path, b->seg_path);
        op->io.flags |= IO_LINK;
        add_sync_dir(s, 5);
    }
    batch_add_unlinks(s, 6, b->trunc_unlinks, compact_end, true);
    if (b->compact_unlinks > 0) {
        add_sync_dir(s, 7);
    }
    return 0;
}

bool batch_log_matches(const struct yggr_storage *s, struct yggr_log_id id)
{
    YGGR_ASSERT(id.index > 0);
    if (id.index >= s->log.first && id.index <= s->log.last) {
        return segment_log_term(&s->log, id.index) == id.term;
    }
    if (id.index == s->base.index) {
        return s->base.term == id.term; /* the snapshot (or entry) the log starts after */
    }
    /* Below the base: compacted under one of our snapshots, hence committed, hence equal
     * to the entry any leader's snapshot has there (log matching). Past the end: no. */
    return id.index < s->base.index;
}

static struct yggr_log_id last_id(const struct yggr_storage *s)
{
    if (segment_log_empty(&s->log)) {
        YGGR_ASSERT(s->base.index == s->log.first - 1);
        return s->base;
    }
    return (struct yggr_log_id){s->log.last, segment_log_term(&s->log, s->log.last)};
}

static void batch_finish(struct yggr_storage *s)
{
    struct disk_batch *b = &s->batch;
    YGGR_ASSERT(s->phase == DISK_PHASE_WRITE);
    s->prep.blocked = false;
    disk_consume(s, b->req_end, b->entry_end);
    s->req_cursor = b->req_end;
    s->req_partial = b->partial;
    s->entry_cursor = b->entry_end;
    s->phase = DISK_PHASE_IDLE;
    if (atomic_load_explicit(&s->failed, memory_order_relaxed)) {
        return; /* abandoned: nothing of it is reported durable */
    }
    if (b->has_hard_state) {
        s->hs_seq++;
        s->hs_slot = b->slot_index;
        s->term = b->term;
        s->vote = b->vote;
    }
    if (b->has_tag) {
        s->last_tag = b->tag;
    }
    struct disk_done done = {
        .type = YGGR_STORAGE_DURABLE,
        .tag = s->last_tag,
        .log = last_id(s),
        .has_hard_state = b->has_hard_state,
        .term = s->term,
        .vote = s->vote,
    };
    disk_push_done(s, &done);
}

static void reset_batch(struct disk_batch *b, uint64_t req_cursor, uint32_t partial,
                        uint64_t entry_cursor)
{
    b->req_end = req_cursor;
    b->partial = partial;
    b->entry_end = entry_cursor;
    b->has_tag = b->has_hard_state = b->rollover = b->has_data = b->trunc_zero = false;
    b->write_offset = b->write_bytes = 0;
    b->zero_offset = b->zero_end = 0;
    b->iov_count = b->arena_used = b->arena_run = 0;
    b->unlink_count = b->trunc_unlinks = b->compact_unlinks = 0;
}

bool batch_start(struct yggr_storage *s, uint64_t avail)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    YGGR_ASSERT(avail > 0);
    if (disk_done_room(s) < 1) {
        return false; /* wait until the driver polls */
    }
    struct disk_batch *b = &s->batch;
    reset_batch(b, s->req_cursor, s->req_partial, s->entry_cursor);
    if (!collect(s, avail)) {
        return false; /* e.g. the next segment is not prepared yet */
    }
    s->phase = DISK_PHASE_WRITE;
    if (build_ops(s) < 0) {
        disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory building a batch", s->dir);
        batch_finish(s); /* abandons it */
        return true;
    }
    disk_stages_start(s);
    return true;
}

/* ---- preparation of the next segment ------------------------------------------------------ */

/* Write back the zeros every quarter segment (at most 8 MiB) instead of in one burst. */
static uint64_t prep_flush_bytes(const struct yggr_storage *s)
{
    uint64_t quarter = s->opt.segment_bytes / 4;
    uint64_t every = quarter < PREP_FLUSH_BYTES ? quarter : PREP_FLUSH_BYTES;
    every -= every % s->opt.prep_chunk_bytes;
    YGGR_ASSERT(s->opt.prep_chunk_bytes > 0);
    return every > 0 ? every : s->opt.prep_chunk_bytes;
}

static void prep_done(struct io_op *io)
{
    struct disk_op *op = io->ctx;
    struct yggr_storage *s = op->s;
    struct disk_prep *p = &s->prep;
    YGGR_ASSERT(p->in_flight);
    bool retry = false;
    if (!disk_check_op(s, op, &retry) || retry) {
        p->in_flight = retry;
        if (retry) {
            s->io->ops->submit(s->io, io);
        }
        return;
    }
    p->in_flight = false;
    switch (p->state) {
    case DISK_PREP_NONE:
        p->fd = (int)io->result;
        p->state = DISK_PREP_ALLOCATE;
        break;
    case DISK_PREP_ALLOCATE:
        p->offset = 0;
        p->state = DISK_PREP_ZERO;
        break;
    case DISK_PREP_ZERO:
        p->offset += (uint64_t)op->expect;
        p->state = p->offset >= s->opt.segment_bytes ? DISK_PREP_SYNC
                   : p->offset % prep_flush_bytes(s) == 0 ? DISK_PREP_FLUSH : DISK_PREP_ZERO;
        break;
    case DISK_PREP_FLUSH:
        p->state = DISK_PREP_ZERO;
        break;
    case DISK_PREP_SYNC:
        p->state = DISK_PREP_RENAME;
        break;
    case DISK_PREP_RENAME:
        p->state = DISK_PREP_SYNC_DIR;
        break;
    case DISK_PREP_SYNC_DIR:
        p->state = DISK_PREP_READY;
        break;
    case DISK_PREP_READY:
        YGGR_UNREACHABLE();
    }
}

static void prep_zero(struct yggr_storage *s, struct disk_op *op)
{
    struct disk_prep *p = &s->prep;
    uint64_t left = s->opt.segment_bytes - p->offset;
    uint64_t len = left < s->opt.prep_chunk_bytes ? left : s->opt.prep_chunk_bytes;
    uint32_t n = 0;
    for (uint64_t done = 0; done < len; done += ZERO_PIECE) {
        YGGR_ASSERT(n < sizeof(p->iov) / sizeof(p->iov[0]));
        size_t piece = len - done < ZERO_PIECE ? (size_t)(len - done) : ZERO_PIECE;
        p->iov[n++] = (struct iovec){.iov_base = s->batch.zeros, .iov_len = piece};
    }
    io_prep_writev(&op->io, p->fd, p->iov, n, p->offset);
    op->expect = (int64_t)len;
}

void batch_prep_step(struct yggr_storage *s)
{
    YGGR_ASSERT(s != NULL);
    struct disk_prep *p = &s->prep;
    if (p->in_flight || p->state == DISK_PREP_READY || p->blocked) {
        return;
    }
    struct disk_op *op = &p->op;
    memset(op, 0, sizeof(*op));
    op->s = s;
    op->file = s->prep_path;
    op->expect = -1;
    switch (p->state) {
    case DISK_PREP_NONE:
        io_prep_open(&op->io, s->prep_path, O_RDWR | O_CREAT | O_EXCL, 0644);
        break;
    case DISK_PREP_ALLOCATE:
        io_prep_fallocate(&op->io, p->fd, 0, s->opt.segment_bytes);
        break;
    case DISK_PREP_ZERO:
        prep_zero(s, op);
        break;
    case DISK_PREP_FLUSH:
        io_prep_sync(&op->io, IO_FDATASYNC, p->fd);
        break;
    case DISK_PREP_SYNC:
        io_prep_sync(&op->io, IO_FSYNC, p->fd);
        break;
    case DISK_PREP_RENAME:
        io_prep_rename(&op->io, s->prep_path, s->ready_path);
        break;
    case DISK_PREP_SYNC_DIR:
        io_prep_sync(&op->io, IO_FSYNC, s->log_dir_fd);
        op->file = s->log_dir;
        break;
    case DISK_PREP_READY:
        YGGR_UNREACHABLE();
    }
    op->io.done = prep_done;
    op->io.ctx = op;
    p->in_flight = true;
    s->io->ops->submit(s->io, &op->io);
}

bool batch_prep_busy(const struct yggr_storage *s)
{
    YGGR_ASSERT(s != NULL);
    return s->prep.in_flight;
}
