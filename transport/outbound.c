/* SPDX-License-Identifier: MIT */
/* Outbound links: one connection per peer dialled by this node, its send queue, backoff. */

/*
 * Design notes
 * ------------
 * States of a link (struct tcp_net_peer.state) and the function behind each transition:
 *
 *   UNUSED --outbound_set--> CONNECTING --connect_done--> HANDSHAKE --established--> ESTABLISHED
 *                              ^   |                          |                       |
 *                   dial()     |   +--connect error--+        | handshake failure,    |
 *                              |                     v        v timeout   send/probe error,
 *                           BACKOFF <--finish_close-- CLOSING <--close_link-- EOF, remove...
 *
 * HANDSHAKE without a cluster secret is left at once (the reference wire). With one it is
 * the dialer half of auth.c: send the HELLO (op_send), recv exactly the CHALLENGE
 * (op_probe, into the link's struct auth_hs), verify it, send the PROOF, and only then
 * become ESTABLISHED, so no Raft frame ever leaves before the listener proved it holds
 * the secret and is the node we meant to reach. Chunks queue meanwhile (the driver sees
 * the link PENDING); frames follow the PROOF without waiting for a round trip. A failure
 * (or no CHALLENGE within AUTH_TIMEOUT_MS) counts one decode_error for the peer, closes
 * the link and backs off; the first failure after a success is logged as a warning, the
 * repeats at debug level (`auth_failing`), so a misconfigured peer costs one line.
 *
 * Invariants:
 *   1. close(fd) happens only in finish_close, when no operation on fd is in flight.
 *   2. Frames are only ever written whole and in order: a failed link discards every
 *      queued chunk (counted as drops) so a new connection starts at a frame boundary.
 *   3. A link in BACKOFF or CLOSING accepts no chunk: arriving chunks are discarded and
 *      counted. The driver sees the link as DOWN, parks the newest heartbeat and drops
 *      replication messages (the engine resends). So a dead peer costs no memory.
 *   4. Connected but slow: chunks queue here; the driver's byte budget bounds them.
 *   5. Backoff: 50 ms doubling to 2 s (the reference's), with jitter: each wait is
 *      uniformly drawn from [d/2, d] so restarted clusters do not dial in lockstep.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tcp.h"
#include "yggr_assert.h"

static void dial(struct yggr_transport *t, struct tcp_net_peer *p);
static void pump(struct yggr_transport *t, struct tcp_net_peer *p);
static void established(struct yggr_transport *t, struct tcp_net_peer *p);
static void hs_fail(struct yggr_transport *t, struct tcp_net_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static uint32_t slot_of(const struct yggr_transport *t, const struct tcp_net_peer *p)
{
    ptrdiff_t i = p - t->npeers;
    YGGR_ASSERT(i >= 0 && (size_t)i < TCP_MAX_PEERS);
    return (uint32_t)i;
}

static struct tcp_stats *stats_of(struct yggr_transport *t, const struct tcp_net_peer *p)
{
    return &t->stats[slot_of(t, p)];
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    /* Relaxed: monotonic counters read by the driver for metrics only. */
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void set_view(struct yggr_transport *t, struct tcp_net_peer *p, enum tcp_link_view v)
{
    /* Relaxed: a hint for the driver's drop policy; a stale read costs one message. */
    atomic_store_explicit(&stats_of(t, p)->link, (uint32_t)v, memory_order_relaxed);
}

static uint64_t next_random(struct yggr_transport *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

static void drop_chunk(struct yggr_transport *t, struct tcp_chunk *c)
{
    struct tcp_net_peer *p = &t->npeers[c->slot];
    YGGR_ASSERT(c->slot < TCP_MAX_PEERS);
    c->dropped = true;
    if (p->used && p->gen == c->gen) {
        count(&t->stats[c->slot].drops, c->frames);
    }
    net_return_chunk(t, c);
}

static void discard_queue(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(!p->op_send.busy);
    while (p->head != NULL) {
        struct tcp_chunk *c = p->head;
        p->head = c->next;
        drop_chunk(t, c);
    }
    p->tail = NULL;
}

static void init_peer(struct yggr_transport *t, struct tcp_net_peer *p, const struct tcp_cmd *cmd)
{
    struct tcp_stats *s = stats_of(t, p);
    YGGR_ASSERT(!p->used);
    YGGR_ASSERT(p->inflight == 0 && p->head == NULL);
    memset(p, 0, sizeof(*p));
    p->id = cmd->id;
    p->gen = cmd->gen;
    p->addr = cmd->addr;
    p->used = true;
    p->fd = -1;
    p->backoff_ms = TCP_BACKOFF_MIN_MS;
    p->op_connect = (struct tcp_op){.kind = TCP_OP_CONNECT, .owner = p};
    p->op_send = (struct tcp_op){.kind = TCP_OP_SEND, .owner = p};
    p->op_probe = (struct tcp_op){.kind = TCP_OP_PROBE, .owner = p};
    atomic_store_explicit(&s->bytes_out, 0, memory_order_relaxed);
    atomic_store_explicit(&s->frames_out, 0, memory_order_relaxed);
    atomic_store_explicit(&s->bytes_in, 0, memory_order_relaxed);
    atomic_store_explicit(&s->frames_in, 0, memory_order_relaxed);
    atomic_store_explicit(&s->reconnects, 0, memory_order_relaxed);
    atomic_store_explicit(&s->drops, 0, memory_order_relaxed);
    atomic_store_explicit(&s->decode_errors, 0, memory_order_relaxed);
    atomic_store_explicit(&s->link, TCP_VIEW_PENDING, memory_order_relaxed);
    /* Release: the driver reads the counters only after seeing this generation. */
    atomic_store_explicit(&s->gen, cmd->gen, memory_order_release);
}

static void schedule_retry(struct yggr_transport *t, struct tcp_net_peer *p)
{
    uint32_t d = p->backoff_ms;
    uint32_t wait_ms = d / 2 + (uint32_t)(next_random(t) % (d / 2 + 1));
    p->state = TCP_LINK_BACKOFF;
    p->retry_at_ns = net_now_ns() + (uint64_t)wait_ms * 1000000ull;
    p->backoff_ms = d * 2 < TCP_BACKOFF_MAX_MS ? d * 2 : TCP_BACKOFF_MAX_MS;
    set_view(t, p, TCP_VIEW_DOWN);
    YGGR_ASSERT(wait_ms <= TCP_BACKOFF_MAX_MS);
}

static void finish_close(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->inflight == 0);
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    discard_queue(t, p);
    if (p->removing) {
        bool again = p->pending_set;
        struct tcp_cmd next = p->pending;
        p->used = false;
        p->state = TCP_LINK_UNUSED;
        if (again && !t->stopping) {
            init_peer(t, p, &next);
            dial(t, p);
        }
        return;
    }
    if (t->stopping) {
        p->state = TCP_LINK_BACKOFF;
        p->retry_at_ns = UINT64_MAX;
        set_view(t, p, TCP_VIEW_DOWN);
        return;
    }
    if (p->readdress) {
        p->readdress = false;
        p->backoff_ms = TCP_BACKOFF_MIN_MS;
        set_view(t, p, TCP_VIEW_PENDING);
        dial(t, p);
        return;
    }
    schedule_retry(t, p);
}

/* Start tearing the link down; finish_close runs once nothing is in flight. */
static void close_link(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->used);
    if (p->state == TCP_LINK_CLOSING) {
        return;
    }
    if (p->fd < 0) {
        YGGR_ASSERT(p->inflight == 0);
        finish_close(t, p);
        return;
    }
    p->state = TCP_LINK_CLOSING;
    set_view(t, p, TCP_VIEW_DOWN);
    /* shutdown() makes a pending recv return 0 and a blocked send fail at once; the
     * cancels cover a connect in progress. */
    (void)shutdown(p->fd, SHUT_RDWR);
    net_cancel(t, &p->op_connect);
    net_cancel(t, &p->op_send);
    net_cancel(t, &p->op_probe);
    if (p->inflight == 0) {
        finish_close(t, p);
    }
}

static void dial(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->used && p->fd < 0);
    YGGR_ASSERT(p->inflight == 0);
    const struct tcp_addr *local = t->bind_outgoing ? &t->listen_addr : NULL;
    int rc = addr_socket_for(&p->addr, local, &p->fd);
    if (rc != 0) {
        tcp_log(t, 1, "peer %llu: cannot create socket: %s", (unsigned long long)p->id,
                strerror(-rc));
        p->fd = -1;
        schedule_retry(t, p);
        return;
    }
    p->state = TCP_LINK_CONNECTING;
    struct io_uring_sqe *sqe = net_sqe(t, &p->op_connect);
    io_uring_prep_connect(sqe, p->fd, &p->addr.u.sa, p->addr.len);
    p->inflight++;
}

static void arm_probe(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->state == TCP_LINK_ESTABLISHED);
    struct io_uring_sqe *sqe = net_sqe(t, &p->op_probe);
    io_uring_prep_recv(sqe, p->fd, p->probe_buf, sizeof(p->probe_buf), 0);
    p->inflight++;
}

/* ---------------------------------------------------------------------------------------
 * Handshake (dialer side of auth.c; only with a cluster secret)
 * ------------------------------------------------------------------------------------- */

static void hs_send(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->state == TCP_LINK_HANDSHAKE);
    YGGR_ASSERT(p->hs.out_sent < p->hs.out_len);
    struct io_uring_sqe *sqe = net_sqe(t, &p->op_send);
    io_uring_prep_send(sqe, p->fd, p->hs.out + p->hs.out_sent, p->hs.out_len - p->hs.out_sent,
                       MSG_NOSIGNAL);
    p->inflight++;
}

static void hs_recv(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->state == TCP_LINK_HANDSHAKE);
    uint32_t want = auth_want(&p->hs);
    YGGR_ASSERT(want > 0 && want <= AUTH_CHALLENGE_BYTES); /* never reads past it */
    struct io_uring_sqe *sqe = net_sqe(t, &p->op_probe);
    io_uring_prep_recv(sqe, p->fd, auth_in(&p->hs), want, 0);
    p->inflight++;
}

static void hs_fail(struct yggr_transport *t, struct tcp_net_peer *p, const char *fmt, ...)
{
    char why[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    YGGR_ASSERT(p->state == TCP_LINK_HANDSHAKE);
    count(&stats_of(t, p)->decode_errors, 1);
    tcp_log(t, p->auth_failing ? 3 : 1, "peer %llu: authentication failed: %s; retrying",
            (unsigned long long)p->id, why);
    p->auth_failing = true;
    close_link(t, p);
}

static void hs_send_done(struct yggr_transport *t, struct tcp_net_peer *p, int res)
{
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        hs_send(t, p);
        return;
    }
    if (res <= 0) {
        hs_fail(t, p, "send: %s", res == 0 ? "wrote nothing" : strerror(-res));
        return;
    }
    if (!auth_sent(&p->hs, (uint32_t)res)) {
        hs_send(t, p);
        return;
    }
    if (p->hs.state == AUTH_STATE_RECV_CHALLENGE) {
        hs_recv(t, p); /* HELLO is out */
        return;
    }
    established(t, p); /* PROOF is out; frames may follow */
}

static void hs_recv_done(struct yggr_transport *t, struct tcp_net_peer *p, int res)
{
    char why[160];
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        hs_recv(t, p);
        return;
    }
    if (res == 0) {
        hs_fail(t, p, "it closed the connection (it refused us: a different cluster secret "
                      "or cluster id, no secret configured there, or we are not its peer)");
        return;
    }
    if (res < 0) {
        hs_fail(t, p, "recv: %s", strerror(-res));
        return;
    }
    switch (auth_received(&t->key, &p->hs, (uint32_t)res, why, sizeof(why))) {
    case AUTH_VERDICT_MORE: hs_recv(t, p); return;
    case AUTH_VERDICT_SEND: hs_send(t, p); return; /* the PROOF */
    case AUTH_VERDICT_FAIL: hs_fail(t, p, "%s", why); return;
    case AUTH_VERDICT_NOT_HANDSHAKE:
        hs_fail(t, p, "%s in its answer (not a yggr node with a cluster secret?)", why);
        return;
    case AUTH_VERDICT_CHECK_PEER:
    case AUTH_VERDICT_DONE: break; /* listener verdicts */
    }
    YGGR_UNREACHABLE();
}

static void established(struct yggr_transport *t, struct tcp_net_peer *p)
{
    YGGR_ASSERT(p->state == TCP_LINK_HANDSHAKE);
    if (t->auth) {
        YGGR_ASSERT(p->hs.state == AUTH_STATE_DONE);
        if (p->auth_failing) {
            tcp_log(t, 2, "peer %llu: authenticated", (unsigned long long)p->id);
        }
        p->auth_failing = false;
    }
    p->state = TCP_LINK_ESTABLISHED;
    p->backoff_ms = TCP_BACKOFF_MIN_MS;
    if (p->ever_connected) {
        count(&stats_of(t, p)->reconnects, 1);
    }
    p->ever_connected = true;
    set_view(t, p, TCP_VIEW_UP);
    t->wake_driver = true; /* the driver may hold a parked heartbeat for this peer */
    arm_probe(t, p);
    pump(t, p);
}

static void connect_done(struct yggr_transport *t, struct tcp_net_peer *p, int res)
{
    char where[64];
    if (p->state == TCP_LINK_CLOSING) {
        return;
    }
    YGGR_ASSERT(p->state == TCP_LINK_CONNECTING);
    if (res < 0) {
        /* ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EINTR...:
         * all mean "not now"; retry after the backoff. Debug level: it repeats. */
        addr_format(&p->addr, where, sizeof(where));
        tcp_log(t, 3, "peer %llu at %s: connect: %s", (unsigned long long)p->id, where,
                strerror(-res));
        close_link(t, p);
        return;
    }
    p->state = TCP_LINK_HANDSHAKE;
    if (!t->auth) {
        established(t, p);
        return;
    }
    if (auth_dialer_start(&t->key, &p->hs, p->id) != 0) {
        hs_fail(t, p, "cannot build a HELLO (libcrypto: no randomness?)");
        return;
    }
    p->hs.deadline_ns = net_now_ns() + (uint64_t)AUTH_TIMEOUT_MS * 1000000ull;
    hs_send(t, p);
}

static void pump(struct yggr_transport *t, struct tcp_net_peer *p)
{
    if (p->state != TCP_LINK_ESTABLISHED || p->op_send.busy || p->head == NULL) {
        return;
    }
    uint32_t n = 0;
    for (struct tcp_chunk *c = p->head; c != NULL && n < TCP_IOV_MAX; c = c->next) {
        YGGR_ASSERT(c->sent < c->len);
        p->iov[n].iov_base = c->data + c->sent;
        p->iov[n].iov_len = c->len - c->sent;
        n++;
    }
    YGGR_ASSERT(n > 0);
    memset(&p->mh, 0, sizeof(p->mh));
    p->mh.msg_iov = p->iov;
    p->mh.msg_iovlen = n;
    p->iov_chunks = n;
    struct io_uring_sqe *sqe = net_sqe(t, &p->op_send);
    io_uring_prep_sendmsg(sqe, p->fd, &p->mh, MSG_NOSIGNAL);
    p->inflight++;
}

static void advance(struct yggr_transport *t, struct tcp_net_peer *p, uint32_t written)
{
    struct tcp_stats *s = stats_of(t, p);
    count(&s->bytes_out, written);
    while (written > 0) {
        struct tcp_chunk *c = p->head;
        YGGR_ASSERT(c != NULL);
        uint32_t rem = c->len - c->sent;
        if (written < rem) {
            c->sent += written;
            return;
        }
        written -= rem;
        c->sent = c->len;
        p->head = c->next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
        count(&s->frames_out, c->frames);
        net_return_chunk(t, c);
    }
}

static void send_done(struct yggr_transport *t, struct tcp_net_peer *p, int res)
{
    if (p->state == TCP_LINK_CLOSING) {
        return;
    }
    if (p->state == TCP_LINK_HANDSHAKE) {
        hs_send_done(t, p, res);
        return;
    }
    YGGR_ASSERT(p->state == TCP_LINK_ESTABLISHED);
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        pump(t, p); /* transient: resend the same bytes */
        return;
    }
    if (res <= 0) {
        /* EPIPE, ECONNRESET, ETIMEDOUT, ...: the link is gone. */
        tcp_log(t, 2, "peer %llu: send failed: %s; reconnecting", (unsigned long long)p->id,
                res == 0 ? "wrote nothing" : strerror(-res));
        close_link(t, p);
        return;
    }
    advance(t, p, (uint32_t)res);
    pump(t, p);
}

static void probe_done(struct yggr_transport *t, struct tcp_net_peer *p, int res)
{
    if (p->state == TCP_LINK_CLOSING) {
        return;
    }
    if (p->state == TCP_LINK_HANDSHAKE) {
        hs_recv_done(t, p, res);
        return;
    }
    YGGR_ASSERT(p->state == TCP_LINK_ESTABLISHED);
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        arm_probe(t, p);
        return;
    }
    if (res > 0) {
        /* Nothing is ever sent back on our outbound link after the handshake. */
        count(&stats_of(t, p)->decode_errors, 1);
        tcp_log(t, 1, "peer %llu: unexpected bytes on our outbound link; reconnecting",
                (unsigned long long)p->id);
    } else {
        tcp_log(t, 2, "peer %llu: outbound link closed (%s); reconnecting",
                (unsigned long long)p->id, res == 0 ? "EOF" : strerror(-res));
    }
    close_link(t, p);
}

void outbound_complete(struct yggr_transport *t, struct tcp_op *op, int res)
{
    struct tcp_net_peer *p = op->owner;
    YGGR_ASSERT(p != NULL && p->used);
    YGGR_ASSERT(p->inflight > 0);
    p->inflight--;
    switch (op->kind) {
    case TCP_OP_CONNECT: connect_done(t, p, res); break;
    case TCP_OP_SEND: send_done(t, p, res); break;
    case TCP_OP_PROBE: probe_done(t, p, res); break;
    case TCP_OP_DOORBELL:
    case TCP_OP_ACCEPT:
    case TCP_OP_RECV:
    case TCP_OP_HS_SEND: YGGR_UNREACHABLE();
    }
    if (p->state == TCP_LINK_CLOSING && p->inflight == 0) {
        finish_close(t, p);
    }
}

void outbound_set(struct yggr_transport *t, const struct tcp_cmd *cmd)
{
    struct tcp_net_peer *p = &t->npeers[cmd->slot];
    YGGR_ASSERT(cmd->id != 0);
    if (t->stopping) {
        return;
    }
    if (p->used && p->gen == cmd->gen) {
        /* Same peer, maybe a new address. */
        if (addr_equal(&p->addr, &cmd->addr)) {
            return;
        }
        p->addr = cmd->addr;
        if (p->state == TCP_LINK_BACKOFF) {
            p->backoff_ms = TCP_BACKOFF_MIN_MS;
            dial(t, p);
        } else {
            p->readdress = true;
            close_link(t, p);
        }
        return;
    }
    if (p->used) {
        /* The slot's previous peer is still closing: take over when it is done. */
        YGGR_ASSERT(p->removing);
        p->pending_set = true;
        p->pending = *cmd;
        return;
    }
    init_peer(t, p, cmd);
    dial(t, p);
}

void outbound_remove(struct yggr_transport *t, const struct tcp_cmd *cmd)
{
    struct tcp_net_peer *p = &t->npeers[cmd->slot];
    if (p->used && p->removing && p->pending_set && p->pending.gen == cmd->gen) {
        p->pending_set = false; /* set and removed before the old one finished closing */
        return;
    }
    if (!p->used || p->gen != cmd->gen) {
        return;
    }
    p->removing = true;
    close_link(t, p);
}

void outbound_enqueue(struct yggr_transport *t, struct tcp_chunk *c)
{
    YGGR_ASSERT(c != NULL && c->slot < TCP_MAX_PEERS);
    YGGR_ASSERT(c->len > 0 && c->sent == 0);
    struct tcp_net_peer *p = &t->npeers[c->slot];
    bool accepting = p->used && p->gen == c->gen && !p->removing && !t->stopping &&
                     (p->state == TCP_LINK_CONNECTING || p->state == TCP_LINK_HANDSHAKE ||
                      p->state == TCP_LINK_ESTABLISHED);
    if (!accepting) {
        drop_chunk(t, c);
        return;
    }
    c->next = NULL;
    if (p->tail != NULL) {
        p->tail->next = c;
    } else {
        p->head = c;
    }
    p->tail = c;
    pump(t, p);
}

void outbound_timers(struct yggr_transport *t, uint64_t now_ns, uint64_t *next_ns)
{
    YGGR_ASSERT(next_ns != NULL);
    YGGR_ASSERT(!t->stopping);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        struct tcp_net_peer *p = &t->npeers[i];
        if (p->used && p->state == TCP_LINK_HANDSHAKE) {
            YGGR_ASSERT(t->auth && p->hs.deadline_ns != 0);
            if (p->hs.deadline_ns <= now_ns) {
                hs_fail(t, p, "no CHALLENGE within %u ms", AUTH_TIMEOUT_MS);
            } else if (p->hs.deadline_ns < *next_ns) {
                *next_ns = p->hs.deadline_ns;
            }
            continue;
        }
        if (!p->used || p->state != TCP_LINK_BACKOFF) {
            continue;
        }
        if (p->retry_at_ns <= now_ns) {
            dial(t, p);
        } else if (p->retry_at_ns < *next_ns) {
            *next_ns = p->retry_at_ns;
        }
    }
}

void outbound_stop_all(struct yggr_transport *t)
{
    YGGR_ASSERT(t->stopping);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        struct tcp_net_peer *p = &t->npeers[i];
        if (p->used) {
            p->pending_set = false;
            close_link(t, p);
        }
    }
}

struct tcp_net_peer *outbound_find(struct yggr_transport *t, uint64_t id)
{
    YGGR_ASSERT(id != 0);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        struct tcp_net_peer *p = &t->npeers[i];
        if (p->used && !p->removing && p->id == id) {
            return p;
        }
    }
    return NULL;
}
