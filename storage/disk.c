/* SPDX-License-Identifier: MIT */
/* The disk actor: the driver-facing vtable, the rings, the disk thread's loop, staged
 * execution of each phase's io ops, errno mapping and the sticky error state. */

/*
 * Design notes
 * ------------
 * Threads and ownership.
 *   driver thread: bootstrap, recover, start, submit, flush, poll, release, close.
 *   disk thread:   everything under "owner: disk thread" in disk.h, and its own ring.
 *   apply thread:  snapshot writer/reader (snapshot.c), synchronous io through exec().
 *
 * Request flow.
 *   submit() copies the request into the request ring and its entry descriptors into the
 *   entry ring (retaining each payload buf: no per-entry allocation; a full ring returns
 *   YGGR_ERR_BUSY and the caller keeps the request). flush() publishes both heads and
 *   rings the doorbell if the disk thread announced it is parked. The disk thread works
 *   through the requests in order, one PHASE at a time:
 *     WRITE      consecutive APPEND / HARD_STATE / COMPACT requests: one group commit
 *                (batch.c), reported with ONE `DURABLE` completion;
 *     READ       consecutive READ requests (read.c);
 *     SNAP_READ  one snapshot chunk read (read.c);
 *     SNAP_CHUNK one incoming snapshot chunk, installed atomically when `done`
 *                (snapshot.c).
 *   Requests submitted while a phase is in flight wait for it and then all go into the
 *   next one: that is the group commit (no timer). Entry bufs are released as soon as the
 *   batch that wrote them completes.
 *
 * Stages. A phase's io ops are put in numbered stages; a stage is submitted when every op
 * of the previous stage completed successfully. This is how ordering that matters for
 * crash safety is expressed (unlink + directory fsync BEFORE new data; data fdatasync
 * BEFORE the rename that publishes a new segment) without long kernel link chains.
 * Inside a stage, a write and its fdatasync are linked (IO_LINK); a SEQUENTIAL stage runs
 * its ops one after another and stops at the first failure (unlinks that must leave a
 * prefix or a suffix of the log after a crash, of any length).
 *
 * Errors (per operation, disk_map_errno): EINTR and EAGAIN resubmit the op (and the rest
 * of its chain, which the kernel cancelled); ENOSPC/EDQUOT become YGGR_ERR_NOSPC; every
 * other failure of a write, sync, rename, unlink, open or allocate is YGGR_ERR_IO;
 * EBADF/EFAULT/EINVAL are programming errors (YGGR_UNREACHABLE). A short write is a
 * failure, never retried over. Reads report their error in the read's completion.
 *
 * Sticky error state (the SQLite pager's ERROR state): disk_fail() records the first
 * error with file, offset and errno text, queues ONE `FAILED` completion (a slot is
 * always kept free for it), and from then on nothing is reported durable: the running
 * phase is abandoned when its in-flight ops return, and every queued or later request is
 * dropped (bufs released) without completion. submit() returns YGGR_ERR_FATAL.
 *
 * Doorbell. The disk thread blocks in io->run() with the eventfd armed only when no
 * phase is in flight (a phase's completions wake it otherwise). Protocol:
 *   disk: parked = 1; [seq_cst] re-check the request ring; block; parked = 0; drain fd.
 *   drv:  publish head; [seq_cst] if exchange(parked, 0) == 1: write the eventfd.
 * With both sides sequentially consistent, either the disk thread sees the new head or
 * the driver sees parked == 1: a request can never sit unnoticed. poll() rings the same
 * doorbell, since a full completion ring also parks the disk thread.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "yggr_assert.h"

#define MIN_SEGMENT_BYTES (16u * 1024u)
#define RING_DEPTH 256u

static const struct yggr_storage_ops disk_ops;

/* ---- small helpers -------------------------------------------------------------------- */

static uint64_t next_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

static int spsc_init(struct disk_spsc *r, uint64_t slots)
{
    YGGR_ASSERT(slots >= 2);
    YGGR_ASSERT((slots & (slots - 1)) == 0); /* power of two */
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->mask = slots - 1;
    return 0;
}

uint64_t disk_random(struct yggr_storage *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

void disk_seg_path(const struct yggr_storage *s, uint64_t first_index, char *out, size_t size)
{
    char name[FORMAT_SEG_NAME_LEN + 1];
    format_segment_name(name, first_index);
    int n = snprintf(out, size, "%s/%s", s->log_dir, name);
    YGGR_ASSERT(n > 0 && (size_t)n < size);
}

static void ring_doorbell(struct yggr_storage *s)
{
    /* seq_cst: pairs with the disk thread's parked store + re-check (see notes). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_exchange_explicit(&s->parked, 0, memory_order_seq_cst) == 1) {
        uint64_t one = 1;
        ssize_t n = write(s->wake_fd, &one, sizeof(one));
        YGGR_ASSERT(n == (ssize_t)sizeof(one) || errno == EAGAIN); /* EAGAIN: already set */
    }
}

/* ---- completions (disk thread produces, driver consumes) ------------------------------ */

uint64_t disk_done_room(struct yggr_storage *s)
{
    uint64_t head = atomic_load_explicit(&s->done_ring.head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&s->done_ring.tail, memory_order_acquire);
    uint64_t used = head - tail;
    uint64_t capacity = s->done_ring.mask + 1;
    YGGR_ASSERT(used <= capacity);
    /* One slot stays reserved for the FAILED completion. */
    return used + 1 < capacity ? capacity - used - 1 : 0;
}

void disk_push_done(struct yggr_storage *s, const struct disk_done *done)
{
    uint64_t head = atomic_load_explicit(&s->done_ring.head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&s->done_ring.tail, memory_order_acquire);
    YGGR_ASSERT(head - tail <= s->done_ring.mask); /* room was reserved by the phase */
    s->dones[head & s->done_ring.mask] = *done;
    /* release: the slot contents are visible before the new head. */
    atomic_store_explicit(&s->done_ring.head, head + 1, memory_order_release);
    if (s->wake != NULL) {
        s->wake(s->wake_ctx);
    }
}

/* ---- the sticky error state ------------------------------------------------------------ */

void disk_fail(struct yggr_storage *s, int err, const char *fmt, ...)
{
    YGGR_ASSERT(err < 0);
    if (atomic_load_explicit(&s->failed, memory_order_relaxed)) {
        return; /* the first error is the one reported */
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail_why, sizeof(s->fail_why), fmt, ap);
    va_end(ap);
    s->fail_err = err;
    atomic_store_explicit(&s->failed, 1, memory_order_release);
    struct disk_done done = {.type = YGGR_STORAGE_FAILED, .err = err, .tag = s->last_tag};
    disk_push_done(s, &done);
}

int disk_map_errno(enum io_op_type type, int64_t result, bool *retry)
{
    YGGR_ASSERT(retry != NULL);
    *retry = false;
    if (result >= 0) {
        return 0;
    }
    int e = (int)-result;
    if (e == EINTR || e == EAGAIN) {
        *retry = true; /* not an error: resubmit */
        return 0;
    }
    if (e == EBADF || e == EFAULT) {
        YGGR_UNREACHABLE(); /* a bad fd or pointer is our bug, never a disk state */
    }
    switch (type) {
    case IO_WRITEV:
    case IO_FSYNC:
    case IO_FDATASYNC:
    case IO_FALLOCATE:
        if (e == EINVAL) {
            YGGR_UNREACHABLE(); /* invalid flags/offsets: our bug */
        }
        if (type == IO_FALLOCATE && e == EOPNOTSUPP) {
            return 0; /* no preallocation here: the zero writes allocate instead */
        }
        return e == ENOSPC || e == EDQUOT ? YGGR_ERR_NOSPC : YGGR_ERR_IO;
    case IO_OPEN:
    case IO_RENAME:
    case IO_UNLINK:
    case IO_MKDIR:
        if (e == ENOENT) {
            return YGGR_ERR_NOT_FOUND;
        }
        if (e == EEXIST) {
            return YGGR_ERR_EXISTS;
        }
        return e == ENOSPC || e == EDQUOT ? YGGR_ERR_NOSPC : YGGR_ERR_IO;
    case IO_READ:
    case IO_CLOSE:
    case IO_FTRUNCATE:
    case IO_FSTAT:
        return YGGR_ERR_IO;
    }
    YGGR_UNREACHABLE();
}

/* ---- staged execution of a phase's ops -------------------------------------------------- */

int disk_stages_reserve(struct yggr_storage *s, uint32_t ops)
{
    YGGR_ASSERT(ops < (1u << 24)); /* bounded by queue sizes */
    struct disk_stages *st = &s->st;
    YGGR_ASSERT(st->pending == 0); /* only between phases */
    if (ops <= st->op_cap) {
        return 0;
    }
    uint32_t cap = (uint32_t)next_pow2(ops);
    struct disk_op *grown = realloc(st->ops, cap * sizeof(*grown));
    if (grown == NULL) {
        return -ENOMEM;
    }
    st->ops = grown;
    st->op_cap = cap;
    return 0;
}

void disk_stages_reset(struct yggr_storage *s, void (*finish)(struct yggr_storage *s))
{
    struct disk_stages *st = &s->st;
    YGGR_ASSERT(st->pending == 0);
    YGGR_ASSERT(finish != NULL);
    st->op_count = 0;
    st->stage = 0;
    memset(st->stage_begin, 0, sizeof(st->stage_begin));
    memset(st->sequential, 0, sizeof(st->sequential));
    st->finish = finish;
}

static void op_done(struct io_op *io);

void disk_stage_sequential(struct yggr_storage *s, uint32_t stage)
{
    YGGR_ASSERT(stage < DISK_STAGES);
    YGGR_ASSERT(s->st.pending == 0);
    s->st.sequential[stage] = true;
}

struct disk_op *disk_stage_op(struct yggr_storage *s, uint32_t stage, const char *file)
{
    struct disk_stages *st = &s->st;
    YGGR_ASSERT(stage < DISK_STAGES && st->op_count < st->op_cap);
    YGGR_ASSERT(st->stage_begin[stage + 1] == st->op_count); /* stages in order */
    struct disk_op *op = &st->ops[st->op_count++];
    memset(op, 0, sizeof(*op));
    op->s = s;
    op->file = file;
    op->expect = -1;
    for (uint32_t k = stage + 1; k <= DISK_STAGES; k++) {
        st->stage_begin[k] = st->op_count;
    }
    return op;
}

static void submit_op(struct yggr_storage *s, struct disk_op *op)
{
    op->io.done = op_done;
    op->io.ctx = op;
    op->in_use = true;
    s->st.pending++;
    s->io->ops->submit(s->io, &op->io);
}

/* Submit the next stage that has ops; false when none is left. */
static bool submit_next_stage(struct yggr_storage *s)
{
    YGGR_ASSERT(s->st.pending == 0);
    YGGR_ASSERT(s->st.op_count <= s->st.op_cap);
    struct disk_stages *st = &s->st;
    while (st->stage < DISK_STAGES) {
        uint32_t begin = st->stage_begin[st->stage];
        uint32_t end = st->stage_begin[st->stage + 1];
        if (begin < end) {
            if (st->sequential[st->stage]) {
                st->next_op = begin + 1;
                submit_op(s, &st->ops[begin]);
                return true;
            }
            for (uint32_t i = begin; i < end; i++) {
                submit_op(s, &st->ops[i]);
            }
            return true;
        }
        st->stage++;
    }
    return false;
}

void disk_stages_start(struct yggr_storage *s)
{
    YGGR_ASSERT(s->st.pending == 0);
    YGGR_ASSERT(s->phase != DISK_PHASE_IDLE);
    s->st.stage = 0;
    if (!submit_next_stage(s)) {
        s->st.finish(s);
    }
}

/* Resubmit the ops of the current stage that failed with EINTR/EAGAIN, together with the
 * chain members the kernel cancelled behind them. Returns how many were resubmitted. */
static uint32_t resubmit_retries(struct yggr_storage *s)
{
    YGGR_ASSERT(s->st.pending == 0);
    YGGR_ASSERT(s->st.stage < DISK_STAGES);
    struct disk_stages *st = &s->st;
    uint32_t count = 0;
    bool carry = false; /* the previous linked op is being resubmitted */
    for (uint32_t i = st->stage_begin[st->stage]; i < st->stage_begin[st->stage + 1]; i++) {
        struct disk_op *op = &st->ops[i];
        bool retry = false;
        int64_t r = op->io.result;
        if (r == -EINTR || r == -EAGAIN || (r == -ECANCELED && carry)) {
            retry = true;
        }
        carry = retry && (op->io.flags & IO_LINK);
        if (retry) {
            submit_op(s, op);
            count++;
        }
    }
    return count;
}

/* Check one completed op; false when it failed for good (the storage is then failed).
 * *retry tells the caller to resubmit it (EINTR/EAGAIN). */
bool disk_check_op(struct yggr_storage *s, struct disk_op *op, bool *retry)
{
    YGGR_ASSERT(op != NULL && retry != NULL);
    YGGR_ASSERT(!op->in_use);
    int64_t r = op->io.result;
    *retry = false;
    if (r == -ECANCELED) {
        return true; /* its chain predecessor's failure is what gets reported */
    }
    int err = disk_map_errno(op->io.type, r, retry);
    if (*retry) {
        return true;
    }
    if ((err == YGGR_ERR_NOT_FOUND && op->tolerate_enoent) || op->nonfatal) {
        return true;
    }
    if (err != 0) {
        disk_fail(s, err, "%s: %s at offset %llu failed: %s", op->file, io_op_name(op->io.type),
                  (unsigned long long)op->io.offset, strerror((int)-r));
        return false;
    }
    if (op->expect >= 0 && r != op->expect) {
        disk_fail(s, YGGR_ERR_IO, "%s: short %s at offset %llu: %lld of %lld bytes", op->file,
                  io_op_name(op->io.type), (unsigned long long)op->io.offset, (long long)r,
                  (long long)op->expect);
        return false;
    }
    return true;
}

static void stage_complete(struct yggr_storage *s)
{
    YGGR_ASSERT(s->st.pending == 0);
    YGGR_ASSERT(s->st.stage < DISK_STAGES);
    struct disk_stages *st = &s->st;
    bool ok = true;
    for (uint32_t i = st->stage_begin[st->stage]; i < st->stage_begin[st->stage + 1]; i++) {
        bool retry = false;
        ok = disk_check_op(s, &st->ops[i], &retry) && ok;
    }
    if (ok && !atomic_load_explicit(&s->failed, memory_order_relaxed)) {
        if (resubmit_retries(s) > 0) {
            return;
        }
        st->stage++;
        if (submit_next_stage(s)) {
            return;
        }
    }
    /* Finished (or failed: finish sees s->failed and abandons the phase). */
    st->finish(s);
}

/* Sequential stage: after `op`, submit the next one (or `op` again after EINTR/EAGAIN).
 * Returns true when something was submitted. */
static bool continue_sequence(struct yggr_storage *s, struct disk_op *op)
{
    struct disk_stages *st = &s->st;
    if (!st->sequential[st->stage]) {
        return false;
    }
    int64_t r = op->io.result;
    if (r == -EINTR || r == -EAGAIN) {
        submit_op(s, op);
        return true;
    }
    bool ok = r >= 0 || (r == -ENOENT && op->tolerate_enoent);
    if (!ok || st->next_op >= st->stage_begin[st->stage + 1]) {
        return false; /* the rest is not run; stage_complete() reports the failure */
    }
    submit_op(s, &st->ops[st->next_op++]);
    return true;
}

static void op_done(struct io_op *io)
{
    struct disk_op *op = io->ctx;
    struct yggr_storage *s = op->s;
    YGGR_ASSERT(op->in_use);
    YGGR_ASSERT(s->st.pending > 0);
    op->in_use = false;
    s->st.pending--;
    if (continue_sequence(s, op)) {
        return;
    }
    if (s->st.pending == 0) {
        stage_complete(s);
    }
}

/* ---- consuming requests --------------------------------------------------------------- */

void disk_consume(struct yggr_storage *s, uint64_t req_end, uint64_t entry_end)
{
    uint64_t etail = atomic_load_explicit(&s->entry_ring.tail, memory_order_relaxed);
    YGGR_ASSERT(entry_end >= etail);
    YGGR_ASSERT(req_end >= atomic_load_explicit(&s->req_ring.tail, memory_order_relaxed));
    /* References go back in runs of equal buffers (entries of a batch share a chunk):
     * one atomic per run, not per entry. */
    struct yggr_buf *run = NULL;
    uint32_t run_len = 0;
    for (uint64_t p = etail; p < entry_end; p++) {
        struct yggr_entry *e = &s->entries[p & s->entry_ring.mask];
        if (e->buf != run) {
            yggr_buf_release_n(run, run_len);
            run = e->buf;
            run_len = 0;
        }
        run_len++;
        e->buf = NULL;
    }
    yggr_buf_release_n(run, run_len);
    /* release: we are done reading these slots before the producer may reuse them. */
    atomic_store_explicit(&s->entry_ring.tail, entry_end, memory_order_release);
    atomic_store_explicit(&s->req_ring.tail, req_end, memory_order_release);
}

/* Failed state: drop every available request without completing it. */
static void drop_requests(struct yggr_storage *s, uint64_t head)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    YGGR_ASSERT(head >= s->req_cursor);
    uint64_t entry_end = s->entry_cursor;
    for (uint64_t r = s->req_cursor; r < head; r++) {
        struct disk_req *req = &s->reqs[r & s->req_ring.mask];
        if (req->type == YGGR_STORAGE_APPEND) {
            entry_end = req->entry_pos + req->count;
        } else if (req->type == YGGR_STORAGE_SNAP_CHUNK) {
            snapshot_chunk_free(req->chunk);
            req->chunk = NULL;
        }
    }
    s->req_cursor = head;
    s->req_partial = 0;
    s->entry_cursor = entry_end;
    disk_consume(s, head, entry_end);
}

/* ---- the disk thread -------------------------------------------------------------------- */

/* Start the next phase if possible; true when one started. */
static bool start_phase(struct yggr_storage *s, uint64_t head)
{
    YGGR_ASSERT(s->phase == DISK_PHASE_IDLE);
    uint64_t avail = head - s->req_cursor;
    if (avail == 0) {
        return false;
    }
    const struct disk_req *req = &s->reqs[s->req_cursor & s->req_ring.mask];
    switch (req->type) {
    case YGGR_STORAGE_APPEND:
    case YGGR_STORAGE_HARD_STATE:
    case YGGR_STORAGE_COMPACT:
        return batch_start(s, avail);
    case YGGR_STORAGE_READ:
        return read_start(s, avail) > 0;
    case YGGR_STORAGE_SNAP_READ:
        return read_snap_start(s);
    case YGGR_STORAGE_SNAP_CHUNK:
        return snapshot_chunk_start(s);
    }
    YGGR_UNREACHABLE();
}

static void drain_doorbell(struct yggr_storage *s)
{
    uint64_t v;
    ssize_t n = read(s->wake_fd, &v, sizeof(v));
    YGGR_ASSERT(n == (ssize_t)sizeof(v) || (n < 0 && errno == EAGAIN));
}

/* Block until something can change (no phase was started this round). Only with no phase
 * in flight do we ask to be woken by the doorbell: a phase in flight ends with a
 * completion anyway. */
static int wait_for_work(struct yggr_storage *s, uint64_t head)
{
    YGGR_ASSERT(head >= s->req_cursor);
    if (s->phase != DISK_PHASE_IDLE || (atomic_load(&s->stopping) && batch_prep_busy(s))) {
        return s->io->ops->run(s->io, -1, true);
    }
    atomic_store_explicit(&s->parked, 1, memory_order_seq_cst);
    uint64_t now = atomic_load_explicit(&s->req_ring.head, memory_order_seq_cst);
    bool retry = now != head || atomic_load(&s->stopping);
    if (!retry && now != s->req_cursor && !atomic_load(&s->failed)) {
        /* Requests wait but could not start (no completion room, or the next segment is
         * not prepared yet). Try again now that we are parked: whatever unblocks us later
         * wakes us (poll() rings the doorbell, a preparation op completes). */
        retry = start_phase(s, now);
    }
    int rc = 0;
    if (!retry) {
        rc = s->io->ops->run(s->io, s->wake_fd, true);
    }
    atomic_store_explicit(&s->parked, 0, memory_order_seq_cst);
    drain_doorbell(s);
    return rc;
}

static bool thread_done(struct yggr_storage *s, uint64_t head)
{
    return atomic_load(&s->stopping) && s->phase == DISK_PHASE_IDLE &&
           !batch_prep_busy(s) && head == s->req_cursor;
}

static void *disk_main(void *arg)
{
    YGGR_ASSERT(arg != NULL);
    struct yggr_storage *s = arg;
    pthread_setname_np(pthread_self(), "yggr-disk");
    int rc = s->io->ops->thread_init(s->io, RING_DEPTH);
    if (rc < 0) {
        disk_fail(s, YGGR_ERR_IO, "%s: cannot set up io_uring: %s", s->dir, strerror(-rc));
    }
    for (;;) {
        uint64_t head = atomic_load_explicit(&s->req_ring.head, memory_order_acquire);
        bool failed = atomic_load_explicit(&s->failed, memory_order_acquire);
        if (failed && s->phase == DISK_PHASE_IDLE) {
            drop_requests(s, head);
        }
        bool started = false;
        if (!failed && s->phase == DISK_PHASE_IDLE) {
            started = start_phase(s, head);
        }
        /* Prepare the next segment; when stopping, only if requests still need it. */
        if (!failed && rc == 0 && (!atomic_load(&s->stopping) || head != s->req_cursor)) {
            batch_prep_step(s);
        }
        if (thread_done(s, head) || (rc < 0 && s->phase == DISK_PHASE_IDLE)) {
            break;
        }
        int r = started ? s->io->ops->run(s->io, -1, false) : wait_for_work(s, head);
        if (r < 0) {
            /* The ring itself failed (not an op): ops in flight are in an unknown state
             * and their memory may still be used by the kernel. Nothing safe remains. */
            YGGR_PANIC("%s: io_uring_enter failed: %s", s->dir, strerror(-r));
        }
    }
    if (rc == 0) {
        s->io->ops->thread_exit(s->io);
    }
    atomic_store_explicit(&s->exited, 1, memory_order_release);
    return NULL;
}

static int disk_start(struct yggr_storage *s, yggr_wake_fn wake, void *wake_ctx, int cpu)
{
    YGGR_ASSERT(s != NULL);
    if (s->started || !s->recovered) {
        return YGGR_ERR_INVALID; /* recover() must run first, start() once */
    }
    recovery_free(s); /* recover()'s output is valid until start() */
    s->wake = wake;
    s->wake_ctx = wake_ctx;
    int rc = pthread_create(&s->thread, NULL, disk_main, s);
    if (rc != 0) {
        return YGGR_ERR_NOMEM;
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((size_t)cpu, &set);
        pthread_setaffinity_np(s->thread, sizeof(set), &set);
    }
    s->started = true;
    return 0;
}

/* ---- driver-side ops ---------------------------------------------------------------------- */

static int validate_append(const struct yggr_storage *s, const struct yggr_storage_req *req)
{
    const struct yggr_entry *e = req->as.append.entries;
    uint32_t n = req->as.append.count;
    YGGR_ASSERT(req->type == YGGR_STORAGE_APPEND);
    if ((n > 0 && e == NULL) || n > s->entry_ring.mask + 1) {
        return YGGR_ERR_INVALID;
    }
    if (req->as.append.truncate_from != 0 && n > 0 && e[0].index != req->as.append.truncate_from) {
        return YGGR_ERR_INVALID;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (e[i].index == 0 || e[i].index != e[0].index + i || e[i].type > YGGR_ENTRY_CONFIG ||
            (i > 0 && e[i].term < e[i - 1].term)) {
            return YGGR_ERR_INVALID;
        }
        if (e[i].type != YGGR_ENTRY_NOOP && e[i].len > 0 && e[i].data == NULL) {
            return YGGR_ERR_INVALID;
        }
        if (e[i].type == YGGR_ENTRY_CONFIG &&
            (e[i].change < YGGR_CHANGE_ADD_VOTER || e[i].change > YGGR_CHANGE_PROMOTE_LEARNER ||
             e[i].node == 0)) {
            return YGGR_ERR_INVALID;
        }
        if ((uint64_t)format_record_size(&e[i]) + FORMAT_SEG_HEADER_BYTES > s->opt.segment_bytes) {
            return YGGR_ERR_TOO_LARGE; /* a record must fit in one segment */
        }
    }
    return 0;
}

/* Copy one entry descriptor into the ring, taking a reference on its payload. Borrowed
 * payloads without a buf are copied (slow path; the runtime always passes bufs). */
/* Take one reference per caller buffer and entry, one atomic per run of equal buffers. */
static void retain_runs(const struct yggr_entry *e, uint32_t n)
{
    struct yggr_buf *run = NULL;
    uint32_t run_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct yggr_buf *b = e[i].type == YGGR_ENTRY_NOOP || e[i].len == 0 ? NULL : e[i].buf;
        if (b != run) {
            yggr_buf_retain_n(run, run_len);
            run = b;
            run_len = 0;
        }
        run_len++;
    }
    yggr_buf_retain_n(run, run_len);
}

static int copy_entry(struct yggr_entry *dst, const struct yggr_entry *src)
{
    YGGR_ASSERT(dst != NULL && src != NULL);
    YGGR_ASSERT(src->type <= YGGR_ENTRY_CONFIG);
    *dst = *src;
    if (src->type == YGGR_ENTRY_NOOP || src->len == 0) {
        dst->data = NULL;
        dst->len = src->type == YGGR_ENTRY_NOOP ? 0 : src->len;
        dst->buf = NULL;
        return 0;
    }
    if (src->buf != NULL) {
        return 0; /* the caller takes the references, in runs */
    }
    struct yggr_buf *b = yggr_buf_alloc(src->len);
    if (b == NULL) {
        return YGGR_ERR_NOMEM;
    }
    memcpy(b->data, src->data, src->len);
    dst->buf = b;
    dst->data = b->data;
    return 0;
}

static int enqueue_entries(struct yggr_storage *s, const struct yggr_storage_req *req,
                           struct disk_req *slot)
{
    YGGR_ASSERT(req->type == YGGR_STORAGE_APPEND);
    YGGR_ASSERT(slot != NULL);
    uint32_t n = req->as.append.count;
    uint64_t tail = atomic_load_explicit(&s->entry_ring.tail, memory_order_acquire);
    if (s->entry_head + n - tail > s->entry_ring.mask + 1) {
        return YGGR_ERR_BUSY;
    }
    for (uint32_t i = 0; i < n; i++) {
        int rc = copy_entry(&s->entries[(s->entry_head + i) & s->entry_ring.mask],
                            &req->as.append.entries[i]);
        if (rc < 0) {
            for (uint32_t j = 0; j < i; j++) {
                const struct yggr_entry *src = &req->as.append.entries[j];
                struct yggr_entry *dst = &s->entries[(s->entry_head + j) & s->entry_ring.mask];
                if (dst->buf != src->buf) {
                    yggr_buf_release(dst->buf); /* a copy made by copy_entry */
                }
            }
            return rc;
        }
    }
    retain_runs(req->as.append.entries, n);
    slot->entry_pos = s->entry_head;
    slot->count = n;
    slot->a = req->as.append.truncate_from;
    s->entry_head += n;
    return 0;
}

static int fill_request(struct yggr_storage *s, const struct yggr_storage_req *req,
                        struct disk_req *slot)
{
    YGGR_ASSERT(s != NULL && req != NULL);
    YGGR_ASSERT(slot != NULL);
    memset(slot, 0, sizeof(*slot));
    slot->type = req->type;
    slot->tag = req->tag;
    switch (req->type) {
    case YGGR_STORAGE_APPEND: {
        int rc = validate_append(s, req);
        return rc < 0 ? rc : enqueue_entries(s, req, slot);
    }
    case YGGR_STORAGE_HARD_STATE:
        slot->a = req->as.hard_state.term;
        slot->b = req->as.hard_state.vote;
        return 0;
    case YGGR_STORAGE_READ:
        slot->a = req->as.read.first;
        slot->count = req->as.read.count;
        slot->b = req->as.read.max_bytes;
        return req->as.read.first == 0 ? YGGR_ERR_INVALID : 0;
    case YGGR_STORAGE_SNAP_READ:
        slot->snap = req->as.snap_read.snapshot;
        slot->a = req->as.snap_read.offset;
        slot->b = req->as.snap_read.len;
        return 0;
    case YGGR_STORAGE_SNAP_CHUNK:
        return snapshot_chunk_copy(req, &slot->chunk);
    case YGGR_STORAGE_COMPACT:
        slot->a = req->as.compact.below;
        return 0;
    }
    return YGGR_ERR_INVALID;
}

static int disk_submit(struct yggr_storage *s, const struct yggr_storage_req *req)
{
    YGGR_ASSERT(s != NULL && req != NULL);
    if (atomic_load_explicit(&s->failed, memory_order_acquire)) {
        return YGGR_ERR_FATAL;
    }
    if (!s->started) {
        return YGGR_ERR_INVALID;
    }
    uint64_t tail = atomic_load_explicit(&s->req_ring.tail, memory_order_acquire);
    if (s->req_head - tail > s->req_ring.mask) {
        return YGGR_ERR_BUSY;
    }
    struct disk_req *slot = &s->reqs[s->req_head & s->req_ring.mask];
    int rc = fill_request(s, req, slot);
    if (rc < 0) {
        return rc;
    }
    s->req_head++;
    YGGR_ASSERT(s->req_head - tail <= s->req_ring.mask + 1);
    return 0;
}

static void disk_flush(struct yggr_storage *s)
{
    YGGR_ASSERT(s != NULL);
    /* release: the copied descriptors are visible before the heads that publish them;
     * entries first, so a visible request always has visible entries. */
    atomic_store_explicit(&s->entry_ring.head, s->entry_head, memory_order_release);
    atomic_store_explicit(&s->req_ring.head, s->req_head, memory_order_seq_cst);
    ring_doorbell(s);
}

static bool disk_poll(struct yggr_storage *s, struct yggr_storage_done *out)
{
    YGGR_ASSERT(s != NULL && out != NULL);
    uint64_t tail = atomic_load_explicit(&s->done_ring.tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&s->done_ring.head, memory_order_acquire);
    if (tail == head) {
        return false;
    }
    const struct disk_done *d = &s->dones[tail & s->done_ring.mask];
    memset(out, 0, sizeof(*out));
    out->type = d->type;
    out->tag = d->tag;
    out->err = d->err;
    out->log = d->log;
    out->has_hard_state = d->has_hard_state;
    out->term = d->term;
    out->vote = d->vote;
    out->snapshot = d->snapshot;
    if (d->type == YGGR_STORAGE_READ_DONE) {
        read_fill_done(d, out);
    } else if (d->type == YGGR_STORAGE_SNAP_READ_DONE) {
        out->buf = d->buf;
        out->data = d->buf != NULL ? d->buf->data : NULL;
        out->len = d->len;
    } else if (d->type == YGGR_STORAGE_FAILED) {
        snprintf(out->why, sizeof(out->why), "%s", s->fail_why);
    }
    /* release: done reading the slot before the disk thread may reuse it. */
    atomic_store_explicit(&s->done_ring.tail, tail + 1, memory_order_release);
    ring_doorbell(s); /* the disk thread may be parked waiting for completion room */
    return true;
}

static void disk_release(struct yggr_storage *s, struct yggr_storage_done *done)
{
    YGGR_ASSERT(s != NULL && done != NULL);
    if (done->type == YGGR_STORAGE_READ_DONE && done->entries != NULL) {
        read_release_entries(done->entries);
    } else if (done->type == YGGR_STORAGE_SNAP_READ_DONE) {
        yggr_buf_release(done->buf);
    }
    done->entries = NULL;
    done->count = 0;
    done->buf = NULL;
    done->data = NULL;
}

/* close(): give back whatever is still queued in either direction. */
static void drain_leftovers(struct yggr_storage *s)
{
    YGGR_ASSERT(!s->started || atomic_load(&s->exited));
    struct yggr_storage_done done;
    while (disk_poll(s, &done)) {
        disk_release(s, &done);
    }
    uint64_t rtail = atomic_load(&s->req_ring.tail);
    for (uint64_t r = rtail; r < s->req_head; r++) {
        struct disk_req *req = &s->reqs[r & s->req_ring.mask];
        if (req->type == YGGR_STORAGE_SNAP_CHUNK && r >= s->req_cursor) {
            snapshot_chunk_free(req->chunk);
        }
    }
    for (uint64_t p = atomic_load(&s->entry_ring.tail); p < s->entry_head; p++) {
        yggr_buf_release(s->entries[p & s->entry_ring.mask].buf);
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void disk_close(struct yggr_storage *s)
{
    if (s == NULL) {
        return;
    }
    if (s->started) {
        disk_flush(s);
        atomic_store(&s->stopping, 1);
        uint64_t one = 1;
        ssize_t n = write(s->wake_fd, &one, sizeof(one));
        YGGR_ASSERT(n == (ssize_t)sizeof(one) || errno == EAGAIN);
        /* The worker completes every request first; it may need completion room, so
         * keep draining completions until it is gone. */
        while (!atomic_load_explicit(&s->exited, memory_order_acquire)) {
            struct yggr_storage_done done;
            while (disk_poll(s, &done)) {
                disk_release(s, &done);
            }
            usleep(200);
        }
        pthread_join(s->thread, NULL);
    }
    drain_leftovers(s);
    for (uint32_t k = 0; k < s->log.seg_count; k++) {
        close_fd(&s->log.segs[k].fd);
    }
    close_fd(&s->hs_fd);
    close_fd(&s->dir_fd);
    close_fd(&s->log_dir_fd);
    close_fd(&s->prep.fd);
    snapshot_close_incoming(s);
    recovery_free(s);
    storage_sync_free(s);
    segment_log_deinit(&s->log);
    snapshot_registry_deinit(&s->snaps);
    free(s->st.ops);
    free(s->batch.arena);
    free(s->batch.iov);
    free(s->batch.zeros);
    free(s->batch.unlink_paths);
    free(s->reqs);
    free(s->entries);
    free(s->dones);
    close_fd(&s->wake_fd);
    if (s->io_owned) {
        s->io->ops->destroy(s->io);
    }
    free(s);
}

static int disk_bootstrap(struct yggr_storage *s, const struct yggr_storage_meta *meta,
                          char *why, size_t why_size)
{
    YGGR_ASSERT(s != NULL);
    if (s->started || meta == NULL) {
        return YGGR_ERR_INVALID;
    }
    return recovery_bootstrap(s, meta, why, why_size);
}

static int disk_recover(struct yggr_storage *s, struct yggr_storage_state *out, char *why,
                        size_t why_size)
{
    YGGR_ASSERT(s != NULL);
    if (s->started || s->recovered || out == NULL) {
        return YGGR_ERR_INVALID;
    }
    int rc = recovery_run(s, out, why, why_size);
    s->recovered = rc == 0;
    return rc;
}

static const struct yggr_storage_ops disk_ops = {
    .bootstrap = disk_bootstrap,
    .recover = disk_recover,
    .start = disk_start,
    .submit = disk_submit,
    .flush = disk_flush,
    .poll = disk_poll,
    .release = disk_release,
    .snapshot_begin = snapshot_begin,
    .snapshot_write = snapshot_write,
    .snapshot_commit = snapshot_commit,
    .snapshot_abort = snapshot_abort,
    .snapshot_open = snapshot_open,
    .snapshot_read = snapshot_read,
    .snapshot_close = snapshot_close,
    .close = disk_close,
};

/* ---- creation ------------------------------------------------------------------------------ */

static void apply_defaults(struct storage_options *o)
{
    YGGR_ASSERT(o != NULL);
    if (o->segment_bytes == 0) {
        o->segment_bytes = 64u << 20;
    }
    o->queue_entries = (uint32_t)next_pow2(o->queue_entries == 0 ? 1u << 16 : o->queue_entries);
    if (o->queue_entries < 64) {
        o->queue_entries = 64;
    }
    if (o->queue_requests == 0) {
        o->queue_requests = o->queue_entries < 8192 ? o->queue_entries : 8192;
    }
    o->queue_requests = (uint32_t)next_pow2(o->queue_requests < 64 ? 64 : o->queue_requests);
    o->tail_entries = o->tail_entries == 0 ? 4096 : o->tail_entries;
    o->tail_bytes = o->tail_bytes == 0 ? 16u << 20 : o->tail_bytes;
    o->prep_chunk_bytes = o->prep_chunk_bytes == 0 ? 1u << 20 : o->prep_chunk_bytes;
    o->batch_bytes = o->batch_bytes == 0 ? 4u << 20 : o->batch_bytes;
}

static int set_paths(struct yggr_storage *s, const char *dir)
{
    YGGR_ASSERT(s != NULL);
    YGGR_ASSERT(dir != NULL);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    if (n == 0 || n >= 300) {
        return YGGR_ERR_INVALID;
    }
    memcpy(s->dir, dir, n);
    s->dir[n] = '\0';
    snprintf(s->log_dir, sizeof(s->log_dir), "%s/" FORMAT_LOG_DIR, s->dir);
    snprintf(s->meta_path, sizeof(s->meta_path), "%s/" FORMAT_META_NAME, s->dir);
    snprintf(s->hs_path, sizeof(s->hs_path), "%s/" FORMAT_HARDSTATE_NAME, s->dir);
    snprintf(s->ready_path, sizeof(s->ready_path), "%s/" FORMAT_READY_NAME, s->log_dir);
    snprintf(s->prep_path, sizeof(s->prep_path), "%s/" FORMAT_PREP_NAME, s->log_dir);
    snprintf(s->partial_path, sizeof(s->partial_path), "%s/" FORMAT_SNAP_PARTIAL_NAME, s->dir);
    s->opt.dir = s->dir;
    return 0;
}

static int alloc_buffers(struct yggr_storage *s)
{
    YGGR_ASSERT(s->reqs == NULL);
    YGGR_ASSERT((s->opt.queue_entries & (s->opt.queue_entries - 1)) == 0);
    const struct storage_options *o = &s->opt;
    s->reqs = calloc(o->queue_requests, sizeof(*s->reqs));
    s->entries = calloc(o->queue_entries, sizeof(*s->entries));
    s->dones = calloc(2u * o->queue_requests, sizeof(*s->dones));
    s->batch.arena = malloc(o->batch_bytes);
    s->batch.iov = calloc(DISK_MAX_IOV, sizeof(*s->batch.iov));
    s->batch.zeros = calloc(1, 64u << 10);
    if (s->reqs == NULL || s->entries == NULL || s->dones == NULL || s->batch.arena == NULL ||
        s->batch.iov == NULL || s->batch.zeros == NULL) {
        return YGGR_ERR_NOMEM;
    }
    s->batch.arena_cap = o->batch_bytes;
    spsc_init(&s->req_ring, o->queue_requests);
    spsc_init(&s->entry_ring, o->queue_entries);
    spsc_init(&s->done_ring, 2u * (uint64_t)o->queue_requests);
    return segment_log_init(&s->log, o->segment_bytes, 1) < 0 ? YGGR_ERR_NOMEM : 0;
}

int storage_disk_create_ex(const struct storage_options *options, struct storage_io *io,
                           const struct yggr_storage_ops **ops, struct yggr_storage **out,
                           char *why, size_t why_size)
{
    YGGR_ASSERT(options != NULL && ops != NULL && out != NULL);
    struct storage_options o = *options;
    apply_defaults(&o);
    if (o.dir == NULL || o.segment_bytes < MIN_SEGMENT_BYTES || o.segment_bytes > UINT32_MAX ||
        o.batch_bytes < 64u << 10) {
        snprintf(why, why_size, "invalid disk options (dir %s, segment_bytes %llu)",
                 o.dir != NULL ? o.dir : "(null)", (unsigned long long)o.segment_bytes);
        return YGGR_ERR_CONFIG;
    }
    struct yggr_storage *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return YGGR_ERR_NOMEM;
    }
    s->opt = o;
    s->wake_fd = s->dir_fd = s->log_dir_fd = s->hs_fd = s->prep.fd = s->snap_cache.fd = -1;
    int rc = set_paths(s, o.dir);
    if (rc < 0) {
        snprintf(why, why_size, "data directory path empty or too long: %s", o.dir);
        goto err_free;
    }
    rc = alloc_buffers(s) < 0 || snapshot_registry_init(&s->snaps) < 0 ? YGGR_ERR_NOMEM : 0;
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rc == 0 && s->wake_fd < 0) {
        rc = YGGR_ERR_NOMEM;
    }
    s->io = io != NULL ? io : uring_io_create();
    s->io_owned = io == NULL;
    if (rc < 0 || s->io == NULL) {
        snprintf(why, why_size, "%s: out of memory creating the disk storage", s->dir);
        rc = YGGR_ERR_NOMEM;
        goto err_free;
    }
    if (getrandom(&s->rng, sizeof(s->rng), 0) != (ssize_t)sizeof(s->rng)) {
        s->rng = (uint64_t)(uintptr_t)s ^ 0x9E3779B97F4A7C15ull;
    }
    s->rng |= 1;
    s->ops = &disk_ops;
    *ops = &disk_ops;
    *out = s;
    return 0;
err_free:
    s->io_owned = s->io_owned && s->io != NULL;
    disk_close(s);
    return rc;
}
