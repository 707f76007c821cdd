/* SPDX-License-Identifier: MIT */
/* The TCP transport's public face: create() and the vtable the driver thread calls. */

/*
 * Design notes
 * ------------
 * Everything here runs on the DRIVER thread (except tcp_log, called by both) and never
 * blocks: send() encodes the frame straight into the peer's open chunk (a refcount-free
 * byte buffer of whole frames), flush() hands closed chunks to the network thread over the
 * cmd ring and rings its doorbell if it is parked.
 *
 * Memory budget and drop policy per peer (REFERENCE 8.2 #18), all on this thread:
 *   outstanding = capacity of every chunk of that peer not yet returned by the network
 *   thread (open, staged, queued there, in flight). A frame that needs a new chunk is
 *   accepted only while outstanding + chunk <= peer_queue_bytes (one frame is always
 *   accepted when nothing is outstanding, so a frame bigger than the budget still goes).
 *   Otherwise, and whenever the link is DOWN (its dial failed; it is in backoff):
 *     - a heartbeat (AppendEntries without entries) is parked in a one-frame slot, newest
 *       wins (the replaced one counts as a drop) and goes out when room or the link
 *       returns (the network thread wakes the driver on connect);
 *     - any other message is dropped and counted; the engine resends what matters.
 *   So send() never blocks, a dead or slow peer never holds more than its budget, and
 *   traffic to healthy peers is untouched.
 *
 * Chunks come in three cached sizes: tiny (256 B) or small (4 KiB) for the first frame
 * after a flush, so a lone heartbeat or vote pins 256 bytes of budget, not 64 KiB, and
 * `chunk_bytes` (budget/8, clamped to 4..64 KiB) after that; a bigger frame gets a chunk
 * of its own size.
 * Payloads are copied into the frame. Measured with tools/bench-transport (64 x 4 KiB
 * entries per AppendEntries): 0.77-0.87 of a blocking send/recv loop that moves the same
 * bytes without encoding or decoding, about 1.8-2.9 GB/s; the copy is not the bottleneck,
 * so iovecs pointing at entry buffers (and their refcount traffic) are not used.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "tcp.h"
#include "yggr_assert.h"

#ifdef TCP_TSAN
pthread_mutex_t tcp_tsan_ring_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

#define TCP_DEFAULT_FRAME_BYTES (64u << 20)
#define TCP_MAX_FRAME_BYTES (1u << 30)
#define TCP_DEFAULT_QUEUE_BYTES (64ull << 20)
#define TCP_FREE_TINY_MAX 1024u
#define TCP_FREE_SMALL_MAX 256u
#define TCP_FREE_LARGE_MAX 64u

void tcp_log(struct yggr_transport *t, int level, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->log_fn != NULL) {
        t->log_fn(t->log_ctx, level, msg);
    } else if (level <= 1) {
        fprintf(stderr, "yggr-net: %s\n", msg);
    }
}

static void set_why(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t size, const char *fmt, ...)
{
    if (why == NULL || size == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------------------
 * Doorbell and chunks
 * ------------------------------------------------------------------------------------- */

static void ring_doorbell(struct yggr_transport *t)
{
    /* Dekker with the network thread's (store parked; fence; load ring): after this fence
     * either it sees our pushes or we see it parked. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&t->parked, memory_order_relaxed)) {
        return;
    }
    if (atomic_exchange_explicit(&t->bell_pending, true, memory_order_relaxed)) {
        return; /* an unconsumed write will wake it */
    }
    uint64_t one = 1;
    ssize_t n = write(t->bell_fd, &one, sizeof(one));
    YGGR_ASSERT(n == (ssize_t)sizeof(one));
}

/* Cached chunk classes: 0 tiny, 1 small, 2 chunk_bytes; -1 = an odd size (malloc/free). */
static int chunk_class(const struct yggr_transport *t, uint32_t cap)
{
    return cap == TCP_TINY_CHUNK    ? 0
           : cap == TCP_SMALL_CHUNK ? 1
           : cap == t->chunk_bytes  ? 2
                                    : -1;
}

static struct tcp_chunk *chunk_get(struct yggr_transport *t, uint32_t cap)
{
    int k = chunk_class(t, cap);
    struct tcp_chunk *c = NULL;
    if (k >= 0 && t->free_list[k] != NULL) {
        c = t->free_list[k];
        t->free_list[k] = c->next;
        t->free_count[k]--;
    } else {
        c = malloc(sizeof(*c) + cap);
        if (c == NULL) {
            return NULL;
        }
    }
    *c = (struct tcp_chunk){.cap = cap};
    return c;
}

static void chunk_put(struct yggr_transport *t, struct tcp_chunk *c)
{
    static const uint32_t keep[3] = {TCP_FREE_TINY_MAX, TCP_FREE_SMALL_MAX, TCP_FREE_LARGE_MAX};
    int k = chunk_class(t, c->cap);
    if (k >= 0 && t->free_count[k] < keep[k]) {
        c->next = t->free_list[k];
        t->free_list[k] = c;
        t->free_count[k]++;
    } else {
        free(c);
    }
}

static void free_chunk_list(struct tcp_chunk *c)
{
    while (c != NULL) {
        struct tcp_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* Take back chunks the network thread is done with. */
static void reclaim(struct yggr_transport *t)
{
    struct tcp_chunk *c;
    while ((c = tcp_ptr_pop(&t->chunk_ring, t->chunk_slots)) != NULL) {
        YGGR_ASSERT(c->slot < TCP_MAX_PEERS);
        struct tcp_drv_peer *dp = &t->dpeers[c->slot];
        if (dp->used && dp->gen == c->gen) {
            YGGR_ASSERT(dp->outstanding >= c->cap);
            dp->outstanding -= c->cap;
        }
        chunk_put(t, c);
    }
}

static struct tcp_drv_peer *drv_peer_find(struct yggr_transport *t, uint64_t id)
{
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        if (t->dpeers[i].used && t->dpeers[i].id == id) {
            return &t->dpeers[i];
        }
    }
    return NULL;
}

static uint32_t slot_of(const struct yggr_transport *t, const struct tcp_drv_peer *dp)
{
    return (uint32_t)(dp - t->dpeers);
}

static bool push_cmd(struct yggr_transport *t, struct tcp_cmd *cmd)
{
    return tcp_cmd_push(&t->cmd_ring, t->cmd_slots, cmd);
}

/* Close the open chunk: it waits in `staged` until the cmd ring takes it. */
static void stage(struct tcp_drv_peer *dp)
{
    struct tcp_chunk *c = dp->open;
    if (c == NULL) {
        return;
    }
    YGGR_ASSERT(c->len > 0 && c->frames > 0);
    dp->open = NULL;
    c->next = NULL;
    if (dp->staged_tail != NULL) {
        dp->staged_tail->next = c;
    } else {
        dp->staged = c;
    }
    dp->staged_tail = c;
}

static bool push_staged(struct yggr_transport *t, struct tcp_drv_peer *dp)
{
    bool pushed = false;
    while (dp->staged != NULL) {
        struct tcp_chunk *c = dp->staged;
        struct tcp_cmd cmd = {.type = TCP_CMD_SEND, .slot = slot_of(t, dp), .gen = dp->gen,
                              .ptr = c};
        struct tcp_chunk *next = c->next;
        if (!push_cmd(t, &cmd)) {
            break; /* ring full: backpressure, keep them for the next flush */
        }
        pushed = true;
        dp->staged = next;
    }
    if (dp->staged == NULL) {
        dp->staged_tail = NULL;
    }
    return pushed;
}

static enum tcp_link_view link_view(struct yggr_transport *t, const struct tcp_drv_peer *dp)
{
    const struct tcp_stats *s = &t->stats[slot_of(t, dp)];
    if (atomic_load_explicit(&s->gen, memory_order_acquire) != dp->gen) {
        return TCP_VIEW_PENDING; /* the network thread has not seen this peer yet */
    }
    return (enum tcp_link_view)atomic_load_explicit(&s->link, memory_order_relaxed);
}

/* Room for `size` more frame bytes: a pointer into the open chunk, or NULL (over budget or
 * out of memory). */
static uint8_t *reserve(struct yggr_transport *t, struct tcp_drv_peer *dp, size_t size)
{
    struct tcp_chunk *c = dp->open;
    if (c != NULL && c->cap - c->len >= size) {
        return c->data + c->len;
    }
    uint32_t cap = c == NULL && size <= TCP_TINY_CHUNK    ? TCP_TINY_CHUNK
                   : c == NULL && size <= TCP_SMALL_CHUNK ? TCP_SMALL_CHUNK
                   : size <= t->chunk_bytes               ? t->chunk_bytes
                                                          : (uint32_t)size;
    if (dp->outstanding > 0 && dp->outstanding + cap > t->peer_queue_bytes) {
        return NULL;
    }
    struct tcp_chunk *n = chunk_get(t, cap);
    if (n == NULL) {
        return NULL;
    }
    stage(dp);
    n->slot = slot_of(t, dp);
    n->gen = dp->gen;
    dp->open = n;
    dp->outstanding += cap;
    return n->data;
}

static void commit(struct tcp_drv_peer *dp, size_t size)
{
    YGGR_ASSERT(dp->open != NULL);
    YGGR_ASSERT(dp->open->cap - dp->open->len >= size);
    dp->open->len += (uint32_t)size;
    dp->open->frames++;
}

static void park_heartbeat(struct yggr_transport *t, struct tcp_drv_peer *dp,
                           const struct yggr_msg *msg, size_t size)
{
    YGGR_ASSERT(size <= sizeof(dp->hb));
    if (dp->hb_len > 0) {
        dp->drops++; /* coalesced: only the newest heartbeat is kept */
    }
    dp->hb_len = (uint32_t)codec_frame_encode(t->self, msg, dp->hb, sizeof(dp->hb));
}

/* A parked heartbeat goes out once the link is not down and the budget has room. */
static void unpark_heartbeat(struct yggr_transport *t, struct tcp_drv_peer *dp)
{
    if (dp->hb_len == 0 || link_view(t, dp) == TCP_VIEW_DOWN) {
        return;
    }
    uint8_t *p = reserve(t, dp, dp->hb_len);
    if (p != NULL) {
        memcpy(p, dp->hb, dp->hb_len);
        commit(dp, dp->hb_len);
        dp->hb_len = 0;
    }
}

/* ---------------------------------------------------------------------------------------
 * Driver-thread operations
 * ------------------------------------------------------------------------------------- */

static int tcp_send(struct yggr_transport *t, const struct yggr_msg *msg)
{
    YGGR_ASSERT(t != NULL && msg != NULL);
    YGGR_ASSERT(msg->type >= YGGR_MSG_VOTE_REQUEST && msg->type <= YGGR_MSG_PRE_VOTE_RESPONSE);
    struct tcp_drv_peer *dp = msg->to != 0 ? drv_peer_find(t, msg->to) : NULL;
    if (dp == NULL) {
        return YGGR_ERR_UNKNOWN_NODE;
    }
    reclaim(t);
    size_t size = codec_frame_size(msg);
    if (size > (size_t)t->max_frame_bytes + CODEC_FRAME_HEADER_BYTES) {
        dp->drops++;
        return YGGR_ERR_TOO_LARGE;
    }
    bool heartbeat = msg->type == YGGR_MSG_APPEND_REQUEST && msg->as.append.entry_count == 0 &&
                     size <= TCP_HEARTBEAT_MAX;
    uint8_t *p = NULL;
    if (link_view(t, dp) != TCP_VIEW_DOWN) {
        p = reserve(t, dp, size);
    }
    if (p == NULL) {
        if (heartbeat) {
            park_heartbeat(t, dp, msg, size);
        } else {
            dp->drops++;
        }
        return 0;
    }
    if (heartbeat && dp->hb_len > 0) {
        dp->hb_len = 0; /* superseded by this newer one */
        dp->drops++;
    }
    size_t n = codec_frame_encode(t->self, msg, p, size);
    YGGR_ASSERT(n == size);
    commit(dp, n);
    return 0;
}

static void push_unreleased(struct yggr_transport *t)
{
    while (t->unreleased_count > 0) {
        struct tcp_cmd cmd = {.type = TCP_CMD_RELEASE, .ptr = t->unreleased[0]};
        if (!push_cmd(t, &cmd)) {
            return;
        }
        t->unreleased_count--;
        memmove(&t->unreleased[0], &t->unreleased[1], t->unreleased_count * sizeof(void *));
    }
}

static void tcp_flush(struct yggr_transport *t)
{
    YGGR_ASSERT(t != NULL);
    bool pushed = false;
    reclaim(t);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        struct tcp_drv_peer *dp = &t->dpeers[i];
        if (!dp->used) {
            continue;
        }
        unpark_heartbeat(t, dp);
        stage(dp);
        pushed |= push_staged(t, dp);
    }
    uint32_t before = t->unreleased_count;
    push_unreleased(t);
    if (pushed || before != t->unreleased_count) {
        ring_doorbell(t);
    }
}

static bool tcp_poll(struct yggr_transport *t, struct yggr_inbound *out)
{
    YGGR_ASSERT(t != NULL && out != NULL);
    reclaim(t);
    if (t->unreleased_count > 0) {
        push_unreleased(t);
        ring_doorbell(t);
    }
    struct tcp_batch *b = tcp_ptr_pop(&t->batch_ring, t->batch_slots);
    if (b == NULL) {
        return false;
    }
    YGGR_ASSERT(b->count > 0);
    out->msgs = b->msgs;
    out->count = b->count;
    return true;
}

static void tcp_release(struct yggr_transport *t, struct yggr_inbound *batch)
{
    YGGR_ASSERT(t != NULL && batch != NULL);
    struct tcp_batch *b = NULL;
    for (uint32_t i = 0; i < TCP_BATCHES && b == NULL; i++) {
        b = t->batches[i].msgs == batch->msgs ? &t->batches[i] : NULL;
    }
    YGGR_ASSERT(b != NULL); /* not one of ours: API misuse */
    for (uint32_t i = 0; i < b->buf_count; i++) {
        yggr_buf_release(b->bufs[i]);
    }
    b->buf_count = 0;
    free(b->extra);
    b->extra = NULL;
    batch->msgs = NULL;
    batch->count = 0;
    YGGR_ASSERT(t->unreleased_count < TCP_BATCHES);
    t->unreleased[t->unreleased_count++] = b;
    push_unreleased(t);
    ring_doorbell(t);
}

static int tcp_set_peer(struct yggr_transport *t, uint64_t id, const char *addr)
{
    struct tcp_cmd cmd = {.type = TCP_CMD_PEER_SET, .id = id};
    YGGR_ASSERT(t != NULL);
    if (id == 0 || addr_parse(addr, &cmd.addr) != 0) {
        return YGGR_ERR_INVALID;
    }
    if (id == t->self) {
        return 0; /* as the reference: our own entry in the peer map is ignored */
    }
    struct tcp_drv_peer *dp = drv_peer_find(t, id);
    bool fresh = dp == NULL;
    for (uint32_t i = 0; i < TCP_MAX_PEERS && dp == NULL; i++) {
        dp = t->dpeers[i].used ? NULL : &t->dpeers[i];
    }
    if (dp == NULL) {
        return YGGR_ERR_INVALID; /* more than TCP_MAX_PEERS peers */
    }
    cmd.slot = slot_of(t, dp);
    cmd.gen = fresh ? dp->gen + 1 : dp->gen;
    if (!push_cmd(t, &cmd)) {
        return YGGR_ERR_BUSY;
    }
    if (fresh) {
        uint32_t gen = cmd.gen;
        *dp = (struct tcp_drv_peer){.id = id, .gen = gen, .used = true};
    }
    ring_doorbell(t);
    return 0;
}

static int tcp_remove_peer(struct yggr_transport *t, uint64_t id)
{
    YGGR_ASSERT(t != NULL);
    struct tcp_drv_peer *dp = id != 0 ? drv_peer_find(t, id) : NULL;
    if (dp == NULL) {
        return YGGR_ERR_UNKNOWN_NODE;
    }
    struct tcp_cmd cmd = {.type = TCP_CMD_PEER_REMOVE, .slot = slot_of(t, dp), .gen = dp->gen,
                          .id = id};
    if (!push_cmd(t, &cmd)) {
        return YGGR_ERR_BUSY;
    }
    if (dp->open != NULL) {
        chunk_put(t, dp->open);
    }
    free_chunk_list(dp->staged);
    uint32_t gen = dp->gen;
    *dp = (struct tcp_drv_peer){.gen = gen}; /* in-flight chunks return with a stale gen */
    ring_doorbell(t);
    return 0;
}

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int tcp_peer_metrics(struct yggr_transport *t, uint64_t id, struct yggr_peer_metrics *out)
{
    YGGR_ASSERT(t != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    out->id = id;
    const struct tcp_stats *s = &t->unknown; /* id 0: frames from unknown senders */
    struct tcp_drv_peer *dp = NULL;
    if (id != 0) {
        dp = drv_peer_find(t, id);
        if (dp == NULL) {
            return YGGR_ERR_UNKNOWN_NODE;
        }
        s = &t->stats[slot_of(t, dp)];
        out->send_drops = dp->drops;
        /* Acquire pairs with the release in init_peer: counters are this peer's. */
        if (atomic_load_explicit(&s->gen, memory_order_acquire) != dp->gen) {
            return 0;
        }
        out->connected = atomic_load_explicit(&s->link, memory_order_relaxed) == TCP_VIEW_UP;
    }
    out->bytes_out = load(&s->bytes_out);
    out->bytes_in = load(&s->bytes_in);
    out->frames_out = load(&s->frames_out);
    out->frames_in = load(&s->frames_in);
    out->reconnects = load(&s->reconnects);
    out->send_drops += load(&s->drops);
    out->decode_errors = load(&s->decode_errors);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------------------- */

static int tcp_start(struct yggr_transport *t, yggr_wake_fn wake, void *wake_ctx, int cpu,
                     char *why, size_t why_size)
{
    char where[64];
    YGGR_ASSERT(t != NULL);
    if (t->started) {
        set_why(why, why_size, "transport already started");
        return YGGR_ERR_INVALID;
    }
    addr_format(&t->listen_addr, where, sizeof(where));
    int rc = addr_listen(&t->listen_addr, &t->listen_fd);
    if (rc != 0) {
        set_why(why, why_size, "cannot listen on %s: %s", where, strerror(-rc));
        return YGGR_ERR_IO;
    }
    /* Port 0 asks for any free port: remember the real one. */
    socklen_t len = sizeof(t->listen_addr.u);
    rc = getsockname(t->listen_fd, &t->listen_addr.u.sa, &len) == 0 ? 0 : -errno;
    YGGR_ASSERT(rc == 0 && len == t->listen_addr.len);
    t->wake = wake;
    t->wake_ctx = wake_ctx;
    t->cpu = cpu;
    t->init_rc = 1;
    rc = pthread_create(&t->thread, NULL, net_main, t);
    if (rc == 0) {
        pthread_mutex_lock(&t->init_lock);
        while (t->init_rc == 1) {
            pthread_cond_wait(&t->init_cond, &t->init_lock);
        }
        rc = t->init_rc;
        pthread_mutex_unlock(&t->init_lock);
        if (rc != 0) {
            pthread_join(t->thread, NULL);
        }
    } else {
        rc = -rc;
    }
    if (rc != 0) {
        close(t->listen_fd);
        t->listen_fd = -1;
        set_why(why, why_size, "cannot start the network thread: %s", strerror(-rc));
        return YGGR_ERR_IO;
    }
    t->started = true;
    return 0;
}

static void stop_thread(struct yggr_transport *t)
{
    struct tcp_cmd stop = {.type = TCP_CMD_STOP};
    while (!push_cmd(t, &stop)) {
        ring_doorbell(t); /* full ring: the network thread is draining it */
        sched_yield();
    }
    ring_doorbell(t);
    int rc = pthread_join(t->thread, NULL);
    YGGR_ASSERT(rc == 0);
    t->started = false;
}

/* After the network thread is gone every chunk, batch and buffer is ours to free. */
static void free_net_side(struct yggr_transport *t)
{
    struct tcp_cmd cmd;
    while (tcp_cmd_pop(&t->cmd_ring, t->cmd_slots, &cmd)) {
        if (cmd.type == TCP_CMD_SEND) {
            free(cmd.ptr);
        }
    }
    void *p;
    while ((p = tcp_ptr_pop(&t->chunk_ring, t->chunk_slots)) != NULL) {
        free(p);
    }
    free_chunk_list(t->ret_head);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        free_chunk_list(t->npeers[i].head);
        YGGR_ASSERT(t->npeers[i].fd < 0);
    }
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        YGGR_ASSERT(t->conns[i].state == TCP_CONN_FREE);
    }
    for (uint32_t i = 0; i < TCP_BATCHES; i++) {
        struct tcp_batch *b = &t->batches[i];
        for (uint32_t k = 0; k < b->buf_count; k++) {
            yggr_buf_release(b->bufs[k]);
        }
        free(b->extra);
        free(b->msgs);
        free(b->entries);
        free(b->configs);
    }
}

static void tcp_close(struct yggr_transport *t)
{
    if (t == NULL) {
        return;
    }
    if (t->started) {
        stop_thread(t);
    }
    YGGR_ASSERT(!t->started);
    free_net_side(t);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        free(t->dpeers[i].open);
        free_chunk_list(t->dpeers[i].staged);
    }
    for (int k = 0; k < 3; k++) {
        free_chunk_list(t->free_list[k]);
    }
    if (t->listen_fd >= 0) {
        close(t->listen_fd);
    }
    if (t->bell_fd >= 0) {
        close(t->bell_fd);
    }
    free(t->cmd_slots);
    free(t->chunk_slots);
    free(t->batch_slots);
    auth_key_wipe(&t->key);
    pthread_mutex_destroy(&t->init_lock);
    pthread_cond_destroy(&t->init_cond);
    free(t);
}

static const struct yggr_transport_ops tcp_ops = {
    .start = tcp_start,
    .set_peer = tcp_set_peer,
    .remove_peer = tcp_remove_peer,
    .send = tcp_send,
    .flush = tcp_flush,
    .poll = tcp_poll,
    .release = tcp_release,
    .peer_metrics = tcp_peer_metrics,
    .close = tcp_close,
};

static int check_options(const struct yggr_tcp_options *o, struct tcp_addr *listen, char *why,
                         size_t why_size)
{
    if (o->node_id == 0) {
        set_why(why, why_size, "node_id must be non-zero");
        return YGGR_ERR_INVALID;
    }
    if (addr_parse(o->listen_addr, listen) != 0) {
        set_why(why, why_size, "listen_addr \"%s\" is not a numeric host:port",
                o->listen_addr != NULL ? o->listen_addr : "(null)");
        return YGGR_ERR_INVALID;
    }
    if (o->secret == NULL && o->secret_len != 0) {
        set_why(why, why_size, "secret_len is %u but secret is NULL", o->secret_len);
        return YGGR_ERR_INVALID;
    }
    if (o->secret != NULL && o->secret_len < AUTH_SECRET_MIN_BYTES) {
        set_why(why, why_size, "the cluster secret is %u bytes; use at least %u", o->secret_len,
                AUTH_SECRET_MIN_BYTES);
        return YGGR_ERR_INVALID;
    }
    if (o->max_frame_bytes > TCP_MAX_FRAME_BYTES) {
        set_why(why, why_size, "max_frame_bytes %u is over the 1 GiB limit", o->max_frame_bytes);
        return YGGR_ERR_INVALID;
    }
    return 0;
}

static int alloc_memory(struct yggr_transport *t)
{
    t->cmd_slots = calloc(TCP_CMD_SLOTS, sizeof(*t->cmd_slots));
    t->chunk_slots = calloc(TCP_CHUNK_RING_SLOTS, sizeof(*t->chunk_slots));
    t->batch_slots = calloc(TCP_BATCH_RING_SLOTS, sizeof(*t->batch_slots));
    bool ok = t->cmd_slots != NULL && t->chunk_slots != NULL && t->batch_slots != NULL;
    for (uint32_t i = 0; i < TCP_BATCHES; i++) {
        struct tcp_batch *b = &t->batches[i];
        b->msgs = calloc(TCP_BATCH_MSGS, sizeof(*b->msgs));
        b->entries = calloc(TCP_BATCH_ENTRIES, sizeof(*b->entries));
        b->configs = calloc(TCP_BATCH_CONFIGS, sizeof(*b->configs));
        ok = ok && b->msgs != NULL && b->entries != NULL && b->configs != NULL;
    }
    if (!ok) {
        return -ENOMEM;
    }
    ck_ring_init(&t->cmd_ring, TCP_CMD_SLOTS);
    ck_ring_init(&t->chunk_ring, TCP_CHUNK_RING_SLOTS);
    ck_ring_init(&t->batch_ring, TCP_BATCH_RING_SLOTS);
    return 0;
}

int yggr_tcp_transport_create(const struct yggr_tcp_options *options,
                              const struct yggr_transport_ops **ops, struct yggr_transport **out,
                              char *why, size_t why_size)
{
    struct tcp_addr listen;
    if (options == NULL || ops == NULL || out == NULL) {
        set_why(why, why_size, "options, ops and out are required");
        return YGGR_ERR_INVALID;
    }
    int rc = check_options(options, &listen, why, why_size);
    if (rc != 0) {
        return rc;
    }
    struct yggr_transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        set_why(why, why_size, "out of memory");
        return YGGR_ERR_NOMEM;
    }
    t->self = options->node_id;
    t->listen_addr = listen;
    t->bind_outgoing = !addr_is_wildcard(&listen);
    t->max_frame_bytes = options->max_frame_bytes ? options->max_frame_bytes
                                                  : TCP_DEFAULT_FRAME_BYTES;
    t->peer_queue_bytes = options->peer_queue_bytes ? options->peer_queue_bytes
                                                    : TCP_DEFAULT_QUEUE_BYTES;
    uint64_t chunk = t->peer_queue_bytes / 8;
    t->chunk_bytes = chunk < TCP_SMALL_CHUNK ? TCP_SMALL_CHUNK
                     : chunk > (64u << 10)   ? (64u << 10)
                                             : (uint32_t)chunk;
    t->log_fn = options->log_fn;
    t->log_ctx = options->log_ctx;
    t->listen_fd = -1;
    /* The secret is borrowed: only the derived key is kept (wiped at close). */
    t->auth = options->secret != NULL;
    if (t->auth && auth_key_init(&t->key, options->secret, options->secret_len,
                                 options->cluster_id, options->node_id) != 0) {
        set_why(why, why_size, "cannot derive the authentication key (libcrypto failed)");
        free(t);
        return YGGR_ERR_IO;
    }
    t->rng = (options->node_id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)time(NULL) ^ 1u;
    for (uint32_t i = 0; i < TCP_MAX_CONNS; i++) {
        t->conns[i].fd = -1;
    }
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        t->npeers[i].fd = -1;
    }
    pthread_mutex_init(&t->init_lock, NULL);
    pthread_cond_init(&t->init_cond, NULL);
    t->bell_fd = eventfd(0, EFD_CLOEXEC); /* blocking: io_uring must poll it, not get EAGAIN */
    if (t->bell_fd < 0 || alloc_memory(t) != 0) {
        set_why(why, why_size, "cannot allocate the transport: %s", strerror(errno));
        tcp_close(t);
        return YGGR_ERR_NOMEM;
    }
    *ops = &tcp_ops;
    *out = t;
    return 0;
}

uint16_t tcp_transport_port(const struct yggr_transport *t)
{
    YGGR_ASSERT(t != NULL);
    return addr_port(&t->listen_addr);
}

uint64_t tcp_transport_queued_bytes(const struct yggr_transport *t, uint64_t id)
{
    YGGR_ASSERT(t != NULL);
    for (uint32_t i = 0; i < TCP_MAX_PEERS; i++) {
        if (t->dpeers[i].used && t->dpeers[i].id == id) {
            return t->dpeers[i].outstanding;
        }
    }
    return 0;
}
