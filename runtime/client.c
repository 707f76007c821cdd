/* SPDX-License-Identifier: MIT */
/* The public request API (yggr.h): proposals, reads, administration, status, metrics.
 *
 * Design notes:
 * - Any thread may call these. Asynchronous calls take a slot from the node's fixed pool,
 *   copy the command once into the node's payload arena (no per-command malloc below
 *   ARENA_MAX_SLICE bytes), push the slot on the MPSC ring and ring the driver's doorbell
 *   (a no-op unless the driver is parked).
 * - Blocking calls (propose_sync, admin) wait on a heap-allocated waiter shared with the
 *   completing thread through a reference count, so a caller that times out can return
 *   while the node still holds the request.
 * - Checks happen before anything is queued: a call that returns an error never invokes
 *   its callback; a call that returns 0 invokes it exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "yggr_assert.h"

static int node_refusal(struct yggr_node *node)
{
    int h = atomic_load(&node->health);
    if (h == YGGR_HEALTH_FATAL) {
        return YGGR_ERR_FATAL;
    }
    if (h == YGGR_HEALTH_SHUTTING_DOWN || atomic_load(&node->stopping)) {
        return YGGR_ERR_SHUTDOWN;
    }
    return 0;
}

static void node_enqueue(struct yggr_node *node, struct req *req)
{
    bool ok = mpsc_ring_push(&node->to_drv, req);
    YGGR_ASSERT(ok); /* the ring holds every pool slot */
    doorbell_ring(&node->drv_bell);
}

int yggr_propose(struct yggr_node *node, const void *cmd, uint32_t len, yggr_propose_fn cb,
                 void *ctx)
{
    if (node == NULL || cb == NULL || (cmd == NULL && len > 0)) {
        return YGGR_ERR_INVALID;
    }
    int err = node_refusal(node);
    if (err != 0) {
        return err;
    }
    if (len > node->config.max_command_bytes) {
        return YGGR_ERR_TOO_LARGE;
    }
    if (atomic_fetch_add(&node->pending_proposals, 1) >= node->config.max_pending_proposals) {
        atomic_fetch_sub(&node->pending_proposals, 1);
        atomic_fetch_add(&node->proposals_busy, 1);
        return YGGR_ERR_BUSY;
    }
    struct req *req = node_req_alloc(node, REQ_PROPOSE);
    if (req == NULL) {
        atomic_fetch_sub(&node->pending_proposals, 1);
        return YGGR_ERR_BUSY;
    }
    req->propose_cb = cb;
    req->ctx = ctx;
    req->len = len;
    req->cmd_buf = arena_copy_command(node, cmd, len, &req->cmd_data);
    if (req->cmd_buf == NULL) {
        node_req_free(node, req);
        return YGGR_ERR_NOMEM;
    }
    atomic_fetch_add_explicit(&node->proposals_submitted, 1, memory_order_relaxed);
    node_enqueue(node, req);
    return 0;
}

/* A waiter shared by a blocking caller and the completing thread. */
struct sync_wait {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int err;
    uint64_t index;
    uint64_t hint;
    uint8_t *reply;
    uint32_t reply_len;
};

static void sync_put(struct sync_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->reply);
        free(w);
    }
}

static void sync_done(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *reply,
                      uint32_t len)
{
    struct sync_wait *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    w->index = index;
    w->hint = hint;
    if (len > 0) {
        w->reply = malloc(len);
        if (w->reply != NULL) {
            memcpy(w->reply, reply, len);
            w->reply_len = len;
        }
    }
    w->done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    sync_put(w);
}

static void init_cond(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

static struct timespec deadline_after(uint64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Wait until *done under mu; false on timeout. */
static bool wait_done(pthread_mutex_t *mu, pthread_cond_t *cv, bool *done, uint64_t timeout_ms)
{
    struct timespec until = deadline_after(timeout_ms);
    while (!*done) {
        if (timeout_ms == 0) {
            pthread_cond_wait(cv, mu);
        } else if (pthread_cond_timedwait(cv, mu, &until) == ETIMEDOUT && !*done) {
            return false;
        }
    }
    return true;
}

int yggr_propose_sync(struct yggr_node *node, const void *cmd, uint32_t len, void *reply,
                      uint32_t reply_cap, uint32_t *reply_len, uint64_t *index,
                      uint64_t *leader_hint, uint64_t timeout_ms)
{
    struct sync_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return YGGR_ERR_NOMEM;
    }
    atomic_init(&w->refs, 2);
    pthread_mutex_init(&w->mu, NULL);
    init_cond(&w->cv);
    int rc = yggr_propose(node, cmd, len, sync_done, w);
    if (rc != 0) {
        atomic_store(&w->refs, 1);
        sync_put(w);
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    bool done = wait_done(&w->mu, &w->cv, &w->done, timeout_ms);
    if (done) {
        rc = w->err;
        if (reply != NULL && w->reply_len > 0) {
            memcpy(reply, w->reply, w->reply_len < reply_cap ? w->reply_len : reply_cap);
        }
        if (reply_len != NULL) {
            *reply_len = w->reply_len;
        }
        if (index != NULL) {
            *index = w->index;
        }
        if (leader_hint != NULL) {
            *leader_hint = w->hint;
        }
    } else {
        rc = YGGR_ERR_TIMEOUT;
    }
    pthread_mutex_unlock(&w->mu);
    sync_put(w);
    return rc;
}

int yggr_read(struct yggr_node *node, enum yggr_read_mode mode, yggr_read_fn cb, void *ctx)
{
    if (node == NULL || cb == NULL || mode < YGGR_READ_LINEARIZABLE || mode > YGGR_READ_LOCAL) {
        return YGGR_ERR_INVALID;
    }
    int err = node_refusal(node);
    if (err != 0) {
        return err;
    }
    if (atomic_fetch_add(&node->pending_reads, 1) >= node->config.max_pending_reads) {
        atomic_fetch_sub(&node->pending_reads, 1);
        return YGGR_ERR_BUSY;
    }
    struct req *req = node_req_alloc(node, REQ_READ);
    if (req == NULL) {
        atomic_fetch_sub(&node->pending_reads, 1);
        return YGGR_ERR_BUSY;
    }
    req->read_cb = cb;
    req->ctx = ctx;
    req->mode = mode;
    node_enqueue(node, req);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Administration
 * ------------------------------------------------------------------------------------- */

static struct admin *admin_new(enum admin_type type, uint64_t timeout_ms)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    atomic_init(&a->refs, 2);
    pthread_mutex_init(&a->mu, NULL);
    init_cond(&a->cv);
    a->type = type;
    a->timeout_ms = timeout_ms;
    return a;
}

/* Queue `a` and wait; returns the result. The caller keeps its reference. */
static int admin_run(struct yggr_node *node, struct admin *a, uint64_t timeout_ms)
{
    int err = node_refusal(node);
    struct req *req = err == 0 ? node_req_alloc(node, REQ_ADMIN) : NULL;
    if (req == NULL) {
        atomic_fetch_sub(&a->refs, 1); /* the driver's reference, never handed over */
        return err != 0 ? err : YGGR_ERR_BUSY;
    }
    req->admin = a;
    node_enqueue(node, req);
    pthread_mutex_lock(&a->mu);
    /* The driver enforces the deadline itself; wait a little longer so its precise answer
     * normally wins, but never hang if the driver is gone. */
    uint64_t wait_ms = timeout_ms > 0 ? timeout_ms + 1000 : 0;
    bool done = wait_done(&a->mu, &a->cv, &a->done, wait_ms);
    int rc = done ? a->err : YGGR_ERR_TIMEOUT;
    pthread_mutex_unlock(&a->mu);
    return rc;
}

static int change(struct yggr_node *node, enum yggr_change_type type, uint64_t id,
                  const char *addr, uint64_t timeout_ms, struct yggr_membership *out)
{
    if (node == NULL || id == 0) {
        return YGGR_ERR_INVALID;
    }
    bool adds = type == YGGR_CHANGE_ADD_VOTER || type == YGGR_CHANGE_ADD_LEARNER;
    if (adds && node->config.transport_ops == NULL && (addr == NULL || addr[0] == '\0')) {
        return YGGR_ERR_INVALID;
    }
    if (addr != NULL && strlen(addr) >= sizeof(((struct admin *)0)->addr)) {
        return YGGR_ERR_INVALID;
    }
    struct admin *a = admin_new(ADMIN_CHANGE, timeout_ms);
    if (a == NULL) {
        return YGGR_ERR_NOMEM;
    }
    a->change = type;
    a->target = id;
    if (adds && addr != NULL) {
        strcpy(a->addr, addr);
    }
    int rc = admin_run(node, a, timeout_ms);
    if (rc == 0 && out != NULL) {
        *out = a->config;
    }
    node_admin_put(a);
    return rc;
}

int yggr_add_voter(struct yggr_node *node, uint64_t id, const char *addr, uint64_t timeout_ms,
                   struct yggr_membership *out)
{
    return change(node, YGGR_CHANGE_ADD_VOTER, id, addr, timeout_ms, out);
}

int yggr_add_learner(struct yggr_node *node, uint64_t id, const char *addr, uint64_t timeout_ms,
                     struct yggr_membership *out)
{
    return change(node, YGGR_CHANGE_ADD_LEARNER, id, addr, timeout_ms, out);
}

int yggr_promote_learner(struct yggr_node *node, uint64_t id, uint64_t timeout_ms,
                         struct yggr_membership *out)
{
    return change(node, YGGR_CHANGE_PROMOTE_LEARNER, id, NULL, timeout_ms, out);
}

int yggr_remove_voter(struct yggr_node *node, uint64_t id, uint64_t timeout_ms,
                      struct yggr_membership *out)
{
    return change(node, YGGR_CHANGE_REMOVE_VOTER, id, NULL, timeout_ms, out);
}

int yggr_transfer_leadership(struct yggr_node *node, uint64_t target, uint64_t timeout_ms)
{
    if (node == NULL || target == 0) {
        return YGGR_ERR_INVALID;
    }
    struct admin *a = admin_new(ADMIN_TRANSFER, timeout_ms);
    if (a == NULL) {
        return YGGR_ERR_NOMEM;
    }
    a->target = target;
    int rc = admin_run(node, a, timeout_ms);
    node_admin_put(a);
    return rc;
}

int yggr_trigger_snapshot(struct yggr_node *node, uint64_t timeout_ms)
{
    if (node == NULL) {
        return YGGR_ERR_INVALID;
    }
    struct admin *a = admin_new(ADMIN_SNAPSHOT, timeout_ms);
    if (a == NULL) {
        return YGGR_ERR_NOMEM;
    }
    int rc = admin_run(node, a, timeout_ms);
    node_admin_put(a);
    return rc;
}

int yggr_metrics(struct yggr_node *node, struct yggr_metrics *out)
{
    if (node == NULL || out == NULL) {
        return YGGR_ERR_INVALID;
    }
    struct admin *a = admin_new(ADMIN_METRICS, 0);
    if (a == NULL) {
        return YGGR_ERR_NOMEM;
    }
    a->metrics = calloc(1, sizeof(*a->metrics));
    if (a->metrics == NULL) {
        atomic_store(&a->refs, 1);
        node_admin_put(a);
        return YGGR_ERR_NOMEM;
    }
    int rc = admin_run(node, a, 10000);
    if (rc == 0) {
        *out = *a->metrics;
    }
    node_admin_put(a);
    return rc;
}

int yggr_status(struct yggr_node *node, struct yggr_status *out)
{
    if (node == NULL || out == NULL) {
        return YGGR_ERR_INVALID;
    }
    pthread_mutex_lock(&node->status.mu);
    *out = node->status.status;
    pthread_mutex_unlock(&node->status.mu);
    out->id = node->config.node_id;
    out->applied_index = atomic_load_explicit(&node->applied_index, memory_order_acquire);
    /* The driver publishes between iterations; apply may already be further. */
    if (out->commit_index < out->applied_index) {
        out->commit_index = out->applied_index;
    }
    if (out->last_log_index < out->commit_index) {
        out->last_log_index = out->commit_index;
    }
    out->health = (enum yggr_health)atomic_load(&node->health);
    out->fatal_err = 0;
    out->fatal_reason[0] = '\0';
    if (out->health == YGGR_HEALTH_FATAL) {
        pthread_mutex_lock(&node->fatal_mu);
        out->fatal_err = node->fatal_err;
        memcpy(out->fatal_reason, node->fatal_reason, sizeof(out->fatal_reason));
        pthread_mutex_unlock(&node->fatal_mu);
    }
    return 0;
}
