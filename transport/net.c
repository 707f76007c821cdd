/* SPDX-License-Identifier: MIT */
/* The network thread `yggr-net`: one io_uring, the event loop, driver commands, doorbell. */

/*
 * Design notes
 * ------------
 * Loop (TigerBeetle src/io/linux.zig, without recursion):
 *
 *   for (;;) {
 *       drain the cmd ring (sends, peer changes, batch releases, stop)
 *       run timers (redial peers in backoff, handshake deadlines, retry accept)
 *       publish the filling inbound batch and returned chunks; wake the driver
 *       park: announce `parked`, re-check the cmd ring, submit SQEs and wait for >= 1 CQE
 *             (or the next timer); nothing to wait for when work is pending
 *       copy up to TCP_CQE_BATCH CQEs into a local array, advance the CQ, run handlers
 *   }
 *
 * Handlers only queue SQEs (net_sqe(): a full SQ is submitted and retried, never an
 * error) and mark state; they never call back into the loop. Every operation has its own
 * struct tcp_op inside its owner (peer, connection, transport); user_data is its address
 * and 0 marks cancel requests, whose completions are ignored. An owner counts its busy
 * operations and is torn down (close(fd)) only when that count reaches zero, so no
 * completion ever points at freed or reused memory.
 *
 * Doorbell (libuv src/unix/async.c): the driver pushes to the cmd ring, then checks
 * `parked`; only if set does it write the eventfd, and `bell_pending` coalesces writes
 * until this thread consumed the last one. The Dekker pair (push; fence; load parked)
 * against (store parked; fence; load ring) guarantees one side sees the other, so a
 * command is never left behind a sleeping thread.
 *
 * Stop: TCP_CMD_STOP cancels the accept and closes every link and connection; the loop
 * ends when no operation is in flight, so the listen port is free when close() returns.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tcp.h"
#include "yggr_assert.h"

uint64_t net_now_ns(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
    YGGR_ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct io_uring_sqe *net_sqe(struct yggr_transport *t, struct tcp_op *op)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    while (sqe == NULL) {
        /* Full SQ: hand what we have to the kernel and retry (never an error). */
        int rc = io_uring_submit(&t->ring);
        YGGR_ASSERT(rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
        sqe = io_uring_get_sqe(&t->ring);
    }
    if (op != NULL) {
        YGGR_ASSERT(!op->busy);
        op->busy = true;
    }
    io_uring_sqe_set_data(sqe, op);
    return sqe;
}

void net_cancel(struct yggr_transport *t, struct tcp_op *op)
{
    YGGR_ASSERT(op != NULL);
    if (!op->busy) {
        return;
    }
    struct io_uring_sqe *sqe = net_sqe(t, NULL);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
    io_uring_sqe_set_data(sqe, NULL);
}

void net_return_chunk(struct yggr_transport *t, struct tcp_chunk *c)
{
    YGGR_ASSERT(c != NULL);
    c->next = NULL;
    if (t->ret_head == NULL && tcp_ptr_push(&t->chunk_ring, t->chunk_slots, c)) {
        return;
    }
    /* Ring full (or older returns waiting): keep order, retry at the next publish. */
    if (t->ret_tail != NULL) {
        t->ret_tail->next = c;
    } else {
        t->ret_head = c;
    }
    t->ret_tail = c;
    t->publish_retry = true;
}

static void flush_returns(struct yggr_transport *t)
{
    while (t->ret_head != NULL) {
        if (!tcp_ptr_push(&t->chunk_ring, t->chunk_slots, t->ret_head)) {
            t->publish_retry = true;
            return;
        }
        t->ret_head = t->ret_head->next;
    }
    t->ret_tail = NULL;
}

static void arm_doorbell(struct yggr_transport *t)
{
    YGGR_ASSERT(!t->op_bell.busy);
    YGGR_ASSERT(t->bell_fd >= 0);
    struct io_uring_sqe *sqe = net_sqe(t, &t->op_bell);
    io_uring_prep_read(sqe, t->bell_fd, &t->bell_value, sizeof(t->bell_value), 0);
}

static void doorbell_done(struct yggr_transport *t, int res)
{
    YGGR_ASSERT(res == (int)sizeof(uint64_t) || res < 0);
    /* Re-allow doorbell writes; the fence orders this store before the ring drain at the
     * top of the next iteration (pairs with the producer's fence in tcp_ring_doorbell). */
    atomic_store_explicit(&t->bell_pending, false, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (res == -ECANCELED || t->stopping) {
        return;
    }
    if (res < 0 && res != -EINTR && res != -EAGAIN) {
        YGGR_PANIC("yggr-net: doorbell read failed: %s", strerror(-res));
    }
    arm_doorbell(t);
}

static void handle_cmd(struct yggr_transport *t, const struct tcp_cmd *cmd)
{
    switch ((enum tcp_cmd_type)cmd->type) {
    case TCP_CMD_SEND: outbound_enqueue(t, cmd->ptr); return;
    case TCP_CMD_PEER_SET: outbound_set(t, cmd); return;
    case TCP_CMD_PEER_REMOVE:
        if (t->npeers[cmd->slot].used && t->npeers[cmd->slot].gen == cmd->gen) {
            inbound_close_sender(t, t->npeers[cmd->slot].id); /* it is no longer known */
        }
        outbound_remove(t, cmd);
        return;
    case TCP_CMD_RELEASE: inbound_release(t, cmd->ptr); return;
    case TCP_CMD_STOP:
        if (!t->stopping) {
            t->stopping = true;
            net_cancel(t, &t->op_bell);
            inbound_stop_all(t);
            outbound_stop_all(t);
        }
        return;
    }
    YGGR_UNREACHABLE();
}

static void drain_cmds(struct yggr_transport *t)
{
    struct tcp_cmd cmd;
    while (tcp_cmd_pop(&t->cmd_ring, t->cmd_slots, &cmd)) {
        YGGR_ASSERT(cmd.slot < TCP_MAX_PEERS);
        handle_cmd(t, &cmd);
    }
}

static void dispatch(struct yggr_transport *t, struct tcp_op *op, int res)
{
    YGGR_ASSERT(op->busy);
    op->busy = false;
    switch (op->kind) {
    case TCP_OP_DOORBELL: doorbell_done(t, res); return;
    case TCP_OP_ACCEPT:
    case TCP_OP_RECV:
    case TCP_OP_HS_SEND: inbound_complete(t, op, res); return;
    case TCP_OP_CONNECT:
    case TCP_OP_SEND:
    case TCP_OP_PROBE: outbound_complete(t, op, res); return;
    }
    YGGR_UNREACHABLE();
}

static void reap(struct yggr_transport *t)
{
    struct io_uring_cqe *cqes[TCP_CQE_BATCH];
    struct {
        struct tcp_op *op;
        int res;
    } done[TCP_CQE_BATCH];
    unsigned n = io_uring_peek_batch_cqe(&t->ring, cqes, TCP_CQE_BATCH);
    YGGR_ASSERT(n <= TCP_CQE_BATCH);
    for (unsigned i = 0; i < n; i++) {
        done[i].op = io_uring_cqe_get_data(cqes[i]);
        done[i].res = cqes[i]->res;
    }
    io_uring_cq_advance(&t->ring, n);
    for (unsigned i = 0; i < n; i++) {
        if (done[i].op != NULL) {
            dispatch(t, done[i].op, done[i].res);
        }
    }
}

static void publish(struct yggr_transport *t)
{
    t->publish_retry = false;
    flush_returns(t);
    inbound_publish(t);
    if (t->wake_driver && t->wake != NULL) {
        t->wake_driver = false;
        t->wake(t->wake_ctx);
    }
}

static bool busy_anywhere(const struct yggr_transport *t)
{
    if (t->op_accept.busy || t->op_bell.busy || !inbound_idle(t)) {
        return true;
    }
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        if (t->npeers[i].inflight > 0) {
            return true;
        }
    }
    return false;
}

/* Submit and sleep until a completion, the next deadline or a doorbell. */
static void wait_for_work(struct yggr_transport *t, uint64_t next_ns)
{
    unsigned wait_nr = 1;
    if (t->publish_retry) {
        uint64_t soon = net_now_ns() + 1000000ull;
        next_ns = next_ns < soon ? next_ns : soon;
    }
    atomic_store_explicit(&t->parked, true, memory_order_relaxed);
    /* Dekker with the driver's (push; fence; load parked): after this fence either we see
     * its command in the ring, or it sees parked and rings the doorbell. */
    atomic_thread_fence(memory_order_seq_cst);
    if (tcp_ring_size(&t->cmd_ring) > 0) {
        wait_nr = 0;
    }
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (wait_nr == 0) {
        rc = io_uring_submit(&t->ring);
    } else if (next_ns != UINT64_MAX) {
        uint64_t now = net_now_ns();
        uint64_t delta = next_ns > now ? next_ns - now : 0;
        struct __kernel_timespec ts = {.tv_sec = (long long)(delta / 1000000000ull),
                                       .tv_nsec = (long long)(delta % 1000000000ull)};
        rc = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
    } else {
        rc = io_uring_submit_and_wait(&t->ring, 1);
    }
    atomic_store_explicit(&t->parked, false, memory_order_relaxed);
    YGGR_ASSERT(rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
}

static void run_loop(struct yggr_transport *t)
{
    for (;;) {
        drain_cmds(t);
        if (t->stopping && !busy_anywhere(t)) {
            return;
        }
        uint64_t next_ns = UINT64_MAX;
        if (!t->stopping) {
            outbound_timers(t, net_now_ns(), &next_ns);
            inbound_timers(t, net_now_ns(), &next_ns);
            if (t->accept_retry_at_ns != 0) {
                if (t->accept_retry_at_ns <= net_now_ns()) {
                    t->accept_retry_at_ns = 0;
                    inbound_accept_arm(t);
                } else if (t->accept_retry_at_ns < next_ns) {
                    next_ns = t->accept_retry_at_ns;
                }
            }
        }
        publish(t);
        wait_for_work(t, next_ns);
        reap(t);
    }
}

static int setup_ring(struct yggr_transport *t)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    /* One submitter (this thread), cooperative task running: fewer interrupts. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(512, &t->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p)); /* older kernel: plain ring */
        rc = io_uring_queue_init_params(512, &t->ring, &p);
    }
    if (rc == 0 && !(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&t->ring);
        rc = -ENOSYS; /* submit_and_wait_timeout needs Linux 5.11 */
    }
    return rc;
}

static void report_init(struct yggr_transport *t, int rc)
{
    pthread_mutex_lock(&t->init_lock);
    t->init_rc = rc;
    pthread_cond_signal(&t->init_cond);
    pthread_mutex_unlock(&t->init_lock);
}

void *net_main(void *arg)
{
    struct yggr_transport *t = arg;
    YGGR_ASSERT(t != NULL);
    pthread_setname_np(pthread_self(), "yggr-net");
    if (t->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((size_t)t->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
            tcp_log(t, 1, "yggr-net: cannot pin to cpu %d", t->cpu);
        }
    }
    int rc = setup_ring(t);
    report_init(t, rc);
    if (rc != 0) {
        return NULL;
    }
    t->op_bell = (struct tcp_op){.kind = TCP_OP_DOORBELL, .owner = t};
    arm_doorbell(t);
    inbound_accept_arm(t);
    run_loop(t);
    YGGR_ASSERT(!busy_anywhere(t));
    io_uring_queue_exit(&t->ring);
    return NULL;
}
