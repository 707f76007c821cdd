/* SPDX-License-Identifier: MIT */
/* bootstrap() and recover(): initialise a data directory, and rebuild the storage's state
 * from it, refusing to start on anything that could be corruption of acknowledged data. */

/*
 * Design notes
 * ------------
 * Both run on the caller's thread before start(), with synchronous io (io->exec).
 *
 * bootstrap: mkdir dir and dir/log, then hardstate (slot 0 = {seq 1, term 0, vote 0})
 * and meta, each written as <name>.tmp, fsynced, renamed; then both directories fsynced.
 * meta is written last: its presence means "bootstrapped" (EXISTS on a second call; also
 * EXISTS when segments or snapshots are present without meta: never adopt them).
 *
 * recover, in order; each failure names the file, the byte offset and what was expected:
 *   1. meta: missing -> NOT_FOUND; wrong size, magic, version or CRC -> CORRUPT.
 *   2. hardstate: both slots decoded; the valid one with the highest sequence wins. One
 *      damaged slot is a torn slot write (we only ever write the older slot); no valid
 *      slot at all -> CORRUPT.
 *   3. data dir: temp files (*.tmp, snap-incoming.partial) are deleted and counted. Of the
 *      snap-<index>-<term> files the newest is verified completely (header CRC, name vs
 *      header, size, payload CRC streamed in 1 MiB reads) -> CORRUPT if it fails; older
 *      ones are deleted.
 *   4. log/ (missing -> CORRUPT): next.prep and *.tmp are deleted and counted; every
 *      <first>.seg is scanned (segment.c: segment_scan): header, name vs header, chain
 *      CRCs, index contiguity, term monotonicity, exact end of sealed segments, the
 *      cross-segment chain (header prev_crc == previous segment's last CRC), at least one
 *      record per segment. The last segment may end in a torn write: the torn bytes are
 *      zeroed and synced, and counted in torn_bytes_dropped.
 *   5. snapshot vs log (the same rule as an install, engine.h): without a snapshot the
 *      log must start at 1; with snapshot (I, T): a log starting after I + 1 is a gap ->
 *      CORRUPT; a log holding I with term T, or starting at I + 1, is kept; any other log
 *      (it ends below I, or holds I with another term: an install whose wipe was
 *      interrupted) is deleted, newest segment first, and log/ fsynced.
 *   6. next.ready is kept if it is exactly segment_bytes long and starts with zeros;
 *      otherwise a new one is prepared synchronously, so start() always has a next segment.
 *   7. Output: term runs, CONFIG entries above the snapshot (payloads copied into their
 *      own bufs), and the newest tail_entries entries (at most tail_bytes of payload) read
 *      back and re-verified into one buf. All of it lives until start() or close().
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "yggr_assert.h"

#define READ_CHUNK (1u << 20)

struct rec_ctx {
    struct yggr_storage *s;
    struct yggr_storage_state *out;
    char *why;
    size_t why_size;
    uint64_t *segs;
    uint32_t seg_count;
    uint32_t seg_cap;
    struct yggr_log_id snaps[DISK_MAX_SNAPSHOTS];
    uint32_t snap_count;
    bool has_ready;
    bool has_snap;
    struct format_snap_header snap;
    const struct format_segment_header *scan_hdr;  /* segment being scanned */
    uint32_t scan_seg;                             /* its index in the log */
    int scan_fd;
    uint64_t scan_size;
    int err;                                       /* first error inside callbacks */
};

static int fail(struct rec_ctx *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct rec_ctx *c, int err, const char *fmt, ...)
{
    YGGR_ASSERT(err < 0);
    if (c->why != NULL && c->why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

static int io_err(int64_t rc)
{
    return rc == -ENOSPC || rc == -EDQUOT ? YGGR_ERR_NOSPC : YGGR_ERR_IO;
}

/* Read a whole file into a malloc'd buffer. 0, -ENOENT, -EFBIG or -errno. */
static int read_file(struct storage_io *io, const char *path, uint8_t **buf, size_t *len,
                     uint64_t max)
{
    YGGR_ASSERT(io != NULL && path != NULL);
    YGGR_ASSERT(buf != NULL && len != NULL);
    int64_t fd = io_exec_open(io, path, O_RDONLY, 0);
    if (fd < 0) {
        return (int)fd;
    }
    int64_t size = io_exec_size(io, (int)fd);
    int rc = size < 0 ? (int)size : (uint64_t)size > max ? -EFBIG : 0;
    uint8_t *b = rc == 0 ? malloc(size > 0 ? (size_t)size : 1) : NULL;
    if (rc == 0 && b == NULL) {
        rc = -ENOMEM;
    }
    int64_t n = rc == 0 ? io_exec_pread(io, (int)fd, b, (size_t)size, 0) : 0;
    if (rc == 0 && n != size) {
        rc = n < 0 ? (int)n : -EIO;
    }
    io_exec_close(io, (int)fd);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = (size_t)size;
    return 0;
}

static int load_meta(struct rec_ctx *c)
{
    YGGR_ASSERT(c->s->meta_path[0] != '\0');
    struct yggr_storage *s = c->s;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(s->io, s->meta_path, &buf, &len, 1u << 20);
    if (rc == -ENOENT) {
        return fail(c, YGGR_ERR_NOT_FOUND, "%s: not bootstrapped (no meta file)", s->dir);
    }
    if (rc < 0) {
        return fail(c, rc == -EFBIG ? YGGR_ERR_CORRUPT : io_err(rc), "%s: cannot read: %s",
                    s->meta_path, strerror(-rc));
    }
    char why[DISK_WHY];
    rc = format_meta_decode(buf, len, &c->out->meta, why, sizeof(why));
    free(buf);
    if (rc < 0) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: %s", s->meta_path, why);
    }
    return 0;
}

static int load_hard_state(struct rec_ctx *c)
{
    YGGR_ASSERT(c->s->hs_fd < 0);
    struct yggr_storage *s = c->s;
    int64_t fd = io_exec_open(s->io, s->hs_path, O_RDWR, 0);
    if (fd < 0) {
        return fail(c, fd == -ENOENT ? YGGR_ERR_CORRUPT : io_err(fd), "%s: cannot open: %s",
                    s->hs_path, strerror((int)-fd));
    }
    s->hs_fd = (int)fd;
    uint8_t buf[FORMAT_HARDSTATE_BYTES];
    int64_t n = io_exec_pread(s->io, s->hs_fd, buf, sizeof(buf), 0);
    int64_t size = io_exec_size(s->io, s->hs_fd);
    if (n < 0 || size < 0) {
        return fail(c, YGGR_ERR_IO, "%s: read failed: %s", s->hs_path,
                    strerror((int)-(n < 0 ? n : size)));
    }
    if (size != FORMAT_HARDSTATE_BYTES) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: size %" PRId64 " bytes, expected %u", s->hs_path,
                    size, FORMAT_HARDSTATE_BYTES);
    }
    struct format_hard_state hs[2];
    char why[2][DISK_WHY] = {"", ""};
    int rc0 = format_slot_decode(buf, &hs[0], why[0], sizeof(why[0]));
    int rc1 = format_slot_decode(buf + FORMAT_SLOT_BYTES, &hs[1], why[1], sizeof(why[1]));
    if (rc0 < 0 && rc1 < 0) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: no valid slot: offset 0: %s; offset %u: %s",
                    s->hs_path, rc0 == -ENODATA ? "empty" : why[0], FORMAT_SLOT_BYTES,
                    rc1 == -ENODATA ? "empty" : why[1]);
    }
    uint32_t pick = rc0 < 0 ? 1 : rc1 < 0 ? 0 : (hs[1].seq > hs[0].seq ? 1 : 0);
    s->hs_slot = pick;
    s->hs_seq = hs[pick].seq;
    s->term = hs[pick].term;
    s->vote = hs[pick].vote;
    return 0;
}

static int on_data_name(void *arg, const char *name)
{
    struct rec_ctx *c = arg;
    struct yggr_log_id id;
    if (format_is_temp_name(name)) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", c->s->dir, name);
        int rc = io_exec_unlink(c->s->io, path);
        c->out->temp_files_removed += rc == 0 ? 1 : 0;
        if (rc < 0 && rc != -ENOENT) {
            c->err = fail(c, io_err(rc), "%s: cannot remove: %s", path, strerror(-rc));
            return 1; /* stops the listing; c->err says why */
        }
        return 0;
    }
    if (format_parse_snap_name(name, &id) && c->snap_count < DISK_MAX_SNAPSHOTS) {
        c->snaps[c->snap_count++] = id;
    }
    return 0;
}

/* Verify the snapshot file completely; 0 or CORRUPT/IO with why. */
static int verify_snapshot(struct rec_ctx *c, struct yggr_log_id id, const char *path)
{
    YGGR_ASSERT(id.index > 0);
    YGGR_ASSERT(path != NULL);
    struct yggr_storage *s = c->s;
    int64_t fd = io_exec_open(s->io, path, O_RDONLY, 0);
    if (fd < 0) {
        return fail(c, io_err(fd), "%s: cannot open: %s", path, strerror((int)-fd));
    }
    uint8_t *buf = malloc(READ_CHUNK);
    int64_t size = io_exec_size(s->io, (int)fd);
    int64_t n = buf != NULL ? io_exec_pread(s->io, (int)fd, buf, FORMAT_SNAP_HEADER_BYTES, 0) : -1;
    char why[DISK_WHY] = "";
    int rc = buf == NULL ? YGGR_ERR_NOMEM : (n < 0 || size < 0) ? YGGR_ERR_IO : 0;
    if (rc == 0 && format_snap_header_decode(buf, (size_t)n, &c->snap, why, sizeof(why)) < 0) {
        rc = fail(c, YGGR_ERR_CORRUPT, "%s: %s", path, why);
    } else if (rc == 0 && (c->snap.meta.last.index != id.index ||
                           c->snap.meta.last.term != id.term ||
                           (uint64_t)size != FORMAT_SNAP_HEADER_BYTES + c->snap.meta.size)) {
        rc = fail(c, YGGR_ERR_CORRUPT, "%s: header says index %" PRIu64 " term %" PRIu64
                  " size %" PRIu64 ", the file has %" PRId64 " bytes", path,
                  c->snap.meta.last.index, c->snap.meta.last.term, c->snap.meta.size, size);
    }
    uint32_t crc = 0;
    for (uint64_t off = 0; rc == 0 && off < c->snap.meta.size; off += (uint64_t)n) {
        uint64_t left = c->snap.meta.size - off;
        n = io_exec_pread(s->io, (int)fd, buf, left < READ_CHUNK ? left : READ_CHUNK,
                          FORMAT_SNAP_HEADER_BYTES + off);
        if (n <= 0) {
            rc = fail(c, YGGR_ERR_IO, "%s: read at offset %" PRIu64 " failed", path,
                      FORMAT_SNAP_HEADER_BYTES + off);
        } else {
            crc = crc32c(crc, buf, (size_t)n);
        }
    }
    if (rc == 0 && crc != c->snap.payload_crc) {
        rc = fail(c, YGGR_ERR_CORRUPT, "%s: offset %u: payload crc 0x%08x computed, header "
                  "says 0x%08x", path, FORMAT_SNAP_HEADER_BYTES, crc, c->snap.payload_crc);
    }
    free(buf);
    io_exec_close(s->io, (int)fd);
    return rc == YGGR_ERR_IO && c->why != NULL && c->why[0] == '\0'
               ? fail(c, rc, "%s: read failed", path) : rc;
}

static int cmp_id(const void *a, const void *b)
{
    const struct yggr_log_id *x = a;
    const struct yggr_log_id *y = b;
    if (x->index != y->index) {
        return x->index < y->index ? -1 : 1;
    }
    return x->term < y->term ? -1 : x->term > y->term;
}

static int load_snapshot(struct rec_ctx *c)
{
    YGGR_ASSERT(!c->has_snap && c->snap_count == 0);
    struct yggr_storage *s = c->s;
    c->err = 0;
    int rc = s->io->ops->list(s->io, s->dir, on_data_name, c);
    if (c->err < 0) {
        return c->err;
    }
    if (rc < 0) {
        return fail(c, YGGR_ERR_IO, "%s: cannot list: %s", s->dir, strerror(-rc));
    }
    if (c->snap_count == 0) {
        return 0;
    }
    qsort(c->snaps, c->snap_count, sizeof(c->snaps[0]), cmp_id);
    struct yggr_log_id newest = c->snaps[c->snap_count - 1];
    char path[512];
    snapshot_path(s, newest, path, sizeof(path));
    rc = verify_snapshot(c, newest, path);
    if (rc < 0) {
        return rc;
    }
    for (uint32_t i = 0; i + 1 < c->snap_count; i++) {
        snapshot_path(s, c->snaps[i], path, sizeof(path));
        io_exec_unlink(s->io, path); /* obsolete; harmless if it survives a crash */
    }
    c->has_snap = true;
    c->out->recovered.has_snapshot = true;
    c->out->recovered.snapshot = c->snap.meta;
    snapshot_registry_add(&s->snaps, newest);
    return 0;
}

static int on_log_name(void *arg, const char *name)
{
    struct rec_ctx *c = arg;
    uint64_t first = 0;
    if (format_parse_segment_name(name, &first)) {
        if (c->seg_count == c->seg_cap) {
            uint32_t cap = c->seg_cap == 0 ? 64 : 2 * c->seg_cap;
            uint64_t *grown = realloc(c->segs, cap * sizeof(*grown));
            if (grown == NULL) {
                c->err = fail(c, YGGR_ERR_NOMEM, "out of memory listing %s", c->s->log_dir);
                return 1;
            }
            c->segs = grown;
            c->seg_cap = cap;
        }
        c->segs[c->seg_count++] = first;
    } else if (strcmp(name, FORMAT_READY_NAME) == 0) {
        c->has_ready = true;
    } else if (format_is_temp_name(name)) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", c->s->log_dir, name);
        int rc = io_exec_unlink(c->s->io, path);
        if (rc < 0 && rc != -ENOENT) {
            c->err = fail(c, io_err(rc), "%s: cannot remove: %s", path, strerror(-rc));
            return 1;
        }
        c->out->temp_files_removed += rc == 0 ? 1 : 0;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int add_config(struct rec_ctx *c, const struct format_record *rec)
{
    YGGR_ASSERT(rec->type == YGGR_ENTRY_CONFIG);
    YGGR_ASSERT(rec->len == 0 || rec->data != NULL);
    struct disk_recovered *r = &c->s->rec;
    if (r->config_count == r->config_cap) {
        uint32_t cap = r->config_cap == 0 ? 16 : 2 * r->config_cap;
        struct yggr_entry *e = realloc(r->configs, cap * sizeof(*e));
        struct yggr_buf **b = realloc(r->config_bufs, cap * sizeof(*b));
        if (e != NULL) {
            r->configs = e;
        }
        if (b != NULL) {
            r->config_bufs = b;
        }
        if (e == NULL || b == NULL) {
            return YGGR_ERR_NOMEM;
        }
        r->config_cap = cap;
    }
    struct yggr_buf *buf = NULL;
    if (rec->len > 0) {
        buf = yggr_buf_alloc(rec->len);
        if (buf == NULL) {
            return YGGR_ERR_NOMEM;
        }
        memcpy(buf->data, rec->data, rec->len);
    }
    r->config_bufs[r->config_count] = buf;
    r->configs[r->config_count++] = (struct yggr_entry){
        .index = rec->index, .term = rec->term, .type = YGGR_ENTRY_CONFIG,
        .change = rec->change, .node = rec->node, .len = rec->len,
        .data = buf != NULL ? buf->data : NULL, .buf = buf};
    return 0;
}

static int on_record(void *arg, const struct format_record *rec, uint64_t offset)
{
    YGGR_ASSERT(arg != NULL && rec != NULL);
    YGGR_ASSERT(offset >= FORMAT_SEG_HEADER_BYTES);
    struct rec_ctx *c = arg;
    struct segment_log *log = &c->s->log;
    if (rec->index == c->scan_hdr->first_index) {
        struct segment seg = {.first_index = rec->index, .last_index = rec->index - 1,
                              .end = FORMAT_SEG_HEADER_BYTES, .seed = c->scan_hdr->crc,
                              .last_crc = c->scan_hdr->crc, .fd = c->scan_fd};
        if (log->seg_count == 0) {
            segment_log_reset(log, rec->index);
        }
        seg.size = c->scan_size;
        if (segment_log_add(log, &seg) < 0) {
            return c->err = YGGR_ERR_NOMEM;
        }
        c->scan_fd = -1; /* owned by the log now */
    }
    int rc = segment_log_push(log, rec->index, rec->term, (uint32_t)offset, rec->size, rec->crc);
    if (rc == 0 && rec->type == YGGR_ENTRY_CONFIG &&
        (!c->has_snap || rec->index > c->snap.meta.last.index)) {
        rc = add_config(c, rec);
    }
    return rc < 0 ? (c->err = YGGR_ERR_NOMEM) : 0;
}

/* Zero the torn bytes [from, to) of the last segment and make that durable. */
static int zero_torn(struct rec_ctx *c, int fd, const char *path, uint64_t from, uint64_t to)
{
    YGGR_ASSERT(fd >= 0);
    YGGR_ASSERT(from < to);
    static const uint8_t zeros[64u << 10];
    struct storage_io *io = c->s->io;
    for (uint64_t off = from; off < to;) {
        size_t n = to - off < sizeof(zeros) ? (size_t)(to - off) : sizeof(zeros);
        int rc = io_exec_pwrite(io, fd, zeros, n, off);
        if (rc < 0) {
            return fail(c, io_err(rc), "%s: zeroing the torn tail at offset %" PRIu64
                        " failed: %s", path, off, strerror(-rc));
        }
        off += n;
    }
    int rc = io_exec_sync(io, IO_FDATASYNC, fd);
    return rc < 0 ? fail(c, io_err(rc), "%s: fdatasync failed: %s", path, strerror(-rc)) : 0;
}

/* Checks between segments k-1 and k that the scanner cannot see. */
static int check_link(struct rec_ctx *c, uint32_t k, const struct segment_scan *scan,
                      const char *path)
{
    YGGR_ASSERT(k < c->seg_count);
    const struct segment_log *log = &c->s->log;
    if (scan->last_index < scan->first_index) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: offset %u: no valid record (%s)", path,
                    FORMAT_SEG_HEADER_BYTES, format_record_status_text(scan->stop));
    }
    if (k == 0) {
        return 0;
    }
    const struct segment *prev = &log->segs[log->seg_count - 2];
    if (!scan->hdr.has_prev || scan->hdr.prev_crc != prev->last_crc) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: offset 32: header chains from crc 0x%08x, but "
                    "the previous segment ends with crc 0x%08x", path, scan->hdr.prev_crc,
                    prev->last_crc);
    }
    return 0;
}

static int scan_one(struct rec_ctx *c, uint32_t k, uint64_t *prev_term)
{
    YGGR_ASSERT(k < c->seg_count);
    YGGR_ASSERT(c->s->log.seg_count == k);
    struct yggr_storage *s = c->s;
    char path[512];
    disk_seg_path(s, c->segs[k], path, sizeof(path));
    int64_t fd = io_exec_open(s->io, path, O_RDWR, 0);
    int64_t size = fd >= 0 ? io_exec_size(s->io, (int)fd) : fd;
    uint8_t *buf = size >= 0 && size <= UINT32_MAX ? malloc(size > 0 ? (size_t)size : 1) : NULL;
    int64_t n = buf != NULL ? io_exec_pread(s->io, (int)fd, buf, (size_t)size, 0) : -EIO;
    if (buf == NULL || n != size) {
        if (fd >= 0) {
            io_exec_close(s->io, (int)fd);
        }
        free(buf);
        return fail(c, size > UINT32_MAX ? YGGR_ERR_CORRUPT : YGGR_ERR_IO,
                    "%s: cannot read (%" PRId64 " bytes): %s", path, size,
                    fd < 0 ? strerror((int)-fd) : "short read or too large");
    }
    struct segment_scan scan = {.buf = buf, .len = (size_t)size, .first_index = c->segs[k],
                                .prev_term = *prev_term,
                                .expect_last = k + 1 < c->seg_count ? c->segs[k + 1] - 1 : 0};
    c->scan_hdr = &scan.hdr;
    c->scan_fd = (int)fd;
    c->scan_size = (uint64_t)size;
    c->err = 0;
    int rc = segment_scan(&scan, on_record, c);
    if (c->scan_fd >= 0) {
        io_exec_close(s->io, c->scan_fd); /* no record: not adopted by the log */
    }
    free(buf);
    if (rc == -EILSEQ) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: %s", path, scan.why);
    }
    if (rc < 0) {
        return fail(c, c->err < 0 ? c->err : YGGR_ERR_NOMEM, "%s: out of memory", path);
    }
    rc = check_link(c, k, &scan, path);
    if (rc == 0 && scan.garbage_end > scan.end) {
        rc = zero_torn(c, segment_log_active(&s->log)->fd, path, scan.end, scan.garbage_end);
        c->out->torn_bytes_dropped += scan.garbage_end - scan.end;
    }
    *prev_term = scan.last_term;
    return rc;
}

static int scan_segments(struct rec_ctx *c)
{
    struct yggr_storage *s = c->s;
    c->err = 0;
    int rc = s->io->ops->list(s->io, s->log_dir, on_log_name, c);
    if (c->err < 0) {
        return c->err;
    }
    if (rc == -ENOENT) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: missing (created by bootstrap; refusing to "
                    "start without the log)", s->log_dir);
    }
    if (rc < 0) {
        return fail(c, YGGR_ERR_IO, "%s: cannot list: %s", s->log_dir, strerror(-rc));
    }
    if (c->seg_count > 1) {
        qsort(c->segs, c->seg_count, sizeof(c->segs[0]), cmp_u64);
    }
    uint64_t prev_term = 0;
    for (uint32_t k = 0; k < c->seg_count; k++) {
        rc = scan_one(c, k, &prev_term);
        if (rc < 0) {
            return rc;
        }
    }
    YGGR_ASSERT(c->s->log.seg_count == c->seg_count);
    return 0;
}

/* Delete every segment (newest first), then fsync log/: the log restarts at `first`. */
static int discard_log(struct rec_ctx *c, uint64_t first)
{
    YGGR_ASSERT(first > 0);
    YGGR_ASSERT(c->s->log_dir_fd >= 0);
    struct yggr_storage *s = c->s;
    struct segment_log *log = &s->log;
    for (uint32_t k = log->seg_count; k-- > 0;) {
        char path[512];
        disk_seg_path(s, log->segs[k].first_index, path, sizeof(path));
        io_exec_close(s->io, log->segs[k].fd);
        log->segs[k].fd = -1;
        int rc = io_exec_unlink(s->io, path);
        if (rc < 0 && rc != -ENOENT) {
            return fail(c, io_err(rc), "%s: cannot remove: %s", path, strerror(-rc));
        }
    }
    segment_log_reset(log, first);
    for (uint32_t i = 0; i < s->rec.config_count; i++) {
        yggr_buf_release(s->rec.config_bufs[i]);
    }
    s->rec.config_count = 0;
    int rc = io_exec_sync(s->io, IO_FSYNC, s->log_dir_fd);
    return rc < 0 ? fail(c, io_err(rc), "%s: fsync failed: %s", s->log_dir, strerror(-rc)) : 0;
}

/* Step 5 of the notes: make the log agree with the snapshot. */
static int reconcile(struct rec_ctx *c, char *note, size_t note_size)
{
    YGGR_ASSERT(note != NULL && note_size > 0);
    YGGR_ASSERT(!c->has_snap || c->snap.meta.last.index > 0);
    struct yggr_storage *s = c->s;
    struct segment_log *log = &s->log;
    bool empty = segment_log_empty(log);
    if (!c->has_snap) {
        if (!empty && log->first != 1) {
            return fail(c, YGGR_ERR_CORRUPT, "%s: the log starts at index %" PRIu64
                        " but there is no snapshot (entries 1..%" PRIu64 " are missing)",
                        s->log_dir, log->first, log->first - 1);
        }
        s->base = (struct yggr_log_id){0, 0};
        return 0;
    }
    struct yggr_log_id snap = c->snap.meta.last;
    if (!empty && log->first > snap.index + 1) {
        return fail(c, YGGR_ERR_CORRUPT, "%s: the log starts at index %" PRIu64
                    " but the snapshot ends at %" PRIu64 " (gap)", s->log_dir, log->first,
                    snap.index);
    }
    bool keep = !empty && (log->first == snap.index + 1 ||
                           segment_log_term(log, snap.index) == snap.term);
    if (!keep) {
        if (!empty) {
            snprintf(note, note_size, "; log [%" PRIu64 ", %" PRIu64 "] disagrees with the "
                     "snapshot: discarded", log->first, log->last);
        }
        s->base = snap;
        return discard_log(c, snap.index + 1);
    }
    s->base = (struct yggr_log_id){log->first - 1, log->first - 1 == snap.index ? snap.term : 0};
    return 0;
}

/* Read back and verify the newest entries into one buf (recovered.tail). */
static int build_tail(struct rec_ctx *c)
{
    struct yggr_storage *s = c->s;
    const struct segment_log *log = &s->log;
    if (segment_log_empty(log)) {
        return 0;
    }
    uint64_t start = log->last + 1;
    uint64_t bytes = 0;
    while (start > log->first && log->last + 1 - start < s->opt.tail_entries) {
        uint32_t size = segment_log_size(log, start - 1);
        if (bytes + size > s->opt.tail_bytes) {
            break;
        }
        bytes += size;
        start--;
    }
    uint32_t n = (uint32_t)(log->last + 1 - start);
    if (n == 0) {
        return 0;
    }
    s->rec.tail = calloc(n, sizeof(*s->rec.tail));
    s->rec.tail_buf = yggr_buf_alloc((uint32_t)bytes);
    if (s->rec.tail == NULL || s->rec.tail_buf == NULL) {
        return fail(c, YGGR_ERR_NOMEM, "out of memory reading the log tail");
    }
    uint8_t *p = s->rec.tail_buf->data;
    for (uint64_t i = start; i <= log->last;) {
        const struct segment *seg = &log->segs[segment_log_find(log, i)];
        uint64_t off = segment_log_loc(log, i).offset;
        uint64_t len = seg->end - off;
        int64_t got = io_exec_pread(s->io, seg->fd, p, (size_t)len, off);
        if (got != (int64_t)len) {
            return fail(c, YGGR_ERR_IO, "log/%020" PRIu64 ".seg: read of the tail at offset %"
                        PRIu64 " failed", seg->first_index, off);
        }
        for (; i <= seg->last_index; i++) {
            struct format_record rec;
            enum format_record_status st = format_record_parse(
                p, len, segment_log_seed(log, i), &rec);
            if (st != FORMAT_RECORD_OK || rec.index != i || rec.crc != segment_log_loc(log, i).crc) {
                return fail(c, YGGR_ERR_CORRUPT, "log/%020" PRIu64 ".seg: offset %u: record "
                            "for index %" PRIu64 " changed since it was scanned (%s)",
                            seg->first_index, segment_log_loc(log, i).offset, i,
                            format_record_status_text(st));
            }
            s->rec.tail[s->rec.tail_count++] = (struct yggr_entry){
                .index = rec.index, .term = rec.term, .type = rec.type, .change = rec.change,
                .node = rec.node, .data = rec.data, .len = rec.len, .buf = s->rec.tail_buf};
            p += rec.size;
            len -= rec.size;
        }
    }
    YGGR_ASSERT(s->rec.tail_count == n);
    return 0;
}

/* Prepare next.ready synchronously (first start, or after it was consumed or damaged). */
static int prepare_sync(struct rec_ctx *c)
{
    YGGR_ASSERT(c->s->prep.fd < 0);
    YGGR_ASSERT(c->s->log_dir_fd >= 0);
    struct yggr_storage *s = c->s;
    static const uint8_t zeros[64u << 10];
    int64_t fd = io_exec_open(s->io, s->prep_path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        return fail(c, io_err(fd), "%s: cannot create: %s", s->prep_path, strerror((int)-fd));
    }
    struct io_op op;
    io_prep_fallocate(&op, (int)fd, 0, s->opt.segment_bytes);
    int64_t rc = s->io->ops->exec(s->io, &op);
    rc = rc == -EOPNOTSUPP ? 0 : rc;
    for (uint64_t off = 0; rc == 0 && off < s->opt.segment_bytes; off += sizeof(zeros)) {
        uint64_t left = s->opt.segment_bytes - off;
        rc = io_exec_pwrite(s->io, (int)fd, zeros, left < sizeof(zeros) ? left : sizeof(zeros),
                            off);
    }
    if (rc == 0) {
        rc = io_exec_sync(s->io, IO_FSYNC, (int)fd);
    }
    if (rc == 0) {
        rc = io_exec_rename(s->io, s->prep_path, s->ready_path);
    }
    if (rc == 0) {
        rc = io_exec_sync(s->io, IO_FSYNC, s->log_dir_fd);
    }
    if (rc < 0) {
        io_exec_close(s->io, (int)fd);
        return fail(c, io_err(rc), "%s: preparing the next segment failed: %s", s->prep_path,
                    strerror((int)-rc));
    }
    s->prep.fd = (int)fd;
    s->prep.state = DISK_PREP_READY;
    return 0;
}

static int ensure_ready(struct rec_ctx *c)
{
    YGGR_ASSERT(c->s->prep.state == DISK_PREP_NONE);
    struct yggr_storage *s = c->s;
    if (c->has_ready) {
        int64_t fd = io_exec_open(s->io, s->ready_path, O_RDWR, 0);
        uint8_t head[4096];
        int64_t size = fd >= 0 ? io_exec_size(s->io, (int)fd) : -1;
        int64_t n = fd >= 0 ? io_exec_pread(s->io, (int)fd, head, sizeof(head), 0) : -1;
        bool zero = n == (int64_t)sizeof(head);
        for (int64_t i = 0; zero && i < n; i++) {
            zero = head[i] == 0;
        }
        if (zero && (uint64_t)size == s->opt.segment_bytes) {
            s->prep.fd = (int)fd;
            s->prep.state = DISK_PREP_READY;
            return 0;
        }
        if (fd >= 0) {
            io_exec_close(s->io, (int)fd);
        }
        int rc = io_exec_unlink(s->io, s->ready_path); /* torn first batch or other size */
        if (rc < 0 && rc != -ENOENT) {
            return fail(c, io_err(rc), "%s: cannot remove: %s", s->ready_path, strerror(-rc));
        }
        c->out->temp_files_removed++;
    }
    return prepare_sync(c);
}

static int open_dirs(struct rec_ctx *c)
{
    YGGR_ASSERT(c->s->dir_fd < 0 && c->s->log_dir_fd < 0);
    struct yggr_storage *s = c->s;
    int64_t fd = io_exec_open(s->io, s->dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        return fail(c, io_err(fd), "%s: cannot open: %s", s->dir, strerror((int)-fd));
    }
    s->dir_fd = (int)fd;
    fd = io_exec_open(s->io, s->log_dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        return fail(c, fd == -ENOENT ? YGGR_ERR_CORRUPT : io_err(fd),
                    "%s: cannot open: %s (created by bootstrap; refusing to start without "
                    "the log)", s->log_dir, strerror((int)-fd));
    }
    s->log_dir_fd = (int)fd;
    return 0;
}

static void fill_output(struct rec_ctx *c, const char *note)
{
    YGGR_ASSERT(note != NULL);
    YGGR_ASSERT(c->s->log.run_count == 0 || c->s->rec.terms != NULL);
    struct yggr_storage *s = c->s;
    struct yggr_recovered *r = &c->out->recovered;
    const struct segment_log *log = &s->log;
    r->term = s->term;
    r->vote = s->vote;
    r->base_config = c->out->meta.bootstrap_config;
    r->first_index = log->first;
    r->last_index = log->last;
    r->terms = s->rec.terms;
    r->term_count = log->run_count;
    r->configs = s->rec.configs;
    r->config_count = s->rec.config_count;
    r->tail = s->rec.tail;
    r->tail_count = s->rec.tail_count;
    snprintf(c->out->notes, sizeof(c->out->notes),
             "log [%" PRIu64 ", %" PRIu64 "] in %u segments; snapshot %" PRIu64 "/%" PRIu64
             "; term %" PRIu64 " vote %" PRIu64 "; torn %" PRIu64 " bytes; %" PRIu64
             " temp files removed%s",
             log->first, log->last, log->seg_count, r->has_snapshot ? r->snapshot.last.index : 0,
             r->has_snapshot ? r->snapshot.last.term : 0, r->term, r->vote,
             c->out->torn_bytes_dropped, c->out->temp_files_removed, note);
}

int recovery_run(struct yggr_storage *s, struct yggr_storage_state *out, char *why,
                 size_t why_size)
{
    YGGR_ASSERT(s != NULL && out != NULL);
    YGGR_ASSERT(!s->started);
    memset(out, 0, sizeof(*out));
    if (why != NULL && why_size > 0) {
        why[0] = '\0';
    }
    struct rec_ctx c = {.s = s, .out = out, .why = why, .why_size = why_size, .scan_fd = -1};
    char note[160] = "";
    int rc = load_meta(&c);
    rc = rc == 0 ? open_dirs(&c) : rc;
    rc = rc == 0 ? load_hard_state(&c) : rc;
    rc = rc == 0 ? load_snapshot(&c) : rc;
    rc = rc == 0 ? scan_segments(&c) : rc;
    rc = rc == 0 ? reconcile(&c, note, sizeof(note)) : rc;
    rc = rc == 0 ? build_tail(&c) : rc;
    rc = rc == 0 ? ensure_ready(&c) : rc;
    if (rc == 0 && s->log.run_count > 0) {
        s->rec.terms = malloc(s->log.run_count * sizeof(*s->rec.terms));
        if (s->rec.terms == NULL) {
            rc = fail(&c, YGGR_ERR_NOMEM, "out of memory");
        } else {
            memcpy(s->rec.terms, s->log.runs, s->log.run_count * sizeof(*s->rec.terms));
        }
    }
    free(c.segs);
    if (rc < 0) {
        return rc;
    }
    char check[DISK_WHY];
    YGGR_ASSERT(segment_log_check(&s->log, check, sizeof(check)));
    fill_output(&c, note);
    return 0;
}

void recovery_free(struct yggr_storage *s)
{
    struct disk_recovered *r = &s->rec;
    for (uint32_t i = 0; i < r->config_count; i++) {
        yggr_buf_release(r->config_bufs[i]);
    }
    yggr_buf_release(r->tail_buf);
    free(r->configs);
    free(r->config_bufs);
    free(r->tail);
    free(r->terms);
    memset(r, 0, sizeof(*r));
}

/* ---- bootstrap ------------------------------------------------------------------------------ */

/* <path>.tmp, fsync, rename over <path> (the caller fsyncs the directory). */
static int write_atomic(struct storage_io *io, const char *path, const void *data, size_t len,
                        char *why, size_t why_size)
{
    YGGR_ASSERT(path != NULL && data != NULL);
    YGGR_ASSERT(len > 0);
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int rc = io_exec_unlink(io, tmp);
    int64_t fd = rc == 0 || rc == -ENOENT ? io_exec_open(io, tmp, O_WRONLY | O_CREAT | O_EXCL,
                                                         0644) : rc;
    const char *step = "create";
    rc = fd < 0 ? (int)fd : 0;
    if (rc == 0) {
        step = "write";
        rc = io_exec_pwrite(io, (int)fd, data, len, 0);
        if (rc == 0) {
            step = "fsync";
            rc = io_exec_sync(io, IO_FSYNC, (int)fd);
        }
        io_exec_close(io, (int)fd);
    }
    if (rc == 0) {
        step = "rename";
        rc = io_exec_rename(io, tmp, path);
    }
    if (rc < 0) {
        snprintf(why, why_size, "%s: %s failed: %s", tmp, step, strerror(-rc));
        return io_err(rc);
    }
    return 0;
}

static int make_dir(struct storage_io *io, const char *path, char *why, size_t why_size)
{
    struct io_op op;
    io_prep_mkdir(&op, path, 0755);
    int64_t rc = io->ops->exec(io, &op);
    if (rc < 0 && rc != -EEXIST) {
        snprintf(why, why_size, "%s: mkdir failed: %s", path, strerror((int)-rc));
        return io_err(rc);
    }
    return 0;
}

static int find_state(void *arg, const char *name)
{
    struct yggr_log_id id;
    uint64_t first = 0;
    (void)arg;
    return format_parse_snap_name(name, &id) || format_parse_segment_name(name, &first);
}

/* Does the directory hold a log segment or a snapshot (state without meta)? */
static bool holds_state(struct yggr_storage *s)
{
    YGGR_ASSERT(s->io != NULL);
    int a = s->io->ops->list(s->io, s->dir, find_state, NULL);
    int b = s->io->ops->list(s->io, s->log_dir, find_state, NULL);
    YGGR_ASSERT(a <= 1 && b <= 1);
    return a == 1 || b == 1;
}

int recovery_bootstrap(struct yggr_storage *s, const struct yggr_storage_meta *meta, char *why,
                       size_t why_size)
{
    YGGR_ASSERT(s != NULL && meta != NULL);
    YGGR_ASSERT(!s->started);
    if (!yggr_membership_valid(&meta->bootstrap_config)) {
        snprintf(why, why_size, "%s: invalid bootstrap configuration", s->dir);
        return YGGR_ERR_INVALID;
    }
    int rc = make_dir(s->io, s->dir, why, why_size);
    if (rc < 0) {
        return rc;
    }
    int64_t fd = io_exec_open(s->io, s->meta_path, O_RDONLY, 0);
    if (fd >= 0) {
        io_exec_close(s->io, (int)fd);
        snprintf(why, why_size, "%s: already bootstrapped (meta exists)", s->dir);
        return YGGR_ERR_EXISTS;
    }
    if (holds_state(s)) {
        snprintf(why, why_size, "%s: holds log segments or snapshots but no meta: refusing to "
                 "adopt them", s->dir);
        return YGGR_ERR_EXISTS;
    }
    uint8_t hs[FORMAT_HARDSTATE_BYTES] = {0};
    struct format_hard_state first = {.seq = 1, .term = 0, .vote = 0};
    format_slot_encode(hs, &first);
    uint8_t m[FORMAT_META_BYTES];
    format_meta_encode(m, meta);
    rc = make_dir(s->io, s->log_dir, why, why_size);
    rc = rc == 0 ? write_atomic(s->io, s->hs_path, hs, sizeof(hs), why, why_size) : rc;
    rc = rc == 0 ? write_atomic(s->io, s->meta_path, m, sizeof(m), why, why_size) : rc;
    int r1 = rc == 0 ? io_exec_sync_dir(s->io, s->log_dir) : 0;
    int r2 = rc == 0 && r1 == 0 ? io_exec_sync_dir(s->io, s->dir) : 0;
    if (rc == 0 && (r1 < 0 || r2 < 0)) {
        snprintf(why, why_size, "%s: directory fsync failed: %s", s->dir,
                 strerror(-(r1 < 0 ? r1 : r2)));
        return io_err(r1 < 0 ? r1 : r2);
    }
    return rc;
}
