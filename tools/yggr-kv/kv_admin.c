/* SPDX-License-Identifier: MIT */
/* yggr-kv admin and verification commands: REMOVE <id> (membership) and DIGEST (the
 * state machine's applied index and digest, for comparing replicas). */

/*
 * Design notes
 * ------------
 * - DIGEST is answered from a YGGR_READ_LOCAL read callback, which runs on yggr's apply
 *   thread between two applied entries: the map and the applied index cannot move while it
 *   runs, so "applied:<index> digest:<hex>" describes one consistent state. Two replicas
 *   that report the same applied index must report the same digest (the digest hashes every
 *   key and value, independently of the hash table's layout). It never redirects: every
 *   member answers for its own replica.
 * - REMOVE <id> calls yggr_remove_voter() on a job thread (it blocks until the change is
 *   committed) and answers OK, or REDIRECT node:<leader> when this node is not the leader
 *   (checked first, and again when the call reports NOT_LEADER / NO_LEADER). A leader may
 *   remove itself: it answers OK once the change commits, then stops leading. Jobs are
 *   counted in kv_server.joins like JOIN jobs, so kv_server_quiesce() waits for them.
 * - Both reuse existing op kinds for formatting: DIGEST completes a KV_OP_TEXT op (its
 *   text already in the protocol's form), REMOVE a KV_OP_JOIN op ("OK" or an error).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_conn.h"

static void digest_done(void *ctx, int err, uint64_t hint, void *sm_ctx)
{
    struct kv_op *op = ctx;
    struct kv_conn *c = op->conn;
    bool resp = c->proto == KV_PROTO_RESP;
    char text[128];
    (void)hint;
    if (err == 0) {
        struct yggr_status st;
        yggr_status(c->s->o.node, &st); /* applied_index is stable on the apply thread */
        snprintf(text, sizeof(text), "%sapplied:%" PRIu64 " digest:%016" PRIx64, resp ? "+" : "",
                 st.applied_index, kv_map_digest(sm_ctx));
    } else {
        snprintf(text, sizeof(text), "%s%s", resp ? "-ERR " : "ERROR ", yggr_strerror(err));
    }
    kv_op_set_bytes(op, text, (uint32_t)strlen(text));
    kv_op_finish(op);
}

void kv_op_digest(struct kv_conn *c)
{
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_TEXT);
    if (op == NULL) {
        return;
    }
    int rc = yggr_read(c->s->o.node, YGGR_READ_LOCAL, digest_done, op);
    if (rc != 0) {
        char text[96];
        snprintf(text, sizeof(text), "%s%s", c->proto == KV_PROTO_RESP ? "-ERR " : "ERROR ",
                 yggr_strerror(rc));
        kv_op_set_bytes(op, text, (uint32_t)strlen(text));
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
    }
}

struct remove_job {
    struct kv_op *op;
    struct kv_server *s;
    uint64_t id;
};

/* NOT_LEADER with the leader's id, or NO_LEADER. */
static void redirect(struct kv_op *op, struct yggr_node *node)
{
    struct yggr_status st;
    yggr_status(node, &st);
    op->hint = st.leader;
    op->err = st.leader != 0 ? YGGR_ERR_NOT_LEADER : YGGR_ERR_NO_LEADER;
}

static void *remove_main(void *arg)
{
    struct remove_job *j = arg;
    struct kv_server *s = j->s;
    int rc = yggr_remove_voter(s->o.node, j->id, 10000, NULL);
    j->op->err = rc;
    if (rc == YGGR_ERR_NOT_LEADER || rc == YGGR_ERR_NO_LEADER) {
        redirect(j->op, s->o.node);
    }
    kv_op_finish(j->op);
    free(j);
    atomic_fetch_sub(&s->joins, 1);
    return NULL;
}

void kv_op_remove(struct kv_conn *c, uint64_t id)
{
    struct kv_op *op = kv_conn_op_alloc(c, KV_OP_JOIN);
    if (op == NULL) {
        return;
    }
    struct yggr_status st;
    yggr_status(c->s->o.node, &st);
    if (id == 0 || st.role != YGGR_ROLE_LEADER) {
        if (id == 0) {
            op->err = YGGR_ERR_INVALID;
        } else {
            redirect(op, c->s->o.node);
        }
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
        return;
    }
    struct remove_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        op->err = YGGR_ERR_NOMEM;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
        return;
    }
    j->op = op;
    j->s = c->s;
    j->id = id;
    if (kv_spawn_job(c->s, remove_main, j) != 0) {
        free(j);
        op->err = YGGR_ERR_NOMEM;
        atomic_store_explicit(&op->done, 1, memory_order_relaxed);
    }
}

/* " voter_ids:1,2,3 learner_ids:4" (line) or "\r\nvoter_ids:...\r\nlearner_ids:..." (RESP)
 * into out; returns the length. */
int kv_format_members(const struct yggr_membership *m, bool resp, char *out, size_t cap)
{
    const char *sep = resp ? "\r\n" : " ";
    int n = snprintf(out, cap, "%svoter_ids:", sep);
    for (uint32_t i = 0; i < m->voter_count && n > 0 && (size_t)n < cap; i++) {
        n += snprintf(out + n, cap - (size_t)n, "%s%" PRIu64, i > 0 ? "," : "", m->voters[i]);
    }
    if (n > 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, "%slearner_ids:", sep);
    }
    for (uint32_t i = 0; i < m->learner_count && n > 0 && (size_t)n < cap; i++) {
        n += snprintf(out + n, cap - (size_t)n, "%s%" PRIu64, i > 0 ? "," : "", m->learners[i]);
    }
    return n > 0 && (size_t)n < cap ? n : 0;
}
