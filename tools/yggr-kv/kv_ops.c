/* SPDX-License-Identifier: MIT */
/* yggr-kv operations: turn parsed requests into yggr proposals and reads, and complete
 * them from yggr's callbacks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_conn.h"

static void write_done(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *reply,
                       uint32_t len)
{
    struct kv_op *op = ctx;
    (void)index;
    op->err = err;
    op->hint = hint;
    if (err == 0 && op->kind == KV_OP_DEL) {
        op->nil = len == 0 || reply[0] != 'P';
        if (!op->nil) {
            kv_op_set_bytes(op, (const char *)reply + 1, len - 1);
        }
    }
    kv_op_finish(op);
}

static void propose(struct kv_conn *c, struct kv_op *op, const uint8_t *cmd, size_t n)
{
    int rc = yggr_propose(c->s->o.node, cmd, (uint32_t)n, write_done, op);
    if (rc != 0) {
        op->err = rc;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
    }
}

static void with_command(struct kv_conn *c, struct kv_op *op, const char *k, uint32_t kl,
                         const char *v, uint32_t vl, bool set)
{
    uint8_t stack[512];
    size_t need = 3u + kl + vl;
    uint8_t *buf = need <= sizeof(stack) ? stack : malloc(need);
    if (buf == NULL) {
        op->err = YGGR_ERR_NOMEM;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
        return;
    }
    size_t n = set ? kv_encode_set(buf, need, k, kl, v, vl) : kv_encode_del(buf, need, k, kl);
    propose(c, op, buf, n);
    if (buf != stack) {
        free(buf);
    }
}

void kv_op_set(struct kv_conn *c, const char *k, uint32_t kl, const char *v, uint32_t vl)
{
    if (memchr(k, '\n', kl) != NULL) {
        kv_conn_reply_text(c,
                           c->proto == KV_PROTO_RESP ? "-ERR key contains a newline"
                                                     : "PARSE_ERROR key contains a newline",
                           true);
        return;
    }
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_SET);
    if (op != NULL) {
        with_command(c, op, k, kl, v, vl, true);
    }
}

void kv_op_del(struct kv_conn *c, const char *k, uint32_t kl)
{
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_DEL);
    if (op != NULL) {
        with_command(c, op, k, kl, NULL, 0, false);
    }
}

static void read_done(void *ctx, int err, uint64_t hint, void *sm_ctx)
{
    struct kv_op *op = ctx;
    op->err = err;
    op->hint = hint;
    if (err == 0) {
        uint32_t vlen = 0;
        const char *v = kv_map_get(sm_ctx, op->key, op->klen, &vlen);
        op->nil = v == NULL;
        if (v != NULL) {
            kv_op_set_bytes(op, v, vlen);
        }
    }
    kv_op_finish(op);
}

void kv_op_get(struct kv_conn *c, const char *k, uint32_t kl)
{
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_GET);
    if (op == NULL) {
        return;
    }
    op->key = malloc(kl + 1u);
    if (op->key == NULL) {
        op->err = YGGR_ERR_NOMEM;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
        return;
    }
    memcpy(op->key, k, kl);
    op->klen = kl;
    static const enum yggr_read_mode modes[] = {YGGR_READ_LINEARIZABLE, YGGR_READ_LEASE,
                                                YGGR_READ_LOCAL};
    int rc = yggr_read(c->s->o.node, modes[c->s->o.read_mode], read_done, op);
    if (rc != 0) {
        op->err = rc;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
    }
}

void kv_op_info(struct kv_conn *c)
{
    struct yggr_status st;
    yggr_status(c->s->o.node, &st);
    char body[2048];
    int n =
        snprintf(body, sizeof(body),
                 "%srole:%s%sterm:%llu%scommit:%llu%sapplied:%llu%sleader:%llu%s"
                 "last_index:%llu%snode:%llu%svoters:%u%slearners:%u%shealth:%s",
                 c->proto == KV_PROTO_RESP ? "# Replication\r\n" : "", yggr_role_name(st.role),
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", (unsigned long long)st.term,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", (unsigned long long)st.commit_index,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", (unsigned long long)st.applied_index,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", (unsigned long long)st.leader,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", (unsigned long long)st.last_log_index,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", (unsigned long long)st.id,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", st.config.voter_count,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ", st.config.learner_count,
                 c->proto == KV_PROTO_RESP ? "\r\n" : " ",
                 st.health == YGGR_HEALTH_FATAL     ? "fatal"
                 : st.health != YGGR_HEALTH_RUNNING ? "shutting-down"
                 : st.removed                       ? "removed"
                                                    : "running");
    if (n > 0 && (size_t)n < sizeof(body)) {
        n += kv_format_members(&st.config, c->proto == KV_PROTO_RESP, body + n,
                               sizeof(body) - (size_t)n);
    }
    if (c->proto != KV_PROTO_RESP) {
        kv_conn_reply_text(c, body, false);
        return;
    }
    char resp[2100];
    snprintf(resp, sizeof(resp), "$%d\r\n%s", n, body);
    kv_conn_reply_text(c, resp, false);
}

/* JOIN <id> <raft addr>: add as learner, wait for it to catch up, promote. Runs on its
 * own thread (it blocks); the op completes when the node is a voter or on failure. */
struct join_job {
    struct kv_op *op;
    struct kv_server *s;
    struct yggr_node *node;
    uint64_t id;
    char addr[128];
};

static bool join_caught_up(struct yggr_node *node, uint64_t id)
{
    struct yggr_metrics m;
    if (yggr_metrics(node, &m) != 0) {
        return false;
    }
    for (uint32_t i = 0; i < m.peer_count; i++) {
        if (m.peers[i].id == id) {
            return m.peers[i].match_index + 64 >= m.commit_index;
        }
    }
    return false;
}

static void *join_main(void *arg)
{
    struct join_job *j = arg;
    int rc = yggr_add_learner(j->node, j->id, j->addr, 10000, NULL);
    if (rc == YGGR_ERR_ALREADY_VOTER) {
        rc = 0;
    } else if (rc == 0 || rc == YGGR_ERR_ALREADY_LEARNER) {
        rc = YGGR_ERR_TIMEOUT;
        for (int i = 0; i < 600 && rc == YGGR_ERR_TIMEOUT && !atomic_load(&j->s->quiesce); i++) {
            if (join_caught_up(j->node, j->id)) {
                rc = yggr_promote_learner(j->node, j->id, 10000, NULL);
            } else {
                usleep(50000);
            }
        }
    }
    j->op->err = rc;
    if (rc == YGGR_ERR_NOT_LEADER || rc == YGGR_ERR_NO_LEADER) {
        struct yggr_status st;
        yggr_status(j->node, &st);
        j->op->hint = st.leader;
        j->op->err = st.leader != 0 ? YGGR_ERR_NOT_LEADER : YGGR_ERR_NO_LEADER;
    }
    struct kv_server *s = j->s;
    kv_op_finish(j->op);
    free(j);
    atomic_fetch_sub(&s->joins, 1);
    return NULL;
}

void kv_op_join(struct kv_conn *c, uint64_t id, const char *addr, uint32_t alen)
{
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_JOIN);
    if (op == NULL) {
        return;
    }
    struct join_job *j = calloc(1, sizeof(*j));
    if (j == NULL || id == 0 || alen == 0 || alen >= sizeof(j->addr)) {
        free(j);
        op->err = YGGR_ERR_INVALID;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
        return;
    }
    j->op = op;
    j->s = c->s;
    j->node = c->s->o.node;
    j->id = id;
    memcpy(j->addr, addr, alen);
    if (kv_spawn_job(c->s, join_main, j) != 0) {
        free(j);
        op->err = YGGR_ERR_NOMEM;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
    }
}

int kv_spawn_job(struct kv_server *s, void *(*fn)(void *), void *job)
{
    pthread_t t;
    atomic_fetch_add(&s->joins, 1);
    if (pthread_create(&t, NULL, fn, job) != 0) {
        atomic_fetch_sub(&s->joins, 1);
        return -1;
    }
    pthread_detach(t);
    return 0;
}
