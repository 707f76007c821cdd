/* SPDX-License-Identifier: MIT */
/* Inbound side: the listener, accepted connections, frame parsing, decoded batches. */

/*
 * Design notes
 * ------------
 * Connection states and the function behind each transition:
 *
 *   FREE --conn_open--> HANDSHAKE --(no secret) or authenticated--> ESTABLISHED
 *   HANDSHAKE, ESTABLISHED --reject/conn_close--> CLOSING --conn_finish (nothing in flight)--> FREE
 *
 * HANDSHAKE with a cluster secret is the listener half of auth.c: recv exactly the HELLO
 * (68 bytes, into the connection's struct auth_hs, never into a receive buffer), check that
 * the claimed id is in the peer map (outbound_find: removed peers are not), send the
 * CHALLENGE, recv exactly the PROOF (44 bytes), and only then become ESTABLISHED with
 * sender = the claimed id. Invariants:
 *   1. Before authentication at most AUTH_PREAUTH_MAX_BYTES (112) are read from a
 *      connection: every recv asks for the rest of the expected message only. Frames the
 *      dialer pipelines after its PROOF wait in the socket until then. These bytes are
 *      counted in the unknown bucket's bytes_in.
 *   2. parse() (and so the driver) only ever sees ESTABLISHED connections; the 256 KiB
 *      receive buffer is only allocated then: an unauthenticated connection holds just its
 *      preallocated slot (of TCP_MAX_CONNS).
 *   3. A handshake not finished AUTH_TIMEOUT_MS (2 s) after accept is closed
 *      (inbound_timers).
 *   4. Every failure closes the connection, counts one decode_error (the claimed id's
 *      bucket when it names a member, else unknown) and logs one rate-limited line.
 * Without a secret the connection is ESTABLISHED at accept: the reference wire, unchanged.
 *
 * Receive path, zero copy: each connection receives into a refcounted yggr_buf. Complete
 * frames are decoded in place into the filling batch; entry and snapshot payloads point
 * into the buffer and the batch holds one reference on every buffer it points into. The
 * driver releases those references (the engine retains what it keeps). A buffer is
 * rewound or compacted only while the connection holds its sole reference; otherwise the
 * partial frame is copied to a fresh buffer. A frame larger than the default buffer gets
 * a buffer of its own size (at most max_frame_bytes + 12).
 *
 * Hostile input never reaches the driver and never crashes the node. The frame that is
 * rejected closes ITS connection only, is counted (decode_errors of the sender's peer,
 * or of the 'unknown' bucket) and logged (rate-limited): sender id 0, a body over
 * max_frame_bytes, an unknown sender, a sender different from the connection's first
 * frame, a body that fails to decode. EOF in the middle of a frame is a clean close.
 *
 * Backpressure: with every batch out with the driver, a connection stops receiving
 * (`blocked`) until a batch comes back; TCP then pushes back on the sender.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "tcp.h"
#include "yggr_assert.h"

static void count(_Atomic uint64_t *c, uint64_t n)
{
    /* Relaxed: monotonic counters read by the driver for metrics only. */
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint32_t buf_refs(struct yggr_buf *b)
{
    /* Acquire: pairs with the driver's release of its reference, so once we see 1 its
     * reads of the bytes are done and we may overwrite them. */
    return atomic_load_explicit(&b->refs, memory_order_acquire);
}

/* ---------------------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------------------- */

static struct tcp_batch *batch_current(struct yggr_transport *t)
{
    if (t->filling != NULL) {
        return t->filling;
    }
    for (uint32_t i = 0; i < TCP_BATCHES; i++) {
        struct tcp_batch *b = &t->batches[i];
        if (b->state == TCP_BATCH_FREE) {
            YGGR_ASSERT(b->buf_count == 0 && b->extra == NULL);
            b->state = TCP_BATCH_FILLING;
            b->count = 0;
            b->entry_count = 0;
            b->config_count = 0;
            t->filling = b;
            return b;
        }
    }
    return NULL;
}

void inbound_publish(struct yggr_transport *t)
{
    struct tcp_batch *b = t->filling;
    if (b == NULL || b->count == 0) {
        return;
    }
    YGGR_ASSERT(b->state == TCP_BATCH_FILLING);
    b->state = TCP_BATCH_OUT;
    t->filling = NULL;
    /* Never full: the ring has more slots than there are batches. */
    bool pushed = tcp_ptr_push(&t->batch_ring, t->batch_slots, b);
    YGGR_ASSERT(pushed);
    t->wake_driver = true;
}

static bool batch_has_buf(const struct tcp_batch *b, const struct yggr_buf *buf)
{
    for (uint32_t i = b->buf_count; i > 0; i--) {
        if (b->bufs[i - 1] == buf) {
            return true;
        }
    }
    return false;
}

static bool batch_full(const struct tcp_batch *b, const struct yggr_buf *buf)
{
    return b->count == TCP_BATCH_MSGS || b->config_count == TCP_BATCH_CONFIGS ||
           b->entry_count == TCP_BATCH_ENTRIES ||
           (b->buf_count == TCP_BATCH_BUFS && !batch_has_buf(b, buf));
}

/* Decode one body into the batch. 0, -EAGAIN (no batch free), -EBADMSG or -ENOMEM. */
static int decode_into(struct yggr_transport *t, struct tcp_batch *b, struct tcp_conn *c,
                       const uint8_t *body, uint32_t len)
{
    struct yggr_msg *m = &b->msgs[b->count];
    struct codec_error err;
    struct codec_space space = {.entries = b->entries + b->entry_count,
                                .entry_cap = TCP_BATCH_ENTRIES - b->entry_count,
                                .config = &b->configs[b->config_count]};
    int rc = codec_msg_decode(body, len, c->rbuf, &space, m, &err);
    if (rc == -ENOBUFS && b->count == 0) {
        /* One message with more entries than a batch holds (a reference leader sends
         * the whole suffix): give this batch a one-off array. */
        b->extra = calloc(space.entry_count, sizeof(*b->extra));
        if (b->extra == NULL) {
            return -ENOMEM;
        }
        space.entries = b->extra;
        space.entry_cap = space.entry_count;
        rc = codec_msg_decode(body, len, c->rbuf, &space, m, &err);
        YGGR_ASSERT(rc != -ENOBUFS);
    }
    if (rc == -ENOBUFS) {
        return -ENOBUFS;
    }
    if (rc != 0) {
        char why[160];
        codec_error_format(&err, why, sizeof(why));
        tcp_log(t, 3, "peer %llu: undecodable message: %s", (unsigned long long)c->sender, why);
        return rc;
    }
    m->from = c->sender;
    m->to = t->self;
    if (m->type == YGGR_MSG_SNAPSHOT_REQUEST) {
        b->config_count++;
    }
    if (space.entries != b->extra) {
        b->entry_count += space.entry_count;
    }
    b->count++;
    if (!batch_has_buf(b, c->rbuf)) {
        b->bufs[b->buf_count++] = yggr_buf_retain(c->rbuf);
    }
    return 0;
}

static int deliver(struct yggr_transport *t, struct tcp_conn *c, const uint8_t *body,
                   uint32_t len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        struct tcp_batch *b = batch_current(t);
        if (b != NULL && batch_full(b, c->rbuf)) {
            inbound_publish(t);
            b = batch_current(t);
        }
        if (b == NULL) {
            return -EAGAIN;
        }
        int rc = decode_into(t, b, c, body, len);
        if (rc == 0 && b->extra != NULL) {
            inbound_publish(t); /* the one-off array belongs to this message alone */
        }
        if (rc != -ENOBUFS) {
            return rc;
        }
        inbound_publish(t); /* not enough entry room left: start a fresh batch */
    }
    YGGR_UNREACHABLE();
}

/* ---------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------- */

static void conn_finish(struct yggr_transport *t, struct tcp_conn *c)
{
    YGGR_ASSERT(c->state == TCP_CONN_CLOSING);
    YGGR_ASSERT(c->inflight == 0);
    close(c->fd);
    yggr_buf_release(c->rbuf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    YGGR_ASSERT(t->conn_count > 0);
    t->conn_count--;
}

static void conn_close(struct yggr_transport *t, struct tcp_conn *c)
{
    if (c->state == TCP_CONN_CLOSING || c->state == TCP_CONN_FREE) {
        return;
    }
    c->state = TCP_CONN_CLOSING;
    (void)shutdown(c->fd, SHUT_RDWR); /* makes a pending recv complete at once */
    net_cancel(t, &c->op_recv);
    net_cancel(t, &c->op_send);
    if (c->inflight == 0) {
        conn_finish(t, c);
    }
}

static struct tcp_stats *bucket_of(struct yggr_transport *t, const struct tcp_conn *c)
{
    return c->sender != 0 ? &t->stats[c->slot] : &t->unknown;
}

static void reject(struct yggr_transport *t, struct tcp_conn *c, struct tcp_stats *bucket,
                   const char *why, uint64_t sender)
{
    char where[64];
    uint64_t now = net_now_ns();
    count(&bucket->decode_errors, 1);
    if (now - t->log_window_ns > 1000000000ull) {
        if (t->log_suppressed > 0) {
            tcp_log(t, 1, "%u more rejected connections not logged", t->log_suppressed);
        }
        t->log_window_ns = now;
        t->log_count = 0;
        t->log_suppressed = 0;
    }
    if (t->log_count++ < 16) {
        addr_format(&c->remote, where, sizeof(where));
        tcp_log(t, 1, "closing connection from %s (sender %llu): %s", where,
                (unsigned long long)sender, why);
    } else {
        t->log_suppressed++;
    }
    conn_close(t, c);
}

/* Make sure a frame of `frame` bytes starting at head can be completed in this buffer. */
static int make_room(struct tcp_conn *c, uint64_t frame)
{
    struct yggr_buf *b = c->rbuf;
    uint32_t avail = c->tail - c->head;
    YGGR_ASSERT(frame > avail);
    if ((uint64_t)b->size - c->head >= frame) {
        return 0;
    }
    if (buf_refs(b) == 1 && b->size >= frame) {
        memmove(b->data, b->data + c->head, avail);
    } else {
        uint64_t size = frame > TCP_RBUF_BYTES ? frame : TCP_RBUF_BYTES;
        YGGR_ASSERT(size <= UINT32_MAX);
        struct yggr_buf *n = yggr_buf_alloc((uint32_t)size);
        if (n == NULL) {
            return -ENOMEM;
        }
        memcpy(n->data, b->data + c->head, avail);
        yggr_buf_release(b);
        c->rbuf = n;
    }
    c->head = 0;
    c->tail = avail;
    return 0;
}

/* First frame fixes the connection's sender; later ones must match. With a secret the
 * handshake fixed it already. */
static const char *check_sender(struct yggr_transport *t, struct tcp_conn *c, uint64_t sender)
{
    if (sender == 0) {
        return "sender id 0";
    }
    if (c->sender == 0) {
        YGGR_ASSERT(!t->auth);
        struct tcp_net_peer *p = outbound_find(t, sender);
        if (p == NULL && sender == AUTH_MAGIC_U64) {
            return "the peer sent an authentication HELLO but this node has no cluster secret "
                   "configured (configure the same secret on every node, or on none)";
        }
        if (p == NULL) {
            return "unknown sender";
        }
        c->sender = sender;
        c->slot = (uint32_t)(p - t->npeers);
        return NULL;
    }
    return sender == c->sender ? NULL : "sender differs from the connection's first frame";
}

static void parse(struct yggr_transport *t, struct tcp_conn *c)
{
    while (c->state == TCP_CONN_ESTABLISHED && c->tail - c->head >= CODEC_FRAME_HEADER_BYTES) {
        uint64_t sender;
        uint32_t len;
        codec_frame_header_get(c->rbuf->data + c->head, &sender, &len);
        const char *why = check_sender(t, c, sender);
        if (why == NULL && len > t->max_frame_bytes) {
            why = "frame over max_frame_bytes";
        }
        if (why != NULL) {
            reject(t, c, c->sender != 0 ? bucket_of(t, c) : &t->unknown, why, sender);
            return;
        }
        uint64_t frame = (uint64_t)CODEC_FRAME_HEADER_BYTES + len;
        if (c->tail - c->head < frame) {
            if (make_room(c, frame) != 0) {
                reject(t, c, bucket_of(t, c), "out of memory for a frame", sender);
            }
            return;
        }
        int rc = deliver(t, c, c->rbuf->data + c->head + CODEC_FRAME_HEADER_BYTES, len);
        if (rc == -EAGAIN) {
            c->blocked = true;
            return;
        }
        if (rc != 0) {
            reject(t, c, bucket_of(t, c),
                   rc == -ENOMEM ? "out of memory for entries" : "undecodable message", sender);
            return;
        }
        c->head += (uint32_t)frame;
        count(&t->stats[c->slot].frames_in, 1);
        count(&t->stats[c->slot].bytes_in, frame);
    }
}

static void arm_recv(struct yggr_transport *t, struct tcp_conn *c)
{
    YGGR_ASSERT(c->state == TCP_CONN_ESTABLISHED && !c->blocked);
    if (c->head == c->tail && buf_refs(c->rbuf) == 1) {
        c->head = c->tail = 0; /* nothing pending and nobody else reads it: rewind */
    }
    if (c->tail == c->rbuf->size && c->head < c->tail) {
        /* A partial frame HEADER ends the buffer (parse() only makes room once a whole
         * header is there): move it to the front or to a fresh buffer. */
        YGGR_ASSERT(c->tail - c->head < CODEC_FRAME_HEADER_BYTES);
        if (make_room(c, CODEC_FRAME_HEADER_BYTES) != 0) {
            reject(t, c, bucket_of(t, c), "out of memory for a receive buffer", c->sender);
            return;
        }
    }
    if (c->tail == c->rbuf->size) {
        /* Fully parsed but still referenced by a batch: continue in a fresh buffer. */
        YGGR_ASSERT(c->head == c->tail);
        struct yggr_buf *n = yggr_buf_alloc(TCP_RBUF_BYTES);
        if (n == NULL) {
            reject(t, c, bucket_of(t, c), "out of memory for a receive buffer", c->sender);
            return;
        }
        yggr_buf_release(c->rbuf);
        c->rbuf = n;
        c->head = c->tail = 0;
    }
    struct io_uring_sqe *sqe = net_sqe(t, &c->op_recv);
    io_uring_prep_recv(sqe, c->fd, c->rbuf->data + c->tail, c->rbuf->size - c->tail, 0);
    c->inflight++;
}

static void hs_recv_done(struct yggr_transport *t, struct tcp_conn *c, int res);

static void recv_done(struct yggr_transport *t, struct tcp_conn *c, int res)
{
    if (c->state == TCP_CONN_CLOSING) {
        return;
    }
    if (c->state == TCP_CONN_HANDSHAKE) {
        hs_recv_done(t, c, res);
        return;
    }
    YGGR_ASSERT(c->state == TCP_CONN_ESTABLISHED);
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        arm_recv(t, c);
        return;
    }
    if (res <= 0) {
        /* EOF (possibly mid-frame: the partial frame is simply dropped), ECONNRESET... */
        tcp_log(t, 3, "connection from peer %llu closed: %s", (unsigned long long)c->sender,
                res == 0 ? "EOF" : strerror(-res));
        conn_close(t, c);
        return;
    }
    YGGR_ASSERT((uint32_t)res <= c->rbuf->size - c->tail);
    c->tail += (uint32_t)res;
    parse(t, c);
    if (c->state == TCP_CONN_ESTABLISHED && !c->blocked) {
        arm_recv(t, c);
    }
}

/* ---------------------------------------------------------------------------------------
 * Handshake (listener side of auth.c; only with a cluster secret)
 * ------------------------------------------------------------------------------------- */

static void hs_arm_recv(struct yggr_transport *t, struct tcp_conn *c)
{
    YGGR_ASSERT(c->state == TCP_CONN_HANDSHAKE);
    uint32_t want = auth_want(&c->hs);
    YGGR_ASSERT(want > 0 && want <= AUTH_HELLO_BYTES); /* invariant 1 */
    struct io_uring_sqe *sqe = net_sqe(t, &c->op_recv);
    io_uring_prep_recv(sqe, c->fd, auth_in(&c->hs), want, 0);
    c->inflight++;
}

static void hs_arm_send(struct yggr_transport *t, struct tcp_conn *c)
{
    YGGR_ASSERT(c->state == TCP_CONN_HANDSHAKE);
    YGGR_ASSERT(c->hs.out_sent < c->hs.out_len);
    struct io_uring_sqe *sqe = net_sqe(t, &c->op_send);
    io_uring_prep_send(sqe, c->fd, c->hs.out + c->hs.out_sent, c->hs.out_len - c->hs.out_sent,
                       MSG_NOSIGNAL);
    c->inflight++;
}

/* A failure counts in the claimed id's bucket once that id names a member, else unknown. */
static struct tcp_stats *hs_bucket(struct yggr_transport *t, const struct tcp_conn *c)
{
    struct tcp_net_peer *p = c->hs.peer != 0 ? outbound_find(t, c->hs.peer) : NULL;
    return p != NULL ? &t->stats[p - t->npeers] : &t->unknown;
}

static void hs_reject(struct yggr_transport *t, struct tcp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void hs_reject(struct yggr_transport *t, struct tcp_conn *c, const char *fmt, ...)
{
    char why[224] = "authentication failed: ";
    size_t used = strlen(why);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + used, sizeof(why) - used, fmt, ap);
    va_end(ap);
    YGGR_ASSERT(c->state == TCP_CONN_HANDSHAKE);
    reject(t, c, hs_bucket(t, c), why, c->hs.peer);
    YGGR_ASSERT(c->state == TCP_CONN_CLOSING || c->state == TCP_CONN_FREE);
}

/* The first bytes are no HELLO. If they read as a Raft frame from a member, say so: that
 * member has no cluster secret (mixed configuration). */
static void hs_not_handshake(struct yggr_transport *t, struct tcp_conn *c, const char *why)
{
    uint64_t sender = 0;
    for (uint32_t i = 0; i < 8 && c->hs.in_len >= 8; i++) {
        sender = (sender << 8) | c->hs.in[i];
    }
    if (sender != 0 && outbound_find(t, sender) != NULL) {
        c->hs.peer = sender;
        hs_reject(t, c, "node %llu sent Raft frames without a handshake: this node requires "
                        "the cluster secret, that node has none configured",
                  (unsigned long long)sender);
        return;
    }
    hs_reject(t, c, "%s: junk, or a Raft frame from a node without the cluster secret", why);
}

static void hs_check_peer(struct yggr_transport *t, struct tcp_conn *c)
{
    YGGR_ASSERT(c->hs.state == AUTH_STATE_CHECK_PEER);
    if (outbound_find(t, c->hs.peer) == NULL) {
        hs_reject(t, c, "node %llu is not a member here (unknown or removed)",
                  (unsigned long long)c->hs.peer);
        return;
    }
    if (auth_listener_challenge(&t->key, &c->hs) != 0) {
        hs_reject(t, c, "cannot build a CHALLENGE (libcrypto: no randomness?)");
        return;
    }
    hs_arm_send(t, c);
}

/* PROOF verified: the connection speaks for hs.peer, if it is still a member. */
static void authenticated(struct yggr_transport *t, struct tcp_conn *c)
{
    char where[64];
    struct tcp_net_peer *p = outbound_find(t, c->hs.peer);
    if (p == NULL) {
        hs_reject(t, c, "node %llu was removed during the handshake",
                  (unsigned long long)c->hs.peer);
        return;
    }
    YGGR_ASSERT(c->rbuf == NULL && c->sender == 0);
    c->rbuf = yggr_buf_alloc(TCP_RBUF_BYTES);
    if (c->rbuf == NULL) {
        hs_reject(t, c, "out of memory for a receive buffer");
        return;
    }
    c->sender = c->hs.peer;
    c->slot = (uint32_t)(p - t->npeers);
    c->state = TCP_CONN_ESTABLISHED;
    addr_format(&c->remote, where, sizeof(where));
    tcp_log(t, 3, "node %llu authenticated (connection from %s)", (unsigned long long)c->sender,
            where);
    arm_recv(t, c);
}

static void hs_recv_done(struct yggr_transport *t, struct tcp_conn *c, int res)
{
    char why[160];
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        hs_arm_recv(t, c);
        return;
    }
    if (res <= 0) {
        hs_reject(t, c, "connection %s during the handshake",
                  res == 0 ? "closed" : strerror(-res));
        return;
    }
    YGGR_ASSERT((uint32_t)res <= auth_want(&c->hs));
    count(&t->unknown.bytes_in, (uint64_t)res); /* invariant 1: pre-authentication bytes */
    enum auth_verdict v = auth_received(&t->key, &c->hs, (uint32_t)res, why, sizeof(why));
    switch (v) {
    case AUTH_VERDICT_MORE: hs_arm_recv(t, c); return;
    case AUTH_VERDICT_CHECK_PEER: hs_check_peer(t, c); return;
    case AUTH_VERDICT_DONE: authenticated(t, c); return;
    case AUTH_VERDICT_FAIL: hs_reject(t, c, "%s", why); return;
    case AUTH_VERDICT_NOT_HANDSHAKE: hs_not_handshake(t, c, why); return;
    case AUTH_VERDICT_SEND: break; /* a dialer's verdict */
    }
    YGGR_UNREACHABLE();
}

static void hs_send_done(struct yggr_transport *t, struct tcp_conn *c, int res)
{
    if (c->state == TCP_CONN_CLOSING) {
        return;
    }
    YGGR_ASSERT(c->state == TCP_CONN_HANDSHAKE);
    if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
        hs_arm_send(t, c);
        return;
    }
    if (res <= 0) {
        /* EPIPE, ECONNRESET: the dialer went away. */
        hs_reject(t, c, "sending the CHALLENGE failed: %s",
                  res == 0 ? "wrote nothing" : strerror(-res));
        return;
    }
    if (!auth_sent(&c->hs, (uint32_t)res)) {
        hs_arm_send(t, c);
        return;
    }
    YGGR_ASSERT(c->hs.state == AUTH_STATE_RECV_PROOF);
    hs_arm_recv(t, c);
}

static void conn_open(struct yggr_transport *t, int fd)
{
    struct tcp_conn *c = NULL;
    for (uint32_t i = 0; i < TCP_MAX_CONNS && c == NULL; i++) {
        c = t->conns[i].state == TCP_CONN_FREE ? &t->conns[i] : NULL;
    }
    /* With a secret the receive buffer waits for authentication (invariant 2). */
    struct yggr_buf *rbuf = c != NULL && !t->auth ? yggr_buf_alloc(TCP_RBUF_BYTES) : NULL;
    if (c == NULL || (!t->auth && rbuf == NULL)) {
        count(&t->unknown.decode_errors, 1);
        tcp_log(t, 1, "refusing a connection: %s",
                c == NULL ? "too many connections" : "out of memory");
        close(fd);
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *c = (struct tcp_conn){.state = TCP_CONN_HANDSHAKE, .fd = fd, .rbuf = rbuf,
                           .remote = t->accept_addr};
    c->op_recv = (struct tcp_op){.kind = TCP_OP_RECV, .owner = c};
    c->op_send = (struct tcp_op){.kind = TCP_OP_HS_SEND, .owner = c};
    t->conn_count++;
    if (!t->auth) {
        c->state = TCP_CONN_ESTABLISHED; /* reference wire: frames from the first byte */
        arm_recv(t, c);
        return;
    }
    auth_listener_start(&c->hs);
    c->hs.deadline_ns = net_now_ns() + (uint64_t)AUTH_TIMEOUT_MS * 1000000ull;
    hs_arm_recv(t, c);
}

void inbound_accept_arm(struct yggr_transport *t)
{
    YGGR_ASSERT(t->listen_fd >= 0);
    if (t->stopping || t->op_accept.busy) {
        return;
    }
    t->op_accept = (struct tcp_op){.kind = TCP_OP_ACCEPT, .owner = t};
    t->accept_addr.len = sizeof(t->accept_addr.u);
    struct io_uring_sqe *sqe = net_sqe(t, &t->op_accept);
    io_uring_prep_accept(sqe, t->listen_fd, &t->accept_addr.u.sa, &t->accept_addr.len,
                         SOCK_CLOEXEC);
}

static void accept_done(struct yggr_transport *t, int res)
{
    if (t->stopping) {
        if (res >= 0) {
            close(res);
        }
        close(t->listen_fd); /* no operation on it is in flight any more */
        t->listen_fd = -1;
        return;
    }
    if (res >= 0) {
        conn_open(t, res);
        inbound_accept_arm(t);
        return;
    }
    if (res == -EINTR || res == -EAGAIN || res == -ECONNABORTED || res == -EPERM ||
        res == -EPROTO) {
        inbound_accept_arm(t); /* that client's problem: keep accepting */
        return;
    }
    /* EMFILE, ENFILE, ENOBUFS, ENOMEM...: resources; retry in 100 ms (as the reference). */
    tcp_log(t, 1, "accept failed: %s; retrying in 100 ms", strerror(-res));
    t->accept_retry_at_ns = net_now_ns() + 100000000ull;
}

void inbound_complete(struct yggr_transport *t, struct tcp_op *op, int res)
{
    YGGR_ASSERT(op->kind == TCP_OP_ACCEPT || op->kind == TCP_OP_RECV ||
                op->kind == TCP_OP_HS_SEND);
    if (op->kind == TCP_OP_ACCEPT) {
        accept_done(t, res);
        return;
    }
    struct tcp_conn *c = op->owner;
    YGGR_ASSERT(c->inflight > 0);
    c->inflight--;
    if (op->kind == TCP_OP_RECV) {
        recv_done(t, c, res);
    } else {
        hs_send_done(t, c, res);
    }
    if (c->state == TCP_CONN_CLOSING && c->inflight == 0) {
        conn_finish(t, c);
    }
}

void inbound_release(struct yggr_transport *t, struct tcp_batch *b)
{
    YGGR_ASSERT(b != NULL && b->state == TCP_BATCH_OUT);
    YGGR_ASSERT(b->buf_count == 0 && b->extra == NULL); /* the driver dropped them */
    b->state = TCP_BATCH_FREE;
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        struct tcp_conn *c = &t->conns[i];
        if (c->state == TCP_CONN_ESTABLISHED && c->blocked) {
            c->blocked = false;
            parse(t, c);
            if (c->state == TCP_CONN_ESTABLISHED && !c->blocked) {
                arm_recv(t, c);
            }
        }
    }
}

void inbound_close_sender(struct yggr_transport *t, uint64_t id)
{
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        struct tcp_conn *c = &t->conns[i];
        bool est = c->state == TCP_CONN_ESTABLISHED && c->sender == id;
        bool hs = c->state == TCP_CONN_HANDSHAKE && c->hs.peer == id; /* claimed: vetted */
        if (id != 0 && (est || hs)) {
            conn_close(t, c);
        }
    }
}

void inbound_timers(struct yggr_transport *t, uint64_t now_ns, uint64_t *next_ns)
{
    YGGR_ASSERT(next_ns != NULL);
    YGGR_ASSERT(!t->stopping);
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        struct tcp_conn *c = &t->conns[i];
        if (c->state != TCP_CONN_HANDSHAKE) {
            continue;
        }
        YGGR_ASSERT(t->auth && c->hs.deadline_ns != 0);
        if (c->hs.deadline_ns <= now_ns) {
            hs_reject(t, c, "not authenticated within %u ms", AUTH_TIMEOUT_MS);
        } else if (c->hs.deadline_ns < *next_ns) {
            *next_ns = c->hs.deadline_ns;
        }
    }
}

void inbound_stop_all(struct yggr_transport *t)
{
    YGGR_ASSERT(t->stopping);
    if (t->op_accept.busy) {
        net_cancel(t, &t->op_accept); /* accept_done closes the listener */
    } else if (t->listen_fd >= 0) {
        close(t->listen_fd);
        t->listen_fd = -1;
    }
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        conn_close(t, &t->conns[i]);
    }
}

bool inbound_idle(const struct yggr_transport *t)
{
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        if (t->conns[i].inflight > 0) {
            return false;
        }
    }
    return true;
}
