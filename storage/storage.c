/* SPDX-License-Identifier: MIT */
/* Entry points of the disk storage: the public yggr_disk_storage_create() (optionally over
 * the fault injector) and yggr_disk_power_cut(), creation over a given io (tests), and the
 * synchronous API that submits through the same ops and waits. */

/*
 * Design notes
 * ------------
 * The synchronous API is not a second implementation: each call fills a struct
 * yggr_storage_req, submits it through the vtable, flushes, and waits on a condition
 * variable signalled by the wake callback until the completion carrying its tag (or a
 * FAILED) is polled. Completions for other tags are released and skipped. It is meant for
 * tests and tools that own the storage alone; the runtime uses the vtable directly.
 * Waiting: the waiter samples the wake counter BEFORE polling, so a completion pushed
 * between the poll and the wait still wakes it (no lost wake-up).
 * Fault injection (testing only): with yggr_disk_options.fault_injection the storage owns
 * a fault_io (storage/fault_io.h) instead of an io_uring io, and yggr_disk_power_cut()
 * cuts its power from any thread: the injector's mutex orders the cut against the disk
 * thread's operations, so a cut lands between two of them, never inside one; the newest
 * write not yet synced is torn as if it were in flight. The storage keeps running over a
 * dead io (every op fails with EIO, which the disk thread reports as FAILED).
 */
#include "storage.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "fault_io.h"
#include "yggr_assert.h"

#define SYNC_TIMEOUT_MS 60000

struct storage_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t wakes;
    uint64_t next_tag;
};

void storage_options_from_public(struct storage_options *out,
                                 const struct yggr_disk_options *options)
{
    YGGR_ASSERT(out != NULL && options != NULL);
    memset(out, 0, sizeof(*out));
    out->dir = options->dir;
    out->segment_bytes = options->segment_bytes;
    out->queue_entries = options->queue_entries;
    const char *mode = getenv("YGGR_DISK_SYNC");
    out->sync_mode = mode != NULL && strcmp(mode, "dsync") == 0 ? STORAGE_SYNC_DSYNC
                                                                : STORAGE_SYNC_FDATASYNC;
}

int storage_disk_create_with_io(const struct yggr_disk_options *options, struct storage_io *io,
                                const struct yggr_storage_ops **ops, struct yggr_storage **out,
                                char *why, size_t why_size)
{
    if (options == NULL || ops == NULL || out == NULL) {
        return YGGR_ERR_INVALID;
    }
    struct storage_options o;
    storage_options_from_public(&o, options);
    return storage_disk_create_ex(&o, io, ops, out, why, why_size);
}

YGGR_API int yggr_disk_storage_create(const struct yggr_disk_options *options,
                                      const struct yggr_storage_ops **ops,
                                      struct yggr_storage **out, char *why, size_t why_size)
{
    if (options == NULL || !options->fault_injection) {
        return storage_disk_create_with_io(options, NULL, ops, out, why, why_size);
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    }
    struct fault_io *f = fault_io_create(seed);
    if (f == NULL) {
        snprintf(why, why_size, "out of memory creating the fault injector");
        return YGGR_ERR_NOMEM;
    }
    int rc = storage_disk_create_with_io(options, fault_io_base(f), ops, out, why, why_size);
    if (rc != 0) {
        fault_io_destroy(f);
        return rc;
    }
    (*out)->fault = f;
    (*out)->io_owned = true; /* disk_close() destroys the injector with the storage */
    YGGR_ASSERT((*out)->io == fault_io_base(f));
    return 0;
}

YGGR_API int yggr_disk_power_cut(struct yggr_storage *s)
{
    if (s == NULL || s->fault == NULL) {
        return YGGR_ERR_INVALID;
    }
    fault_io_power_cut_tear_last(s->fault);
    YGGR_ASSERT(fault_io_dead(s->fault));
    return 0;
}

/* ---- synchronous API -------------------------------------------------------------------- */

static void sync_wake(void *ctx)
{
    struct storage_sync *y = ctx;
    pthread_mutex_lock(&y->mu);
    y->wakes++;
    pthread_cond_broadcast(&y->cv);
    pthread_mutex_unlock(&y->mu);
}

void storage_sync_free(struct yggr_storage *s)
{
    if (s->sync != NULL) {
        pthread_cond_destroy(&s->sync->cv);
        pthread_mutex_destroy(&s->sync->mu);
        free(s->sync);
        s->sync = NULL;
    }
}

int storage_sync_start(struct yggr_storage *s)
{
    YGGR_ASSERT(s != NULL);
    YGGR_ASSERT(s->sync == NULL);
    struct storage_sync *y = calloc(1, sizeof(*y));
    if (y == NULL) {
        return YGGR_ERR_NOMEM;
    }
    pthread_mutex_init(&y->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&y->cv, &attr);
    pthread_condattr_destroy(&attr);
    s->sync = y;
    return s->ops->start(s, sync_wake, y, -1);
}

bool storage_sync_wait(struct yggr_storage *s, struct yggr_storage_done *out, int timeout_ms)
{
    struct storage_sync *y = s->sync;
    YGGR_ASSERT(y != NULL && out != NULL);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
        pthread_mutex_lock(&y->mu);
        uint64_t seen = y->wakes;
        pthread_mutex_unlock(&y->mu);
        if (s->ops->poll(s, out)) {
            return true;
        }
        pthread_mutex_lock(&y->mu);
        while (y->wakes == seen) {
            if (pthread_cond_timedwait(&y->cv, &y->mu, &deadline) == ETIMEDOUT) {
                pthread_mutex_unlock(&y->mu);
                return s->ops->poll(s, out);
            }
        }
        pthread_mutex_unlock(&y->mu);
    }
}

static int sync_submit(struct yggr_storage *s, struct yggr_storage_req *req)
{
    YGGR_ASSERT(s->sync != NULL);
    req->tag = ++s->sync->next_tag;
    int rc = s->ops->submit(s, req);
    if (rc == 0) {
        s->ops->flush(s);
    }
    return rc;
}

/* Wait for the completion answering `tag` (DURABLE covers every tag up to its own). */
static int sync_wait_for(struct yggr_storage *s, uint64_t tag, enum yggr_storage_done_type want,
                         struct yggr_storage_done *out, char *why, size_t why_size)
{
    for (;;) {
        if (!storage_sync_wait(s, out, SYNC_TIMEOUT_MS)) {
            if (why != NULL) {
                snprintf(why, why_size, "%s: no completion for tag %llu within %d ms", s->dir,
                         (unsigned long long)tag, SYNC_TIMEOUT_MS);
            }
            return YGGR_ERR_TIMEOUT;
        }
        if (out->type == YGGR_STORAGE_FAILED) {
            if (why != NULL) {
                snprintf(why, why_size, "%s", out->why);
            }
            return out->err;
        }
        bool match = out->type == want &&
                     (want == YGGR_STORAGE_DURABLE ? out->tag >= tag : out->tag == tag);
        if (match) {
            return out->err;
        }
        s->ops->release(s, out);
    }
}

int storage_sync_append(struct yggr_storage *s, uint64_t truncate_from,
                        const struct yggr_entry *entries, uint32_t count,
                        struct yggr_log_id *durable, char *why, size_t why_size)
{
    struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND};
    req.as.append.truncate_from = truncate_from;
    req.as.append.entries = entries;
    req.as.append.count = count;
    int rc = sync_submit(s, &req);
    if (rc < 0) {
        return rc;
    }
    struct yggr_storage_done done;
    rc = sync_wait_for(s, req.tag, YGGR_STORAGE_DURABLE, &done, why, why_size);
    if (rc == 0 && durable != NULL) {
        *durable = done.log;
    }
    return rc;
}

int storage_sync_hard_state(struct yggr_storage *s, uint64_t term, uint64_t vote, char *why,
                            size_t why_size)
{
    struct yggr_storage_req req = {.type = YGGR_STORAGE_HARD_STATE};
    req.as.hard_state.term = term;
    req.as.hard_state.vote = vote;
    int rc = sync_submit(s, &req);
    struct yggr_storage_done done;
    return rc < 0 ? rc : sync_wait_for(s, req.tag, YGGR_STORAGE_DURABLE, &done, why, why_size);
}

int storage_sync_compact(struct yggr_storage *s, uint64_t below, char *why, size_t why_size)
{
    struct yggr_storage_req req = {.type = YGGR_STORAGE_COMPACT};
    req.as.compact.below = below;
    int rc = sync_submit(s, &req);
    struct yggr_storage_done done;
    return rc < 0 ? rc : sync_wait_for(s, req.tag, YGGR_STORAGE_DURABLE, &done, why, why_size);
}

/* Submit a read and wait for its completion of type `type` in *out (released again on
 * failure, keeping the reason in out->why). */
static int sync_read(struct yggr_storage *s, struct yggr_storage_req *req,
                     enum yggr_storage_done_type type, struct yggr_storage_done *out)
{
    int rc = sync_submit(s, req);
    if (rc < 0) {
        return rc;
    }
    rc = sync_wait_for(s, req->tag, type, out, out->why, sizeof(out->why));
    if (rc < 0 && out->type == type) {
        char why[sizeof(out->why)];
        memcpy(why, out->why, sizeof(why));
        s->ops->release(s, out);
        memcpy(out->why, why, sizeof(why));
    }
    return rc;
}

int storage_sync_read(struct yggr_storage *s, uint64_t first, uint32_t count,
                      uint32_t max_bytes, struct yggr_storage_done *out)
{
    struct yggr_storage_req req = {.type = YGGR_STORAGE_READ};
    req.as.read.first = first;
    req.as.read.count = count;
    req.as.read.max_bytes = max_bytes;
    return sync_read(s, &req, YGGR_STORAGE_READ_DONE, out);
}

int storage_sync_snap_read(struct yggr_storage *s, struct yggr_log_id snapshot, uint64_t offset,
                           uint32_t len, struct yggr_storage_done *out)
{
    struct yggr_storage_req req = {.type = YGGR_STORAGE_SNAP_READ};
    req.as.snap_read.snapshot = snapshot;
    req.as.snap_read.offset = offset;
    req.as.snap_read.len = len;
    return sync_read(s, &req, YGGR_STORAGE_SNAP_READ_DONE, out);
}

int storage_sync_snap_chunk(struct yggr_storage *s, const struct yggr_snapshot_meta *meta,
                            uint64_t offset, const void *data, uint32_t len, bool done,
                            char *why, size_t why_size)
{
    YGGR_ASSERT(meta != NULL);
    struct yggr_storage_req req = {.type = YGGR_STORAGE_SNAP_CHUNK};
    req.as.snap_chunk.meta = *meta;
    req.as.snap_chunk.offset = offset;
    req.as.snap_chunk.data = data;
    req.as.snap_chunk.len = len;
    req.as.snap_chunk.done = done;
    int rc = sync_submit(s, &req);
    if (rc < 0 || !done) {
        return rc;
    }
    struct yggr_storage_done out;
    return sync_wait_for(s, req.tag, YGGR_STORAGE_SNAP_INSTALLED, &out, why, why_size);
}

int storage_debug_check(struct yggr_storage *s, char *why, size_t why_size)
{
    YGGR_ASSERT(s != NULL);
    return segment_log_check(&s->log, why, why_size) ? 0 : YGGR_ERR_CORRUPT;
}

void storage_debug_range(struct yggr_storage *s, uint64_t *first, uint64_t *last,
                         uint32_t *segments)
{
    YGGR_ASSERT(s != NULL);
    *first = s->log.first;
    *last = s->log.last;
    *segments = s->log.seg_count;
}
