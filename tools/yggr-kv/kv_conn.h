/* SPDX-License-Identifier: MIT */
/* yggr-kv client connections: parsing, ops, in-order replies. */
#ifndef YGGR_TOOLS_KV_CONN_H
#define YGGR_TOOLS_KV_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kv.h"

#define KV_MAX_REQUEST      (1u << 20) /* one line / one RESP element */
#define KV_MAX_OUTPUT       (8u << 20) /* stop parsing while more is unsent */
#define KV_OPS_PER_CONN     1024       /* in-flight pipelined requests per connection */
#define KV_OPS_CHUNK        32         /* op slots are allocated 32 at a time, on first use */
#define KV_OP_CHUNKS        (KV_OPS_PER_CONN / KV_OPS_CHUNK)
#define KV_BUF_INITIAL      4096u       /* in/out buffers start here and shrink back when idle */
#define KV_BUF_KEEP         (64u << 10) /* an idle connection keeps buffers up to this size */
#define KV_TRIM_AFTER_FREES 256u        /* malloc_trim after this many connections closed */
#define KV_OP_INLINE        64

enum kv_proto {
    KV_PROTO_UNKNOWN = 0,
    KV_PROTO_LINE,
    KV_PROTO_RESP,
};

enum kv_op_kind {
    KV_OP_SET = 1,
    KV_OP_GET,
    KV_OP_DEL,
    KV_OP_TEXT, /* a ready-made reply (INFO, PING, errors) */
    KV_OP_JOIN,
};

struct kv_conn;

struct kv_op {
    atomic_int done;
    uint8_t kind;
    int err;
    uint64_t hint;
    struct kv_conn *conn;
    uint32_t len; /* reply bytes (value, previous value, or text) */
    bool nil;     /* GET/DEL: no value */
    char *data;   /* reply bytes: inl or heap */
    char inl[KV_OP_INLINE];
    char *key; /* GET: key to look up (heap) */
    uint32_t klen;
};

struct kv_conn {
    struct kv_server *s;
    int fd;
    enum kv_proto proto;
    bool closing; /* peer gone or protocol error: close when drained */
    bool reading; /* EPOLLIN armed */
    bool writing; /* EPOLLOUT armed */
    bool busy_listed;
    char *in;
    uint32_t in_len;
    uint32_t in_cap;
    char *out;
    uint32_t out_len;
    uint32_t out_off;
    uint32_t out_cap;
    /* Ring of KV_OPS_PER_CONN op slots in chunks allocated on first use, so an idle or
     * depth-1 connection costs one chunk, not the whole pipeline window. Slots never move
     * (yggr's threads hold op pointers until done); head = tail = 0 again once idle. */
    struct kv_op *chunks[KV_OP_CHUNKS];
    uint32_t head;        /* oldest op not yet answered */
    uint32_t tail;        /* next free */
    struct kv_conn *next; /* all connections */
    struct kv_conn *busy_next;
};

struct kv_server {
    struct kv_server_options o;
    int lfd;
    int efd;
    int epfd;
    pthread_t thread;
    atomic_bool poked;
    atomic_bool stop;
    atomic_bool quiesce; /* answer new requests with "shutting down" */
    atomic_uint_fast64_t loops;
    atomic_int joins; /* JOIN jobs running */
    struct kv_conn *conns;
    struct kv_conn *busy;
    uint32_t conn_count;
    uint32_t freed_since_trim; /* connections freed since the last malloc_trim */
    uint32_t dead;             /* closed connections not yet freed (reap walks if > 0) */
};

void kv_server_poke(struct kv_server *s);
struct kv_conn *kv_conn_new(struct kv_server *s, int fd);
void kv_conn_event(struct kv_conn *c, uint32_t events);
void kv_conn_flush_busy(struct kv_server *s);
void kv_conn_reap(struct kv_server *s);
void kv_conn_close_all(struct kv_server *s);

/* kv_proto.c: parse one request at the start of c->in; returns bytes consumed, 0 when
 * incomplete, -1 on a protocol error (reply queued, connection closing). */
long kv_proto_parse_one(struct kv_conn *c);
/* Format the reply of a completed op into c->out. */
void kv_proto_format(struct kv_conn *c, const struct kv_op *op);
/* Queue an immediate text reply. */
void kv_conn_reply_text(struct kv_conn *c, const char *text, bool error);
/* Issue requests (kv_ops.c). */
void kv_op_set(struct kv_conn *c, const char *k, uint32_t kl, const char *v, uint32_t vl);
void kv_op_get(struct kv_conn *c, const char *k, uint32_t kl);
void kv_op_del(struct kv_conn *c, const char *k, uint32_t kl);
void kv_op_info(struct kv_conn *c);
void kv_op_join(struct kv_conn *c, uint64_t id, const char *addr, uint32_t alen);
/* Run a membership job (JOIN, REMOVE) on its own detached thread, counted in s->joins
 * (the job decrements it when done). Returns 0, or -1 when no thread could be started. */
int kv_spawn_job(struct kv_server *s, void *(*fn)(void *), void *job);
/* kv_admin.c: REMOVE <id>, DIGEST, and the member lists INFO appends. */
void kv_op_remove(struct kv_conn *c, uint64_t id);
void kv_op_digest(struct kv_conn *c);
int kv_format_members(const struct yggr_membership *m, bool resp, char *out, size_t cap);
struct kv_op *kv_conn_op_alloc(struct kv_conn *c, enum kv_op_kind kind);
void kv_op_set_bytes(struct kv_op *op, const char *p, uint32_t n);
void kv_op_finish(struct kv_op *op);

#endif /* YGGR_TOOLS_KV_CONN_H */
