/* SPDX-License-Identifier: MIT */
/* READ and SNAP_READ phases: log entries and snapshot chunks read back through the ring. */

/*
 * Design notes
 * ------------
 * READ. Consecutive READ requests form one phase (at most as many as there is completion
 * room for). Each request is resolved against the in-memory index (O(1) per entry) into
 * one byte range per segment it touches; each range is read with one pread into a fresh
 * refcounted buffer, then parsed and verified: the record must parse with the chain seed
 * the index says it was written with, carry the expected index, and its CRC must equal
 * the one recorded when it was written (the pair of the assertion made before the write).
 * Entries point into the range buffers; the completion holds one reference per buffer,
 * dropped by release() (a driver that keeps an entry retains its buf).
 *   - max_bytes bounds the payload returned (at least one entry; 0 = no bound).
 *   - first below the log's first index: YGGR_ERR_NOT_FOUND (compacted); past the end:
 *     an empty result. A read error is reported in the completion (err + why) and does
 *     not fail the storage; a verification failure is YGGR_ERR_CORRUPT.
 * SNAP_READ. One request per phase. The snapshot file is opened and its header verified
 * synchronously on a cache miss (once per snapshot sent); the chunk itself is one pread
 * through the ring. A missing snapshot is YGGR_ERR_NOT_FOUND ("drop the message").
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yggr_assert.h"

#define READ_MAX_PER_PHASE 64u

struct read_range {
    uint64_t first_index;
    uint32_t count;
    uint32_t op;                       /* index in the stage op pool */
    uint64_t offset;
    uint32_t len;
    int fd;
    struct yggr_buf *buf;
    char file[64];
};

struct disk_read_result {
    uint64_t tag;
    int err;
    char why[DISK_WHY];
    uint64_t first;
    uint32_t count;
    uint32_t range_count;
    struct read_range *ranges;
    struct yggr_entry entries[];       /* must stay last: release() finds us from it */
};

void read_result_free(struct disk_read_result *r)
{
    if (r == NULL) {
        return;
    }
    for (uint32_t i = 0; i < r->range_count; i++) {
        yggr_buf_release(r->ranges[i].buf);
    }
    free(r->ranges);
    free(r);
}

void read_release_entries(const struct yggr_entry *entries)
{
    YGGR_ASSERT(entries != NULL);
    uintptr_t base = (uintptr_t)entries - offsetof(struct disk_read_result, entries);
    read_result_free((struct disk_read_result *)base);
}

void read_fill_done(const struct disk_done *done, struct yggr_storage_done *out)
{
    const struct disk_read_result *r = done->read;
    YGGR_ASSERT(r != NULL);
    YGGR_ASSERT(done->type == YGGR_STORAGE_READ_DONE);
    out->err = r->err;
    out->entries = r->entries;
    out->count = r->count;
    if (r->err != 0) {
        snprintf(out->why, sizeof(out->why), "%s", r->why);
    }
}

/* How many entries from `first` to return: count and max_bytes bounded, >= 1. */
static uint32_t clip_count(const struct segment_log *log, uint64_t first, uint32_t count,
                           uint64_t max_bytes)
{
    YGGR_ASSERT(first >= log->first && first <= log->last);
    YGGR_ASSERT(count > 0);
    uint64_t avail = log->last - first + 1;
    uint32_t n = count < avail ? count : (uint32_t)avail;
    if (max_bytes == 0) {
        return n;
    }
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        bytes += segment_log_size(log, first + i) - FORMAT_REC_HEADER_BYTES;
        if (bytes > max_bytes && i > 0) {
            return i;
        }
    }
    return n;
}

/* Resolve one READ into ranges (one per segment touched). */
static struct disk_read_result *plan_read(struct yggr_storage *s, const struct disk_req *req)
{
    YGGR_ASSERT(req->type == YGGR_STORAGE_READ);
    YGGR_ASSERT(req->a > 0);
    const struct segment_log *log = &s->log;
    uint32_t n = 0;
    int err = 0;
    if (req->a < log->first) {
        err = YGGR_ERR_NOT_FOUND; /* compacted */
    } else if (req->a <= log->last && req->count > 0) {
        n = clip_count(log, req->a, req->count, req->b);
    }
    struct disk_read_result *r = calloc(1, sizeof(*r) + n * sizeof(r->entries[0]));
    if (r == NULL) {
        return NULL;
    }
    r->tag = req->tag;
    r->err = err;
    r->first = req->a;
    r->count = n;
    if (err != 0) {
        snprintf(r->why, sizeof(r->why), "%.160s: entries from %" PRIu64 " are compacted (log "
                 "starts at %" PRIu64 ")", s->log_dir, req->a, log->first);
    }
    if (n == 0) {
        return r;
    }
    uint32_t k_first = segment_log_find(log, req->a);
    uint32_t k_last = segment_log_find(log, req->a + n - 1);
    r->ranges = calloc(k_last - k_first + 1, sizeof(*r->ranges));
    if (r->ranges == NULL) {
        free(r);
        return NULL;
    }
    for (uint32_t k = k_first; k <= k_last; k++) {
        const struct segment *seg = &log->segs[k];
        struct read_range *rg = &r->ranges[r->range_count++];
        uint64_t lo = seg->first_index > req->a ? seg->first_index : req->a;
        uint64_t hi = seg->last_index < req->a + n - 1 ? seg->last_index : req->a + n - 1;
        rg->first_index = lo;
        rg->count = (uint32_t)(hi - lo + 1);
        rg->offset = segment_log_loc(log, lo).offset;
        rg->len = (uint32_t)(segment_log_loc(log, hi).offset + segment_log_size(log, hi) -
                             rg->offset);
        rg->fd = seg->fd;
        format_segment_name(rg->file, seg->first_index);
    }
    return r;
}

static void set_err(struct disk_read_result *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct disk_read_result *r, int err, const char *fmt, ...)
{
    if (r->err != 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    r->err = err;
}

/* Parse and verify one range's records into r->entries (checksum after read). */
static void parse_range(struct yggr_storage *s, struct disk_read_result *r,
                        const struct read_range *rg)
{
    const uint8_t *p = rg->buf->data;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < rg->count; i++) {
        uint64_t index = rg->first_index + i;
        struct segment_loc loc = segment_log_loc(&s->log, index);
        struct format_record rec;
        enum format_record_status st = format_record_parse(p + pos, rg->len - pos,
                                                           segment_log_seed(&s->log, index), &rec);
        if (st != FORMAT_RECORD_OK || rec.index != index || rec.crc != loc.crc) {
            set_err(r, YGGR_ERR_CORRUPT,
                    "%s/%s: offset %" PRIu64 ": expected the record for index %" PRIu64
                    " (crc 0x%08x), found %s (index %" PRIu64 ", crc 0x%08x)",
                    s->log_dir, rg->file, rg->offset + pos, index, loc.crc,
                    format_record_status_text(st), rec.index, rec.crc);
            return;
        }
        struct yggr_entry *e = &r->entries[index - r->first];
        *e = (struct yggr_entry){.index = rec.index, .term = rec.term, .type = rec.type,
                                 .change = rec.change, .node = rec.node, .data = rec.data,
                                 .len = rec.len, .buf = rg->buf};
        pos += rec.size;
    }
    YGGR_ASSERT(pos == rg->len);
}

static void read_finish(struct yggr_storage *s)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_READ);
    bool failed = atomic_load_explicit(&s->failed, memory_order_relaxed);
    for (uint32_t q = 0; q < s->reading_count; q++) {
        struct disk_read_result *r = s->reading_list[q];
        for (uint32_t i = 0; i < r->range_count && !failed; i++) {
            const struct read_range *rg = &r->ranges[i];
            int64_t res = s->st.ops[rg->op].io.result;
            if (res != (int64_t)rg->len) {
                set_err(r, YGGR_ERR_IO, "%s/%s: read of %u bytes at offset %" PRIu64 ": %s",
                        s->log_dir, rg->file, rg->len, rg->offset,
                        res < 0 ? strerror((int)-res) : "short read");
            } else if (r->err == 0) {
                parse_range(s, r, rg);
            }
        }
        if (r->err != 0) {
            r->count = 0;
        }
        if (failed) {
            read_result_free(r);
            continue;
        }
        struct disk_done done = {.type = YGGR_STORAGE_READ_DONE, .tag = r->tag, .err = r->err,
                                 .read = r};
        disk_push_done(s, &done);
    }
    s->req_cursor += s->reading_count;
    disk_consume(s, s->req_cursor, s->entry_cursor);
    s->reading_count = 0;
    s->phase = DISK_PHASE_IDLE;
}

/* Plan `count` reads from the cursor and their ops; false on ENOMEM (storage failed). */
static bool plan_reads(struct yggr_storage *s, uint32_t count)
{
    YGGR_ASSERT(count > 0 && count <= READ_MAX_PER_PHASE);
    YGGR_ASSERT(s->reading_count == 0);
    uint32_t ops = 0;
    for (uint32_t q = 0; q < count; q++) {
        struct disk_read_result *r = plan_read(s, &s->reqs[(s->req_cursor + q) & s->req_ring.mask]);
        if (r == NULL) {
            disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory planning a read", s->dir);
            return false;
        }
        s->reading_list[s->reading_count++] = r;
        for (uint32_t i = 0; i < r->range_count; i++) {
            r->ranges[i].buf = yggr_buf_alloc(r->ranges[i].len);
            if (r->ranges[i].buf == NULL) {
                disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory for a read", s->dir);
                return false;
            }
        }
        ops += r->range_count;
    }
    if (disk_stages_reserve(s, ops) < 0) {
        disk_fail(s, YGGR_ERR_NOMEM, "%s: out of memory for read ops", s->dir);
        return false;
    }
    return true;
}

uint32_t read_start(struct yggr_storage *s, uint64_t avail)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    uint64_t room = disk_done_room(s);
    uint32_t count = 0;
    while (count < avail && count < room && count < READ_MAX_PER_PHASE &&
           s->reqs[(s->req_cursor + count) & s->req_ring.mask].type == YGGR_STORAGE_READ) {
        count++;
    }
    if (count == 0) {
        return 0;
    }
    s->reading_count = 0;
    s->phase = DISK_PHASE_READ;
    bool ok = plan_reads(s, count);
    disk_stages_reset(s, read_finish);
    for (uint32_t q = 0; ok && q < s->reading_count; q++) {
        struct disk_read_result *r = s->reading_list[q];
        for (uint32_t i = 0; i < r->range_count; i++) {
            struct read_range *rg = &r->ranges[i];
            rg->op = s->st.op_count;
            struct disk_op *op = disk_stage_op(s, 0, rg->file);
            io_prep_read(&op->io, rg->fd, rg->buf->data, rg->len, rg->offset);
            op->nonfatal = true;
        }
    }
    if (!ok) {
        read_finish(s); /* the storage failed: frees what was planned */
        return count;
    }
    disk_stages_start(s);
    return count;
}

/* ---- SNAP_READ ------------------------------------------------------------------------------ */

static void snap_read_finish(struct yggr_storage *s)
{
    struct disk_snap_cache *c = &s->snap_cache;
    YGGR_ASSERT(s->phase == DISK_PHASE_SNAP_READ);
    struct disk_done done = {.type = YGGR_STORAGE_SNAP_READ_DONE, .tag = c->tag};
    int64_t res = s->st.op_count > 0 ? s->st.ops[0].io.result : 0;
    if (res != (int64_t)c->len) {
        done.err = YGGR_ERR_IO;
        yggr_buf_release(c->buf);
    } else {
        done.buf = c->buf;
        done.len = c->len;
    }
    c->buf = NULL;
    if (!atomic_load_explicit(&s->failed, memory_order_relaxed)) {
        disk_push_done(s, &done);
    } else {
        yggr_buf_release(done.buf);
    }
    s->req_cursor++;
    disk_consume(s, s->req_cursor, s->entry_cursor);
    s->phase = DISK_PHASE_IDLE;
}

/* Open and verify snapshot `id` into the cache; 0 or a negative yggr_err. */
static int open_cached(struct yggr_storage *s, struct yggr_log_id id)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    YGGR_ASSERT(id.index > 0 || id.term == 0);
    struct disk_snap_cache *c = &s->snap_cache;
    if (c->fd >= 0 && c->id.index == id.index && c->id.term == id.term) {
        return 0;
    }
    if (c->fd >= 0) {
        io_exec_close(s->io, c->fd);
        c->fd = -1;
    }
    struct format_snap_header h;
    int64_t fd = snapshot_open_verified(s, id, &h, false);
    if (fd < 0) {
        return (int)fd;
    }
    c->fd = (int)fd;
    c->id = id;
    c->size = h.meta.size;
    return 0;
}

static void snap_read_error(struct yggr_storage *s, uint64_t tag, int err)
{
    struct disk_done done = {.type = YGGR_STORAGE_SNAP_READ_DONE, .tag = tag, .err = err};
    disk_push_done(s, &done);
    s->req_cursor++;
    disk_consume(s, s->req_cursor, s->entry_cursor);
}

bool read_snap_start(struct yggr_storage *s)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    if (disk_done_room(s) < 1) {
        return false;
    }
    const struct disk_req *req = &s->reqs[s->req_cursor & s->req_ring.mask];
    YGGR_ASSERT(req->type == YGGR_STORAGE_SNAP_READ);
    int rc = open_cached(s, req->snap);
    struct disk_snap_cache *c = &s->snap_cache;
    if (rc == 0 && req->a > c->size) {
        rc = YGGR_ERR_INVALID;
    }
    if (rc == 0 && disk_stages_reserve(s, 1) < 0) {
        rc = YGGR_ERR_NOMEM;
    }
    uint64_t left = rc == 0 ? c->size - req->a : 0;
    uint32_t len = req->b < left ? (uint32_t)req->b : (uint32_t)left;
    c->buf = rc == 0 ? yggr_buf_alloc(len) : NULL;
    if (rc == 0 && c->buf == NULL) {
        rc = YGGR_ERR_NOMEM;
    }
    if (rc < 0) {
        snap_read_error(s, req->tag, rc);
        return true;
    }
    c->len = len;
    c->tag = req->tag;
    s->phase = DISK_PHASE_SNAP_READ;
    disk_stages_reset(s, snap_read_finish);
    if (len > 0) {
        struct disk_op *op = disk_stage_op(s, 0, "snapshot");
        io_prep_read(&op->io, c->fd, c->buf->data, len, FORMAT_SNAP_HEADER_BYTES + req->a);
        op->nonfatal = true;
    }
    disk_stages_start(s);
    return true;
}
