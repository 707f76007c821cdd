/* SPDX-License-Identifier: MIT */
/* Snapshot files: the apply thread's writer and reader, incoming chunks installed
 * atomically by the disk thread (with the log rule), and the registry of snapshot files. */

/*
 * Design notes
 * ------------
 * One file per snapshot, snap-<index>-<term> = a 1 KiB header {magic, version, last index,
 * last term, size, payload CRC32C, full membership, header CRC} followed by the payload.
 * A snapshot never consists of two files that could tear apart (REFERENCE 8.1 #10): it is
 * written under a temp name, fsynced, renamed, and the directory fsynced; until the
 * rename is durable the old snapshot is the node's snapshot, after it the new one is.
 *
 * Local snapshots (apply thread). begin() opens a private temp file (snap-<random>.tmp);
 * write() stages 1 MiB and writes it with plain blocking pwrite through io->exec on the
 * apply thread: the apply thread is the only one waiting for it, and going through the
 * disk thread's ring would only add a hop and two copies. commit() writes the header,
 * fsyncs, renames, fsyncs the directory and registers the file; the driver then learns
 * of it (SNAPSHOT_TAKEN) and submits COMPACT, which deletes older snapshot files on the
 * disk thread. A failed write or fsync fails the commit (YGGR_ERR_IO/NOSPC): the caller
 * must treat it as fatal for the node, exactly like a FAILED completion.
 *
 * Incoming snapshots (disk thread, SNAP_CHUNK). Offset 0 (re)starts: any partial file is
 * removed and snap-incoming.partial created. Chunks are appended (contiguity asserted:
 * the engine guarantees it). The last chunk (`done`) runs these stages:
 *   1  write the header, fsync the partial file
 *   2  rename it to snap-<index>-<term>, fsync the data directory  -- the commit point
 *   3  log rule (engine.h): if the log holds meta.last.index with meta.last.term, keep it;
 *      otherwise unlink every segment, newest first (REFERENCE 8.1 #11: no stale tail
 *      may survive a restart)
 *   4  fsync log/
 *   5  unlink older snapshot files
 * then SNAP_INSTALLED. A crash between 2 and 4 leaves the new snapshot with the old log;
 * recovery applies the same rule (recovery.c), so the outcome is identical.
 *
 * Registry: the ids of snapshot files present, ascending; the last one is current. The
 * apply thread adds (commit), the disk thread adds (install) and takes the older ones to
 * delete; a mutex makes that safe (contention: once per snapshot).
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "crc32c.h"
#include "yggr_assert.h"

#define WRITER_STAGE_BYTES (1u << 20)

struct disk_chunk {
    struct yggr_snapshot_meta meta;
    uint64_t offset;
    const uint8_t *data;
    struct yggr_buf *buf;
    uint32_t len;
    bool done;
    uint64_t tag;
};

struct disk_incoming {
    struct yggr_snapshot_meta meta;
    int fd;
    uint64_t received;
    uint32_t crc;
    struct disk_chunk *chunk;          /* in flight */
    uint8_t header[FORMAT_SNAP_HEADER_BYTES];
    char final_path[512];
    struct iovec data_iov;
    struct iovec hdr_iov;
};

struct yggr_storage_snapshot_writer {
    struct yggr_storage *s;
    int fd;
    char path[512];
    uint64_t size;                     /* payload bytes accepted */
    uint64_t flushed;                  /* payload bytes in the file */
    uint32_t crc;
    int sys_err;                       /* sticky: -errno of the first failed write */
    size_t used;
    uint8_t *buf;
};

struct yggr_storage_snapshot_reader {
    struct storage_io *io;
    int fd;
    uint64_t size;
    uint64_t offset;
    uint32_t crc;
    uint32_t want;
};

/* ---- registry --------------------------------------------------------------------------- */

static int id_cmp(struct yggr_log_id a, struct yggr_log_id b)
{
    if (a.index != b.index) {
        return a.index < b.index ? -1 : 1;
    }
    return a.term < b.term ? -1 : (a.term > b.term ? 1 : 0);
}

int snapshot_registry_init(struct disk_snaps *snaps)
{
    YGGR_ASSERT(snaps != NULL);
    snaps->count = 0;
    return pthread_mutex_init(&snaps->mu, NULL) == 0 ? 0 : -ENOMEM;
}

void snapshot_registry_deinit(struct disk_snaps *snaps)
{
    YGGR_ASSERT(snaps != NULL);
    pthread_mutex_destroy(&snaps->mu);
}

void snapshot_registry_add(struct disk_snaps *snaps, struct yggr_log_id id)
{
    YGGR_ASSERT(id.index > 0);
    pthread_mutex_lock(&snaps->mu);
    uint32_t i = snaps->count;
    while (i > 0 && id_cmp(snaps->ids[i - 1], id) > 0) {
        i--;
    }
    if (i == 0 || id_cmp(snaps->ids[i - 1], id) != 0) {
        if (snaps->count == DISK_MAX_SNAPSHOTS) { /* forget the oldest (never deleted) */
            memmove(snaps->ids, snaps->ids + 1, (snaps->count - 1) * sizeof(snaps->ids[0]));
            snaps->count--;
            i = i > 0 ? i - 1 : 0;
        }
        memmove(snaps->ids + i + 1, snaps->ids + i, (snaps->count - i) * sizeof(snaps->ids[0]));
        snaps->ids[i] = id;
        snaps->count++;
    }
    YGGR_ASSERT(snaps->count <= DISK_MAX_SNAPSHOTS);
    pthread_mutex_unlock(&snaps->mu);
}

bool snapshot_registry_current(struct disk_snaps *snaps, struct yggr_log_id *id)
{
    YGGR_ASSERT(id != NULL);
    pthread_mutex_lock(&snaps->mu);
    bool found = snaps->count > 0;
    if (found) {
        *id = snaps->ids[snaps->count - 1];
    }
    pthread_mutex_unlock(&snaps->mu);
    return found;
}

uint32_t snapshot_registry_take_old(struct disk_snaps *snaps, struct yggr_log_id *out,
                                    uint32_t max)
{
    YGGR_ASSERT(out != NULL);
    pthread_mutex_lock(&snaps->mu);
    uint32_t n = snaps->count > 0 ? snaps->count - 1 : 0;
    n = n < max ? n : max;
    memcpy(out, snaps->ids, n * sizeof(*out));
    memmove(snaps->ids, snaps->ids + n, (snaps->count - n) * sizeof(snaps->ids[0]));
    snaps->count -= n;
    pthread_mutex_unlock(&snaps->mu);
    return n;
}

void snapshot_path(const struct yggr_storage *s, struct yggr_log_id id, char *out, size_t size)
{
    char name[FORMAT_SNAP_NAME_MAX];
    format_snap_name(name, id);
    int n = snprintf(out, size, "%s/%s", s->dir, name);
    YGGR_ASSERT(n > 0 && (size_t)n < size);
}

static int map_err(int64_t rc)
{
    return rc == -ENOSPC || rc == -EDQUOT ? YGGR_ERR_NOSPC : YGGR_ERR_IO;
}

/* ---- local snapshots: writer (apply thread) -------------------------------------------- */

int snapshot_begin(struct yggr_storage *s, struct yggr_storage_snapshot_writer **out)
{
    YGGR_ASSERT(s != NULL && out != NULL);
    struct yggr_storage_snapshot_writer *w = calloc(1, sizeof(*w));
    uint8_t *buf = malloc(WRITER_STAGE_BYTES);
    if (w == NULL || buf == NULL) {
        free(w);
        free(buf);
        return YGGR_ERR_NOMEM;
    }
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        r = (uint64_t)(uintptr_t)w;
    }
    snprintf(w->path, sizeof(w->path), "%s/snap-%016" PRIx64 ".tmp", s->dir, r);
    int64_t fd = io_exec_open(s->io, w->path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        free(w);
        free(buf);
        return map_err(fd);
    }
    w->s = s;
    w->fd = (int)fd;
    w->buf = buf;
    *out = w;
    return 0;
}

/* Write the staged bytes; 0 or -errno (sticky). */
static int writer_flush(struct yggr_storage_snapshot_writer *w)
{
    if (w->sys_err == 0 && w->used > 0) {
        int rc = io_exec_pwrite(w->s->io, w->fd, w->buf, w->used,
                                FORMAT_SNAP_HEADER_BYTES + w->flushed);
        if (rc < 0) {
            w->sys_err = rc;
        } else {
            w->flushed += w->used;
            w->used = 0;
        }
    }
    return w->sys_err;
}

int snapshot_write(struct yggr_storage_snapshot_writer *w, const void *data, size_t len)
{
    YGGR_ASSERT(w != NULL);
    YGGR_ASSERT(data != NULL || len == 0);
    const uint8_t *p = data;
    while (w->sys_err == 0 && len > 0) {
        size_t n = WRITER_STAGE_BYTES - w->used < len ? WRITER_STAGE_BYTES - w->used : len;
        memcpy(w->buf + w->used, p, n);
        w->crc = crc32c(w->crc, p, n);
        w->used += n;
        w->size += n;
        p += n;
        len -= n;
        if (w->used == WRITER_STAGE_BYTES) {
            writer_flush(w);
        }
    }
    return w->sys_err == 0 ? 0 : map_err(w->sys_err);
}

static void writer_free(struct yggr_storage_snapshot_writer *w, bool remove)
{
    if (w->fd >= 0) {
        io_exec_close(w->s->io, w->fd);
    }
    if (remove) {
        io_exec_unlink(w->s->io, w->path);
    }
    free(w->buf);
    free(w);
}

int snapshot_commit(struct yggr_storage_snapshot_writer *w, const struct yggr_snapshot_meta *meta,
                    char *why, size_t why_size)
{
    YGGR_ASSERT(w != NULL && meta != NULL);
    struct yggr_storage *s = w->s;
    if (meta->last.index == 0 || meta->size != w->size ||
        !yggr_membership_valid(&meta->config)) {
        snprintf(why, why_size, "%s: snapshot meta invalid (index %" PRIu64 ", size %" PRIu64
                 ", %" PRIu64 " bytes written)", w->path, meta->last.index, meta->size, w->size);
        writer_free(w, true);
        return YGGR_ERR_INVALID;
    }
    char final[512];
    snapshot_path(s, meta->last, final, sizeof(final));
    uint8_t hdr[FORMAT_SNAP_HEADER_BYTES];
    struct format_snap_header h = {.meta = *meta, .payload_crc = w->crc};
    format_snap_header_encode(hdr, &h);
    const char *step = "write";
    int rc = writer_flush(w);
    if (rc == 0 && (rc = io_exec_pwrite(s->io, w->fd, hdr, sizeof(hdr), 0)) == 0) {
        step = "fsync";
        rc = io_exec_sync(s->io, IO_FSYNC, w->fd);
    }
    if (rc == 0) {
        step = "rename";
        io_exec_close(s->io, w->fd);
        w->fd = -1;
        rc = io_exec_rename(s->io, w->path, final);
    }
    if (rc == 0) {
        step = "directory fsync";
        rc = io_exec_sync_dir(s->io, s->dir);
    }
    if (rc != 0) { /* rc is -errno here */
        snprintf(why, why_size, "%s: snapshot %s failed: %s", w->path, step, strerror(-rc));
        writer_free(w, true);
        return map_err(rc);
    }
    snapshot_registry_add(&s->snaps, meta->last);
    writer_free(w, false);
    return 0;
}

void snapshot_abort(struct yggr_storage_snapshot_writer *w)
{
    if (w != NULL) {
        writer_free(w, true);
    }
}

/* ---- reader (apply thread) ----------------------------------------------------------------- */

/* Open snapshot `last` read-only and verify its header (and, when check_size, that the file
 * holds exactly header + payload). Returns the fd or a negative yggr_err. */
int64_t snapshot_open_verified(struct yggr_storage *s, struct yggr_log_id last,
                               struct format_snap_header *h, bool check_size)
{
    YGGR_ASSERT(s != NULL && h != NULL);
    char path[512];
    snapshot_path(s, last, path, sizeof(path));
    int64_t fd = io_exec_open(s->io, path, O_RDONLY, 0);
    if (fd < 0) {
        return fd == -ENOENT ? YGGR_ERR_NOT_FOUND : YGGR_ERR_IO;
    }
    uint8_t hdr[FORMAT_SNAP_HEADER_BYTES];
    char why[DISK_WHY];
    int64_t n = io_exec_pread(s->io, (int)fd, hdr, sizeof(hdr), 0);
    int64_t size = check_size ? io_exec_size(s->io, (int)fd) : 0;
    if (n < 0 || size < 0 || format_snap_header_decode(hdr, (size_t)n, h, why, sizeof(why)) < 0 ||
        id_cmp(h->meta.last, last) != 0 ||
        (check_size && (uint64_t)size != FORMAT_SNAP_HEADER_BYTES + h->meta.size)) {
        io_exec_close(s->io, (int)fd);
        return n < 0 || size < 0 ? YGGR_ERR_IO : YGGR_ERR_CORRUPT;
    }
    return fd;
}

int snapshot_open(struct yggr_storage *s, struct yggr_log_id last,
                  struct yggr_storage_snapshot_reader **out, struct yggr_snapshot_meta *meta)
{
    YGGR_ASSERT(s != NULL && out != NULL);
    if (last.index == 0 && !snapshot_registry_current(&s->snaps, &last)) {
        return YGGR_ERR_NOT_FOUND;
    }
    struct format_snap_header h;
    int64_t fd = snapshot_open_verified(s, last, &h, true);
    if (fd < 0) {
        return (int)fd;
    }
    struct yggr_storage_snapshot_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        io_exec_close(s->io, (int)fd);
        return YGGR_ERR_NOMEM;
    }
    r->io = s->io;
    r->fd = (int)fd;
    r->size = h.meta.size;
    r->want = h.payload_crc;
    if (meta != NULL) {
        *meta = h.meta;
    }
    *out = r;
    return 0;
}

long snapshot_read(struct yggr_storage_snapshot_reader *r, void *data, size_t len)
{
    YGGR_ASSERT(r != NULL);
    YGGR_ASSERT(data != NULL || len == 0);
    uint64_t left = r->size - r->offset;
    size_t n = left < len ? (size_t)left : len;
    if (n == 0) {
        return 0;
    }
    int64_t got = io_exec_pread(r->io, r->fd, data, n, FORMAT_SNAP_HEADER_BYTES + r->offset);
    if (got != (int64_t)n) {
        return YGGR_ERR_IO;
    }
    r->crc = crc32c(r->crc, data, n);
    r->offset += n;
    if (r->offset == r->size && r->crc != r->want) {
        return YGGR_ERR_CORRUPT; /* checksum after read: the payload is not what was written */
    }
    return (long)n;
}

void snapshot_close(struct yggr_storage_snapshot_reader *r)
{
    if (r != NULL) {
        io_exec_close(r->io, r->fd);
        free(r);
    }
}

/* ---- incoming chunks (disk thread) ------------------------------------------------------------ */

int snapshot_chunk_copy(const struct yggr_storage_req *req, struct disk_chunk **out)
{
    const struct yggr_snapshot_meta *meta = &req->as.snap_chunk.meta;
    uint32_t len = req->as.snap_chunk.len;
    if (meta->last.index == 0 || !yggr_membership_valid(&meta->config) ||
        (len > 0 && req->as.snap_chunk.data == NULL)) {
        return YGGR_ERR_INVALID;
    }
    struct disk_chunk *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return YGGR_ERR_NOMEM;
    }
    c->meta = *meta;
    c->offset = req->as.snap_chunk.offset;
    c->len = len;
    c->done = req->as.snap_chunk.done;
    c->tag = req->tag;
    c->data = req->as.snap_chunk.data;
    if (len > 0 && req->as.snap_chunk.buf != NULL) {
        c->buf = yggr_buf_retain(req->as.snap_chunk.buf);
    } else if (len > 0) {
        c->buf = yggr_buf_alloc(len); /* borrowed bytes: copy */
        if (c->buf == NULL) {
            free(c);
            return YGGR_ERR_NOMEM;
        }
        memcpy(c->buf->data, c->data, len);
        c->data = c->buf->data;
    }
    *out = c;
    return 0;
}

void snapshot_chunk_free(struct disk_chunk *chunk)
{
    if (chunk != NULL) {
        yggr_buf_release(chunk->buf);
        free(chunk);
    }
}

void snapshot_close_incoming(struct yggr_storage *s)
{
    if (s->incoming != NULL) {
        if (s->incoming->fd >= 0) {
            io_exec_close(s->io, s->incoming->fd);
        }
        free(s->incoming);
        s->incoming = NULL;
    }
    if (s->snap_cache.fd >= 0) {
        io_exec_close(s->io, s->snap_cache.fd);
        s->snap_cache.fd = -1;
    }
}

static void chunk_finish(struct yggr_storage *s)
{
    struct disk_incoming *in = s->incoming;
    struct disk_chunk *c = in->chunk;
    YGGR_ASSERT(s->phase == DISK_PHASE_SNAP_CHUNK && c != NULL);
    if (!atomic_load_explicit(&s->failed, memory_order_relaxed) && c->done) {
        io_exec_close(s->io, in->fd);
        in->fd = -1;
        struct disk_done done = {.type = YGGR_STORAGE_SNAP_INSTALLED, .tag = c->tag,
                                 .snapshot = c->meta.last};
        disk_push_done(s, &done);
    }
    snapshot_chunk_free(c);
    in->chunk = NULL;
    s->req_cursor++;
    disk_consume(s, s->req_cursor, s->entry_cursor);
    s->phase = DISK_PHASE_IDLE;
}

/* Offset 0: drop any partial file and start a new one. 0 or a negative yggr_err. */
static int restart_incoming(struct yggr_storage *s, const struct disk_chunk *c)
{
    struct disk_incoming *in = s->incoming;
    if (in->fd >= 0) {
        io_exec_close(s->io, in->fd);
        in->fd = -1;
    }
    int rc = io_exec_unlink(s->io, s->partial_path);
    if (rc < 0 && rc != -ENOENT) {
        disk_fail(s, map_err(rc), "%s: unlink failed: %s", s->partial_path, strerror(-rc));
        return YGGR_ERR_IO;
    }
    int64_t fd = io_exec_open(s->io, s->partial_path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        disk_fail(s, map_err(fd), "%s: open failed: %s", s->partial_path, strerror((int)-fd));
        return YGGR_ERR_IO;
    }
    in->fd = (int)fd;
    in->meta = c->meta;
    in->received = 0;
    in->crc = 0;
    return 0;
}

/* Stages 1-5 of the last chunk (see the notes). */
static void add_install(struct yggr_storage *s)
{
    struct disk_incoming *in = s->incoming;
    struct format_snap_header h = {.meta = in->meta, .payload_crc = in->crc};
    YGGR_ASSERT(in->received == in->meta.size); /* the engine sent every byte */
    format_snap_header_encode(in->header, &h);
    in->hdr_iov = (struct iovec){.iov_base = in->header, .iov_len = sizeof(in->header)};
    struct disk_op *op = disk_stage_op(s, 1, s->partial_path);
    io_prep_writev(&op->io, in->fd, &in->hdr_iov, 1, 0);
    op->expect = sizeof(in->header);
    op->io.flags |= IO_LINK;
    io_prep_sync(&disk_stage_op(s, 1, s->partial_path)->io, IO_FSYNC, in->fd);
    snapshot_path(s, in->meta.last, in->final_path, sizeof(in->final_path));
    op = disk_stage_op(s, 2, in->final_path);
    io_prep_rename(&op->io, s->partial_path, in->final_path);
    op->io.flags |= IO_LINK;
    io_prep_sync(&disk_stage_op(s, 2, s->dir)->io, IO_FSYNC, s->dir_fd);
    struct yggr_log_id last = in->meta.last;
    bool match = batch_log_matches(s, last);
    s->batch.unlink_count = 0;
    if (!match) {
        for (uint32_t k = s->log.seg_count; k-- > 0;) { /* newest first */
            batch_drop_segment(s, k);
        }
        batch_add_unlinks(s, 3, 0, s->batch.unlink_count, true); /* newest first */
        io_prep_sync(&disk_stage_op(s, 4, s->log_dir)->io, IO_FSYNC, s->log_dir_fd);
        segment_log_reset(&s->log, last.index + 1);
        s->base = last;
    }
    snapshot_registry_add(&s->snaps, last);
    struct yggr_log_id old[DISK_MAX_SNAPSHOTS];
    uint32_t n = snapshot_registry_take_old(&s->snaps, old, DISK_MAX_SNAPSHOTS);
    uint32_t first = s->batch.unlink_count;
    for (uint32_t i = 0; i < n; i++) {
        char path[512];
        snapshot_path(s, old[i], path, sizeof(path));
        batch_add_unlink(s, path);
    }
    batch_add_unlinks(s, 5, first, s->batch.unlink_count, false);
}

bool snapshot_chunk_start(struct yggr_storage *s)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    if (disk_done_room(s) < 1) {
        return false;
    }
    const struct disk_req *req = &s->reqs[s->req_cursor & s->req_ring.mask];
    struct disk_chunk *c = req->chunk;
    YGGR_ASSERT(req->type == YGGR_STORAGE_SNAP_CHUNK && c != NULL);
    if (s->incoming == NULL && (s->incoming = calloc(1, sizeof(*s->incoming))) != NULL) {
        s->incoming->fd = -1;
    }
    struct disk_incoming *in = s->incoming;
    s->phase = DISK_PHASE_SNAP_CHUNK;
    int rc = in == NULL ? YGGR_ERR_NOMEM : 0;
    if (rc == 0 && c->offset == 0) {
        rc = restart_incoming(s, c);
    } else if (rc == 0) {
        /* Contiguous chunks of the snapshot being received (engine guarantee). */
        YGGR_ASSERT(in->fd >= 0 && id_cmp(in->meta.last, c->meta.last) == 0);
        YGGR_ASSERT(c->offset == in->received);
    }
    uint32_t ops = 8 + s->log.seg_count + DISK_MAX_SNAPSHOTS;
    if (rc == 0 && disk_stages_reserve(s, ops) < 0) {
        rc = YGGR_ERR_NOMEM;
    }
    if (rc < 0) {
        disk_fail(s, rc, "%s: cannot start the incoming snapshot: %s", s->partial_path,
                  yggr_strerror(rc));
        s->req_cursor++;
        disk_consume(s, s->req_cursor, s->entry_cursor);
        snapshot_chunk_free(c);
        s->phase = DISK_PHASE_IDLE;
        return true;
    }
    in->chunk = c;
    disk_stages_reset(s, chunk_finish);
    if (c->len > 0) {
        in->data_iov = (struct iovec){.iov_base = (void *)(uintptr_t)c->data, .iov_len = c->len};
        struct disk_op *op = disk_stage_op(s, 0, s->partial_path);
        io_prep_writev(&op->io, in->fd, &in->data_iov, 1, FORMAT_SNAP_HEADER_BYTES + c->offset);
        op->expect = c->len;
        in->crc = crc32c(in->crc, c->data, c->len);
        in->received += c->len;
    }
    if (c->done) {
        /* The total size is known only with the last chunk (earlier chunks carry 0). */
        in->meta.size = c->meta.size;
        add_install(s);
    }
    disk_stages_start(s);
    return true;
}
