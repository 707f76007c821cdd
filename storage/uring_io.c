/* SPDX-License-Identifier: MIT */
/* io.h over io_uring: the disk thread's ring, its submit/copy/run loop and the doorbell. */

/*
 * Design notes
 * ------------
 * One ring per disk thread, created on that thread by thread_init() (SINGLE_ISSUER and
 * COOP_TASKRUN when the kernel has them). Ops move through three places:
 *
 *     submit() --> pending (software queue) --flush--> SQ/kernel --CQE--> done --> callback
 *
 *   - flush: ops leave `pending` in order. A linked chain (IO_LINK) is placed into the SQ
 *     whole: when the SQ has less room than the chain, the SQ is submitted first (a full SQ
 *     is handled by flushing, never by dropping or splitting; the kernel would break a
 *     chain cut by a submit boundary). ftruncate and fstat have no opcode in liburing 2.1:
 *     they run synchronously at flush time and go straight to `done` (never linked).
 *   - wait: submit_and_wait(1) only when nothing is already completed; -EINTR retries;
 *     -EAGAIN/-EBUSY (CQ overflow, no memory for requests) reap the CQ first and retry.
 *   - copy: every available CQE is copied into its op (`result`) and queued on `done`;
 *     the CQ is advanced before any callback runs, so a callback that submits cannot
 *     see a stale CQE.
 *   - run: callbacks run from the `done` queue in completion order. They may submit new
 *     ops, which wait in `pending` until the next run(): no recursion.
 *   - doorbell: when run(block) is given a wake fd, a POLL_ADD for POLLIN on it is armed
 *     once (user_data = the wake token) and stays armed until it fires; the caller reads
 *     the eventfd to clear it before it blocks again.
 * Errors of the ring itself (not of an op) are returned as -errno; op errors are only
 * reported through op->result and mapped by the caller per operation.
 */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "yggr_assert.h"

#define URING_CQE_BATCH 64

struct uring_io {
    struct storage_io base;
    struct io_uring ring;
    bool ring_ready;
    uint32_t sq_entries;
    struct io_op *pending_head;   /* submitted, not yet in the SQ */
    struct io_op *pending_tail;
    struct io_op *done_head;      /* completed, callback not yet run */
    struct io_op *done_tail;
    uint32_t in_kernel;           /* SQEs handed over whose CQE we have not seen */
    bool wake_armed;
};

static char wake_token; /* user_data of the doorbell poll */

static struct uring_io *to_uring(struct storage_io *io)
{
    YGGR_ASSERT(io != NULL);
    return (struct uring_io *)io;
}

static void push(struct io_op **head, struct io_op **tail, struct io_op *op)
{
    op->next = NULL;
    if (*tail != NULL) {
        (*tail)->next = op;
    } else {
        *head = op;
    }
    *tail = op;
}

static struct io_op *pop(struct io_op **head, struct io_op **tail)
{
    struct io_op *op = *head;
    if (op != NULL) {
        *head = op->next;
        if (*head == NULL) {
            *tail = NULL;
        }
        op->next = NULL;
    }
    return op;
}

static int uring_thread_init(struct storage_io *io, uint32_t depth)
{
    struct uring_io *u = to_uring(io);
    YGGR_ASSERT(!u->ring_ready);
    YGGR_ASSERT(depth >= 8);
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(depth, &u->ring, &p);
    if (rc == -EINVAL) {
        /* Kernel older than 6.0: no SINGLE_ISSUER / COOP_TASKRUN. */
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(depth, &u->ring, &p);
    }
    if (rc < 0) {
        return rc;
    }
    u->sq_entries = p.sq_entries;
    u->ring_ready = true;
    return 0;
}

static void uring_thread_exit(struct storage_io *io)
{
    struct uring_io *u = to_uring(io);
    if (u->ring_ready) {
        /* Only the doorbell poll may still be in the kernel; exit cancels it. */
        YGGR_ASSERT(u->in_kernel <= (u->wake_armed ? 1u : 0u));
        YGGR_ASSERT(u->pending_head == NULL);
        io_uring_queue_exit(&u->ring);
        u->ring_ready = false;
        u->wake_armed = false;
        u->in_kernel = 0;
    }
}

static void uring_submit(struct storage_io *io, struct io_op *op)
{
    struct uring_io *u = to_uring(io);
    YGGR_ASSERT(op != NULL && op->done != NULL);
    YGGR_ASSERT(u->ring_ready);
    op->result = 0;
    push(&u->pending_head, &u->pending_tail, op);
}

static void prep_sqe(struct io_uring_sqe *sqe, struct io_op *op)
{
    switch (op->type) {
    case IO_OPEN:
        io_uring_prep_openat(sqe, AT_FDCWD, op->path, op->open_flags, (mode_t)op->mode);
        break;
    case IO_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    case IO_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->iov, op->iov_count, op->offset);
        sqe->rw_flags = (op->flags & IO_DSYNC) ? RWF_DSYNC : 0;
        break;
    case IO_READ:
        io_uring_prep_read(sqe, op->fd, op->buf, op->len, op->offset);
        break;
    case IO_FSYNC:
        io_uring_prep_fsync(sqe, op->fd, 0);
        break;
    case IO_FDATASYNC:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
    case IO_FALLOCATE:
        io_uring_prep_fallocate(sqe, op->fd, 0, (off_t)op->offset, (off_t)op->length);
        break;
    case IO_RENAME:
        io_uring_prep_renameat(sqe, AT_FDCWD, op->path, AT_FDCWD, op->path2, 0);
        break;
    case IO_UNLINK:
        io_uring_prep_unlinkat(sqe, AT_FDCWD, op->path, 0);
        break;
    case IO_MKDIR:
        io_uring_prep_mkdirat(sqe, AT_FDCWD, op->path, (mode_t)op->mode);
        break;
    case IO_FTRUNCATE:
    case IO_FSTAT:
        YGGR_UNREACHABLE(); /* executed synchronously by flush_pending() */
    }
    if (op->flags & IO_LINK) {
        sqe->flags |= IOSQE_IO_LINK;
    }
    io_uring_sqe_set_data(sqe, op);
}

/* Copy every available CQE into its op and queue it on `done`. */
static void reap(struct uring_io *u)
{
    struct io_uring_cqe *cqes[URING_CQE_BATCH];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes, URING_CQE_BATCH);
        for (unsigned i = 0; i < n; i++) {
            void *data = io_uring_cqe_get_data(cqes[i]);
            YGGR_ASSERT(u->in_kernel > 0);
            u->in_kernel--;
            if (data == &wake_token) {
                u->wake_armed = false;
                continue;
            }
            struct io_op *op = data;
            op->result = cqes[i]->res;
            push(&u->done_head, &u->done_tail, op);
        }
        io_uring_cq_advance(&u->ring, n);
        if (n < URING_CQE_BATCH) {
            return;
        }
    }
}

/* Submit the SQ (optionally waiting for one completion); maps the ring's own errors. */
static int enter(struct uring_io *u, bool wait)
{
    for (;;) {
        int rc = wait ? io_uring_submit_and_wait(&u->ring, 1) : io_uring_submit(&u->ring);
        if (rc >= 0) {
            return 0;
        }
        switch (rc) {
        case -EINTR:
            continue; /* a signal: resubmit */
        case -EAGAIN:
        case -EBUSY:
            /* CQ overflow or no request memory: make room by reaping, then retry. When
             * nothing is reapable yet, waiting is the only way forward. */
            reap(u);
            if (u->done_head != NULL) {
                wait = false;
            }
            continue;
        default:
            return rc; /* ENOMEM, EBADF...: the ring is unusable */
        }
    }
}

static unsigned chain_length(const struct io_op *op)
{
    unsigned n = 1;
    while ((op->flags & IO_LINK) && op->next != NULL) {
        op = op->next;
        n++;
    }
    YGGR_ASSERT(!(op->flags & IO_LINK)); /* a chain is submitted whole */
    return n;
}

static int flush_pending(struct uring_io *u)
{
    while (u->pending_head != NULL) {
        struct io_op *op = u->pending_head;
        if (op->type == IO_FTRUNCATE || op->type == IO_FSTAT) {
            YGGR_ASSERT(!(op->flags & IO_LINK));
            pop(&u->pending_head, &u->pending_tail);
            io_syscall(op);
            push(&u->done_head, &u->done_tail, op);
            continue;
        }
        unsigned n = chain_length(op);
        YGGR_ASSERT(n < u->sq_entries);
        if (io_uring_sq_space_left(&u->ring) < n) {
            int rc = enter(u, false);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        for (unsigned i = 0; i < n; i++) {
            struct io_op *cur = pop(&u->pending_head, &u->pending_tail);
            YGGR_ASSERT(cur != NULL);
            struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
            YGGR_ASSERT(sqe != NULL);
            prep_sqe(sqe, cur);
            u->in_kernel++;
        }
    }
    return 0;
}

static int arm_wake(struct uring_io *u, int wake_fd)
{
    if (io_uring_sq_space_left(&u->ring) < 1) {
        int rc = enter(u, false);
        if (rc < 0) {
            return rc;
        }
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    YGGR_ASSERT(sqe != NULL);
    io_uring_prep_poll_add(sqe, wake_fd, POLLIN);
    io_uring_sqe_set_data(sqe, &wake_token);
    u->wake_armed = true;
    u->in_kernel++;
    return 0;
}

static int uring_run(struct storage_io *io, int wake_fd, bool block)
{
    struct uring_io *u = to_uring(io);
    YGGR_ASSERT(u->ring_ready);
    int rc = flush_pending(u);
    if (rc == 0 && block && wake_fd >= 0 && !u->wake_armed) {
        rc = arm_wake(u, wake_fd);
    }
    if (rc < 0) {
        return rc;
    }
    bool wait = block && u->done_head == NULL;
    YGGR_ASSERT(!wait || u->in_kernel > 0); /* never wait for nothing */
    rc = enter(u, wait);
    if (rc < 0) {
        return rc;
    }
    reap(u);
    int count = 0;
    struct io_op *op;
    while ((op = pop(&u->done_head, &u->done_tail)) != NULL) {
        op->done(op);
        count++;
    }
    return count;
}

static int64_t uring_exec(struct storage_io *io, struct io_op *op)
{
    (void)io;
    YGGR_ASSERT(op != NULL);
    YGGR_ASSERT(!(op->flags & IO_LINK));
    return io_syscall(op);
}

static int uring_list(struct storage_io *io, const char *dir, io_list_fn fn, void *ctx)
{
    (void)io;
    return io_syscall_list(dir, fn, ctx);
}

static void uring_destroy(struct storage_io *io)
{
    struct uring_io *u = to_uring(io);
    YGGR_ASSERT(!u->ring_ready);
    YGGR_ASSERT(u->pending_head == NULL && u->done_head == NULL);
    free(u);
}

static const struct storage_io_ops uring_ops = {
    .thread_init = uring_thread_init,
    .thread_exit = uring_thread_exit,
    .submit = uring_submit,
    .run = uring_run,
    .exec = uring_exec,
    .list = uring_list,
    .destroy = uring_destroy,
};

struct storage_io *uring_io_create(void)
{
    struct uring_io *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return NULL;
    }
    u->base.ops = &uring_ops;
    YGGR_ASSERT(!u->ring_ready);
    return &u->base;
}
