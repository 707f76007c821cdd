/* SPDX-License-Identifier: MIT */
/* In-memory transport plugin: an in-process hub that moves deep copies of messages
 * between nodes, with drops and (one-way) partitions for tests.
 *
 * Design notes:
 * - send() deep-copies the message (entries, payloads, snapshot bytes, configuration)
 *   into one heap block and appends it to the target's inbox under the hub's mutex, then
 *   wakes the target's driver. poll() hands out one message per batch; release() frees.
 * - Faults are decided at send time from the hub's seeded PRNG: drop with a probability,
 *   or drop everything crossing a blocked (from, to) pair.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "yggr_assert.h"

#define MEM_NET_MAX 16

struct mem_msg {
    struct mem_msg *next;
    struct yggr_msg msg;
    struct yggr_membership config;
    struct yggr_buf *payload; /* all entry payloads / snapshot bytes, copied */
    struct yggr_entry entries[];
};

struct yggr_transport {
    struct mem_net *net;
    uint64_t id;
    yggr_wake_fn wake;
    void *wake_ctx;
    struct mem_msg *head; /* inbox, guarded by net->mu */
    struct mem_msg *tail;
    struct mem_msg *out;  /* handed out by poll, not yet released */
    uint64_t sent;
    uint64_t received;
    uint64_t dropped;
};

struct mem_net {
    pthread_mutex_t mu;
    uint64_t rng;
    uint32_t drop_permille;
    struct yggr_transport *nodes[MEM_NET_MAX];
    bool blocked[MEM_NET_MAX][MEM_NET_MAX]; /* by slot */
    uint64_t ids[MEM_NET_MAX];
};

struct mem_net *mem_net_new(uint64_t seed)
{
    struct mem_net *net = calloc(1, sizeof(*net));
    if (net != NULL) {
        pthread_mutex_init(&net->mu, NULL);
        net->rng = seed != 0 ? seed : 0x9E3779B97F4A7C15ull;
    }
    return net;
}

void mem_net_free(struct mem_net *net)
{
    if (net != NULL) {
        pthread_mutex_destroy(&net->mu);
        free(net);
    }
}

static int slot_of(struct mem_net *net, uint64_t id, bool create)
{
    for (int i = 0; i < MEM_NET_MAX; i++) {
        if (net->ids[i] == id) {
            return i;
        }
    }
    if (!create) {
        return -1;
    }
    for (int i = 0; i < MEM_NET_MAX; i++) {
        if (net->ids[i] == 0) {
            net->ids[i] = id;
            return i;
        }
    }
    return -1;
}

void mem_net_set_drop(struct mem_net *net, uint32_t permille)
{
    pthread_mutex_lock(&net->mu);
    net->drop_permille = permille;
    pthread_mutex_unlock(&net->mu);
}

void mem_net_block(struct mem_net *net, uint64_t from, uint64_t to, bool blocked)
{
    pthread_mutex_lock(&net->mu);
    int a = slot_of(net, from, true);
    int b = slot_of(net, to, true);
    YGGR_ASSERT(a >= 0 && b >= 0);
    net->blocked[a][b] = blocked;
    pthread_mutex_unlock(&net->mu);
}

void mem_net_isolate(struct mem_net *net, uint64_t id, bool isolated)
{
    pthread_mutex_lock(&net->mu);
    int a = slot_of(net, id, true);
    YGGR_ASSERT(a >= 0);
    for (int i = 0; i < MEM_NET_MAX; i++) {
        net->blocked[a][i] = isolated;
        net->blocked[i][a] = isolated;
    }
    pthread_mutex_unlock(&net->mu);
}

static uint64_t rng_next(struct mem_net *net)
{
    net->rng ^= net->rng << 13;
    net->rng ^= net->rng >> 7;
    net->rng ^= net->rng << 17;
    return net->rng;
}

static struct mem_msg *copy_msg(const struct yggr_msg *m)
{
    uint32_t n = m->type == YGGR_MSG_APPEND_REQUEST ? m->as.append.entry_count : 0;
    struct mem_msg *c = calloc(1, sizeof(*c) + n * sizeof(struct yggr_entry));
    YGGR_ASSERT(c != NULL);
    c->msg = *m;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        bytes += m->as.append.entries[i].len;
    }
    if (m->type == YGGR_MSG_SNAPSHOT_REQUEST) {
        bytes = m->as.snapshot.len;
        if (m->as.snapshot.config != NULL) {
            c->config = *m->as.snapshot.config;
            c->msg.as.snapshot.config = &c->config;
        }
    }
    c->payload = yggr_buf_alloc((uint32_t)(bytes > 0 ? bytes : 1));
    YGGR_ASSERT(c->payload != NULL);
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        c->entries[i] = m->as.append.entries[i];
        c->entries[i].buf = c->payload;
        c->entries[i].data = c->payload->data + off;
        if (c->entries[i].len > 0) {
            memcpy(c->payload->data + off, m->as.append.entries[i].data, c->entries[i].len);
        } else {
            c->entries[i].data = NULL;
        }
        off += c->entries[i].len;
    }
    if (m->type == YGGR_MSG_APPEND_REQUEST) {
        c->msg.as.append.entries = c->entries;
        c->msg.as.append.from_storage = false;
    }
    if (m->type == YGGR_MSG_SNAPSHOT_REQUEST) {
        if (m->as.snapshot.len > 0) {
            memcpy(c->payload->data, m->as.snapshot.data, m->as.snapshot.len);
        }
        c->msg.as.snapshot.data = c->payload->data;
        c->msg.as.snapshot.buf = c->payload;
    }
    return c;
}

static void free_msg(struct mem_msg *c)
{
    yggr_buf_release(c->payload);
    free(c);
}

static int mt_start(struct yggr_transport *t, yggr_wake_fn wake, void *ctx, int cpu, char *why,
                    size_t n)
{
    (void)cpu;
    (void)why;
    (void)n;
    pthread_mutex_lock(&t->net->mu);
    t->wake = wake;
    t->wake_ctx = ctx;
    pthread_mutex_unlock(&t->net->mu);
    return 0;
}

static int mt_set_peer(struct yggr_transport *t, uint64_t id, const char *addr)
{
    (void)t;
    (void)id;
    (void)addr;
    return 0;
}

static int mt_remove_peer(struct yggr_transport *t, uint64_t id)
{
    (void)t;
    (void)id;
    return 0;
}

static int mt_send(struct yggr_transport *t, const struct yggr_msg *m)
{
    struct mem_net *net = t->net;
    YGGR_ASSERT(m->from == t->id);
    pthread_mutex_lock(&net->mu);
    int a = slot_of(net, t->id, false);
    int b = slot_of(net, m->to, false);
    struct yggr_transport *dst = b >= 0 ? net->nodes[b] : NULL;
    bool drop = dst == NULL || net->blocked[a][b] ||
                (net->drop_permille > 0 && rng_next(net) % 1000 < net->drop_permille);
    if (drop) {
        t->dropped++;
        pthread_mutex_unlock(&net->mu);
        return 0;
    }
    struct mem_msg *c = copy_msg(m);
    if (dst->tail != NULL) {
        dst->tail->next = c;
    } else {
        dst->head = c;
    }
    dst->tail = c;
    t->sent++;
    /* Wake under the hub lock: close() takes it too, so the target node cannot be freed
     * between our lookup and the wake. */
    if (dst->wake != NULL) {
        dst->wake(dst->wake_ctx);
    }
    pthread_mutex_unlock(&net->mu);
    return 0;
}

static void mt_flush(struct yggr_transport *t)
{
    (void)t;
}

static bool mt_poll(struct yggr_transport *t, struct yggr_inbound *out)
{
    YGGR_ASSERT(t->out == NULL);
    pthread_mutex_lock(&t->net->mu);
    struct mem_msg *c = t->head;
    if (c != NULL) {
        t->head = c->next;
        if (t->head == NULL) {
            t->tail = NULL;
        }
        t->received++;
    }
    pthread_mutex_unlock(&t->net->mu);
    if (c == NULL) {
        return false;
    }
    t->out = c;
    out->msgs = &c->msg;
    out->count = 1;
    return true;
}

static void mt_release(struct yggr_transport *t, struct yggr_inbound *batch)
{
    YGGR_ASSERT(t->out != NULL && batch->msgs == &t->out->msg);
    free_msg(t->out);
    t->out = NULL;
}

static int mt_peer_metrics(struct yggr_transport *t, uint64_t id, struct yggr_peer_metrics *out)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    pthread_mutex_lock(&t->net->mu);
    out->connected = slot_of(t->net, id, false) >= 0;
    out->frames_out = t->sent;
    out->frames_in = t->received;
    out->send_drops = t->dropped;
    pthread_mutex_unlock(&t->net->mu);
    return 0;
}

static void mt_close(struct yggr_transport *t)
{
    struct mem_net *net = t->net;
    pthread_mutex_lock(&net->mu);
    int a = slot_of(net, t->id, false);
    if (a >= 0) {
        net->nodes[a] = NULL;
    }
    struct mem_msg *c = t->head;
    t->head = NULL;
    pthread_mutex_unlock(&net->mu);
    while (c != NULL) {
        struct mem_msg *next = c->next;
        free_msg(c);
        c = next;
    }
    if (t->out != NULL) {
        free_msg(t->out);
    }
    free(t);
}

static const struct yggr_transport_ops mem_transport_ops = {
    .start = mt_start,
    .set_peer = mt_set_peer,
    .remove_peer = mt_remove_peer,
    .send = mt_send,
    .flush = mt_flush,
    .poll = mt_poll,
    .release = mt_release,
    .peer_metrics = mt_peer_metrics,
    .close = mt_close,
};

int mem_transport_create(struct mem_net *net, uint64_t node_id,
                         const struct yggr_transport_ops **ops, struct yggr_transport **out)
{
    YGGR_ASSERT(net != NULL && node_id != 0);
    struct yggr_transport *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return YGGR_ERR_NOMEM;
    }
    t->net = net;
    t->id = node_id;
    pthread_mutex_lock(&net->mu);
    int a = slot_of(net, node_id, true);
    if (a < 0 || net->nodes[a] != NULL) {
        pthread_mutex_unlock(&net->mu);
        free(t);
        return YGGR_ERR_INVALID;
    }
    net->nodes[a] = t;
    pthread_mutex_unlock(&net->mu);
    *ops = &mem_transport_ops;
    *out = t;
    return 0;
}
