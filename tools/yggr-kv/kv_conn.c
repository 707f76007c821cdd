/* SPDX-License-Identifier: MIT */
/* yggr-kv connections: buffers, the in-order op ring, reading, writing, lifetime. */
#include "kv_conn.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct kv_conn *kv_conn_new(struct kv_server *s, int fd)
{
    struct kv_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->in_cap = KV_BUF_INITIAL;
    c->in = malloc(c->in_cap);
    c->out_cap = KV_BUF_INITIAL;
    c->out = malloc(c->out_cap);
    if (c->in == NULL || c->out == NULL) {
        free(c->in);
        free(c->out);
        free(c);
        return NULL;
    }
    c->s = s;
    c->fd = fd;
    c->reading = true;
    c->next = s->conns;
    s->conns = c;
    s->conn_count++;
    return c;
}

static struct kv_op *conn_slot(struct kv_conn *c, uint32_t seq)
{
    uint32_t i = seq % KV_OPS_PER_CONN;
    return &c->chunks[i / KV_OPS_CHUNK][i % KV_OPS_CHUNK];
}

struct kv_op *kv_conn_op_alloc(struct kv_conn *c, enum kv_op_kind kind)
{
    if (c->tail - c->head >= KV_OPS_PER_CONN) {
        return NULL;
    }
    uint32_t chunk = (c->tail % KV_OPS_PER_CONN) / KV_OPS_CHUNK;
    if (c->chunks[chunk] == NULL) {
        c->chunks[chunk] = calloc(KV_OPS_CHUNK, sizeof(struct kv_op));
        if (c->chunks[chunk] == NULL) {
            c->closing = true; /* out of memory: close rather than drop a request silently */
            return NULL;
        }
    }
    struct kv_op *op = conn_slot(c, c->tail);
    c->tail++;
    free(op->key);
    if (op->data != NULL && op->data != op->inl) {
        free(op->data);
    }
    memset(op, 0, sizeof(*op));
    op->kind = (uint8_t)kind;
    op->conn = c;
    op->data = op->inl;
    if (!c->busy_listed) {
        c->busy_listed = true;
        c->busy_next = c->s->busy;
        c->s->busy = c;
    }
    return op;
}

void kv_op_set_bytes(struct kv_op *op, const char *p, uint32_t n)
{
    if (n > KV_OP_INLINE) {
        op->data = malloc(n);
        if (op->data == NULL) {
            op->data = op->inl;
            op->err = YGGR_ERR_NOMEM;
            n = 0;
        }
    }
    if (n > 0) {
        memcpy(op->data, p, n);
    }
    op->len = n;
}

/* Called on yggr's threads (or inline): publish, then wake the server. */
void kv_op_finish(struct kv_op *op)
{
    struct kv_server *s = op->conn->s;
    atomic_store_explicit(&op->done, 1, memory_order_release);
    kv_server_poke(s);
}

void kv_conn_reply_text(struct kv_conn *c, const char *text, bool error)
{
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_TEXT);
    if (op == NULL) {
        return;
    }
    op->err = error ? YGGR_ERR_INVALID : 0;
    kv_op_set_bytes(op, text, (uint32_t)strlen(text));
    atomic_store_explicit(&op->done, 1, memory_order_relaxed);
}

static bool out_reserve(struct kv_conn *c, uint32_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len) {
        c->out_off = 0;
        c->out_len = 0;
    }
    if (c->out_len + n <= c->out_cap) {
        return true;
    }
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    uint32_t cap = c->out_cap;
    while (c->out_len + n > cap) {
        cap *= 2;
    }
    if (cap != c->out_cap) {
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            return false;
        }
        c->out = p;
        c->out_cap = cap;
    }
    return true;
}

/* Append to the output buffer (used by kv_proto_format). */
void kv_conn_out(struct kv_conn *c, const char *p, uint32_t n);
void kv_conn_out(struct kv_conn *c, const char *p, uint32_t n)
{
    if (out_reserve(c, n)) {
        memcpy(c->out + c->out_len, p, n);
        c->out_len += n;
    }
}

static void conn_arm(struct kv_conn *c)
{
    if (c->fd < 0) {
        return;
    }
    bool want_read = !c->closing && c->tail - c->head < KV_OPS_PER_CONN - 1 &&
                     c->out_len - c->out_off < KV_MAX_OUTPUT;
    bool want_write = c->out_len > c->out_off;
    if (want_read == c->reading && want_write == c->writing) {
        return;
    }
    c->reading = want_read;
    c->writing = want_write;
    struct epoll_event ev = {.data.ptr = c, .events = EPOLLRDHUP};
    ev.events |= want_read ? EPOLLIN : 0u;
    ev.events |= want_write ? EPOLLOUT : 0u;
    epoll_ctl(c->s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_shut(struct kv_conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->s->dead++;
    }
    c->closing = true;
}

/* Give a grown buffer back once it is empty (keeps the old one if malloc fails). */
static void buf_shrink(char **buf, uint32_t *cap)
{
    char *p = malloc(KV_BUF_INITIAL);
    if (p != NULL) {
        free(*buf);
        *buf = p;
        *cap = KV_BUF_INITIAL;
    }
}

static void conn_write(struct kv_conn *c)
{
    while (c->fd >= 0 && c->out_len > c->out_off) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_shut(c);
            }
            break;
        }
        c->out_off += (uint32_t)n;
    }
    if (c->out_off == c->out_len) {
        c->out_off = 0;
        c->out_len = 0;
        if (c->out_cap > KV_BUF_KEEP) {
            buf_shrink(&c->out, &c->out_cap); /* a burst of big replies is over */
        }
        if (c->closing && c->head == c->tail) {
            conn_shut(c);
        }
    }
}

/* Format every completed op at the head of the ring, in order. */
static void conn_collect(struct kv_conn *c)
{
    while (c->head != c->tail) {
        struct kv_op *op = conn_slot(c, c->head);
        if (!atomic_load_explicit(&op->done, memory_order_acquire)) {
            break;
        }
        if (c->fd >= 0) {
            kv_proto_format(c, op);
        }
        c->head++;
    }
    if (c->head == c->tail) {
        c->head = 0; /* nothing in flight: reuse the first chunk's slots */
        c->tail = 0;
    }
}

static void conn_parse(struct kv_conn *c)
{
    uint32_t off = 0;
    while (off < c->in_len && !c->closing && c->tail - c->head < KV_OPS_PER_CONN - 1 &&
           c->out_len - c->out_off < KV_MAX_OUTPUT) {
        char *save = c->in;
        c->in += off;
        uint32_t save_len = c->in_len;
        c->in_len -= off;
        long used = kv_proto_parse_one(c);
        c->in = save;
        c->in_len = save_len;
        if (used <= 0) {
            break;
        }
        off += (uint32_t)used;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
        if (c->in_len == 0 && c->in_cap > KV_BUF_KEEP) {
            buf_shrink(&c->in, &c->in_cap);
        }
    }
}

static void conn_read(struct kv_conn *c)
{
    while (c->fd >= 0 && c->reading) {
        if (c->in_len == c->in_cap) {
            if (c->in_cap >= 2 * KV_MAX_REQUEST) {
                break; /* parse first; an oversized element is rejected by the parser */
            }
            char *p = realloc(c->in, c->in_cap * 2);
            if (p == NULL) {
                break;
            }
            c->in = p;
            c->in_cap *= 2;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n > 0) {
            c->in_len += (uint32_t)n;
            conn_parse(c);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c->closing = true;
            if (c->head == c->tail && c->out_len == c->out_off) {
                conn_shut(c);
            }
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        break;
    }
}

void kv_conn_event(struct kv_conn *c, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        conn_read(c);
    }
    conn_collect(c);
    conn_write(c);
    conn_arm(c);
}

void kv_conn_flush_busy(struct kv_server *s)
{
    struct kv_conn **pp = &s->busy;
    while (*pp != NULL) {
        struct kv_conn *c = *pp;
        conn_collect(c);
        if (c->in_len > 0 && !c->closing) {
            conn_parse(c); /* resume a connection paused by backpressure */
            conn_collect(c);
        }
        conn_write(c);
        conn_arm(c);
        if (c->head == c->tail) {
            c->busy_listed = false;
            *pp = c->busy_next;
        } else {
            pp = &c->busy_next;
        }
    }
}

static void conn_free(struct kv_conn *c)
{
    for (uint32_t k = 0; k < KV_OP_CHUNKS; k++) {
        struct kv_op *ops = c->chunks[k];
        for (uint32_t i = 0; ops != NULL && i < KV_OPS_CHUNK; i++) {
            free(ops[i].key);
            if (ops[i].data != NULL && ops[i].data != ops[i].inl) {
                free(ops[i].data);
            }
        }
        free(ops);
    }
    free(c->in);
    free(c->out);
    free(c);
}

void kv_conn_reap(struct kv_server *s)
{
    if (s->dead == 0) {
        return; /* nothing closed since the last walk: don't walk thousands of idle conns */
    }
    struct kv_conn **pp = &s->conns;
    uint32_t freed = 0;
    uint32_t waiting = 0;
    while (*pp != NULL) {
        struct kv_conn *c = *pp;
        if (c->fd < 0 && c->head == c->tail && !c->busy_listed) {
            *pp = c->next;
            s->conn_count--;
            conn_free(c);
            freed++;
        } else {
            waiting += c->fd < 0; /* closed, replies still owed to yggr's threads */
            pp = &c->next;
        }
    }
    s->dead = waiting;
    /* After a wave of disconnects, hand the freed pages back to the kernel: glibc keeps
     * them in its heaps otherwise, and RSS would stay at the high-water mark for good. */
    s->freed_since_trim += freed;
    if (s->freed_since_trim >= KV_TRIM_AFTER_FREES) {
        s->freed_since_trim = 0;
        malloc_trim(0);
    }
}

void kv_conn_close_all(struct kv_server *s)
{
    while (s->conns != NULL) {
        struct kv_conn *c = s->conns;
        s->conns = c->next;
        conn_shut(c);
        conn_free(c);
    }
    s->busy = NULL;
    s->conn_count = 0;
}
