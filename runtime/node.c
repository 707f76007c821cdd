/* SPDX-License-Identifier: MIT */
/* Node lifecycle: start (validate, open storage, bootstrap or recover, start the four
 * actors) and stop (drain, join, close), plus the request pool and the address book.
 *
 * Design notes:
 * - Start order: validate -> create plugins -> recover (bootstrap first when the mode
 *   allows) -> engine (RECOVER) -> storage worker -> transport worker -> apply thread ->
 *   driver thread. Any failure unwinds what was started, in reverse, and reports why.
 * - Stop order: set `stopping` (new calls get SHUTDOWN) -> the driver finishes in-flight
 *   work it can finish, fails the rest with SHUTDOWN, queues APPLY_STOP -> join driver ->
 *   join apply -> close transport -> close storage -> free.
 * - Request slots come from a fixed pool (max_pending_proposals + max_pending_reads +
 *   slack); the free list is an MPMC ring, so allocation never mallocs and a full pool is
 *   backpressure (BUSY).
 * - Fatal errors (storage FAILED, restore failure) set health FATAL with a reason once;
 *   every later call returns YGGR_ERR_FATAL.
 */
#include "node.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yggr_assert.h"

void node_log(struct yggr_node *node, int level, const char *fmt, ...)
{
    YGGR_ASSERT(node != NULL);
    YGGR_ASSERT(fmt != NULL);
    if (node->config.log_fn == NULL && level > node->config.log_level) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (node->config.log_fn != NULL) {
        node->config.log_fn(node->config.log_ctx, level, msg);
        return;
    }
    static const char *names[] = {"error", "warn", "info", "debug"};
    const char *name = level >= 0 && level <= 3 ? names[level] : "debug";
    fprintf(stderr, "yggr[%llu] %s: %s\n", (unsigned long long)node->config.node_id, name, msg);
}

void node_set_fatal(struct yggr_node *node, int err, const char *reason)
{
    YGGR_ASSERT(node != NULL);
    YGGR_ASSERT(err < 0);
    pthread_mutex_lock(&node->fatal_mu);
    bool first = atomic_load(&node->health) != YGGR_HEALTH_FATAL;
    if (first) {
        node->fatal_err = err;
        snprintf(node->fatal_reason, sizeof(node->fatal_reason), "%s", reason);
        atomic_store(&node->health, YGGR_HEALTH_FATAL);
    }
    pthread_mutex_unlock(&node->fatal_mu);
    if (first) {
        node_log(node, 0, "fatal: %s (%s); the node has stopped serving", reason,
                 yggr_strerror(err));
    }
}

struct req *node_req_alloc(struct yggr_node *node, enum req_type type)
{
    YGGR_ASSERT(node != NULL);
    struct req *req = mpmc_ring_pop(&node->free_reqs);
    if (req == NULL) {
        return NULL;
    }
    YGGR_ASSERT(req >= node->pool && req < node->pool + node->pool_size);
    uint32_t slot = req->slot;
    memset(req, 0, sizeof(*req));
    req->slot = slot;
    req->type = type;
    return req;
}

void node_req_free(struct yggr_node *node, struct req *req)
{
    YGGR_ASSERT(node != NULL);
    YGGR_ASSERT(req >= node->pool && req < node->pool + node->pool_size);
    if (req->cmd_buf != NULL) {
        yggr_buf_release(req->cmd_buf);
        req->cmd_buf = NULL;
    }
    if (req->type == REQ_PROPOSE) {
        atomic_fetch_sub(&node->pending_proposals, 1);
    } else if (req->type == REQ_READ) {
        atomic_fetch_sub(&node->pending_reads, 1);
    }
    bool ok = mpmc_ring_push(&node->free_reqs, req);
    YGGR_ASSERT(ok);
}

void node_admin_put(struct admin *admin)
{
    YGGR_ASSERT(admin != NULL);
    if (atomic_fetch_sub(&admin->refs, 1) == 1) {
        pthread_mutex_destroy(&admin->mu);
        pthread_cond_destroy(&admin->cv);
        free(admin->metrics);
        free(admin);
    }
}

void node_admin_complete(struct admin *admin, int err)
{
    YGGR_ASSERT(admin != NULL);
    pthread_mutex_lock(&admin->mu);
    YGGR_ASSERT(!admin->done);
    admin->err = err;
    admin->done = true;
    pthread_cond_broadcast(&admin->cv);
    pthread_mutex_unlock(&admin->mu);
    node_admin_put(admin);
}

void node_book_set(struct yggr_node *node, uint64_t id, const char *addr, uint32_t len)
{
    YGGR_ASSERT(node != NULL);
    YGGR_ASSERT(id != 0);
    if (addr == NULL || len == 0 || len >= sizeof(node->book[0].addr)) {
        return;
    }
    pthread_mutex_lock(&node->book_mu);
    uint32_t i = 0;
    while (i < node->book_count && node->book[i].id != id) {
        i++;
    }
    if (i == node->book_count && i < sizeof(node->book) / sizeof(node->book[0])) {
        node->book_count++;
    }
    if (i < node->book_count) {
        node->book[i].id = id;
        memcpy(node->book[i].addr, addr, len);
        node->book[i].addr[len] = '\0';
    }
    pthread_mutex_unlock(&node->book_mu);
}

bool node_book_get(struct yggr_node *node, uint64_t id, char *out, size_t cap)
{
    YGGR_ASSERT(node != NULL);
    YGGR_ASSERT(out != NULL && cap > 0);
    bool found = false;
    pthread_mutex_lock(&node->book_mu);
    for (uint32_t i = 0; i < node->book_count; i++) {
        if (node->book[i].id == id) {
            snprintf(out, cap, "%s", node->book[i].addr);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&node->book_mu);
    return found;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 2;
    while (p < n) {
        YGGR_ASSERT(p < (1u << 31));
        p <<= 1;
    }
    return p;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* Copy the config; keep our own copies of strings and the secret. */
static int node_copy_config(struct yggr_node *node, const struct yggr_config *config)
{
    node->config = *config;
    node->config.peers = NULL;
    node->config.peer_count = 0;
    node->data_dir = dup_or_null(config->data_dir);
    node->listen_addr = dup_or_null(config->listen_addr);
    node->config.data_dir = node->data_dir;
    node->config.listen_addr = node->listen_addr;
    if (config->cluster_secret != NULL) {
        node->secret = malloc(config->cluster_secret_len);
        if (node->secret == NULL) {
            return YGGR_ERR_NOMEM;
        }
        memcpy(node->secret, config->cluster_secret, config->cluster_secret_len);
        node->config.cluster_secret = node->secret;
    }
    for (uint32_t i = 0; i < config->peer_count; i++) {
        const char *a = config->peers[i].addr;
        if (a != NULL) {
            node_book_set(node, config->peers[i].id, a, (uint32_t)strlen(a));
        }
    }
    if (config->listen_addr != NULL) {
        node_book_set(node, config->node_id, config->listen_addr,
                      (uint32_t)strlen(config->listen_addr));
    }
    return 0;
}

static int node_alloc_pools(struct yggr_node *node)
{
    const struct yggr_config *c = &node->config;
    node->pool_size = c->max_pending_proposals + c->max_pending_reads + 64;
    node->pool = calloc(node->pool_size, sizeof(*node->pool));
    if (node->pool == NULL) {
        return YGGR_ERR_NOMEM;
    }
    uint32_t slots = pow2_at_least(node->pool_size + 1);
    if (mpsc_ring_init(&node->free_reqs, slots) != 0 || mpsc_ring_init(&node->to_drv, slots) ||
        mpsc_ring_init(&node->free_chunks, ARENA_FREE_CHUNKS * 2) != 0) {
        return YGGR_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < node->pool_size; i++) {
        node->pool[i].slot = i;
        bool ok = mpmc_ring_push(&node->free_reqs, &node->pool[i]);
        YGGR_ASSERT(ok);
    }
    if (apply_ring_init(&node->to_apply, pow2_at_least(c->max_pending_applies + 1)) != 0 ||
        apply_ev_ring_init(&node->from_apply, 256) != 0) {
        return YGGR_ERR_NOMEM;
    }
    if (doorbell_init(&node->drv_bell) != 0 || doorbell_init(&node->apply_bell) != 0) {
        return YGGR_ERR_IO;
    }
    return 0;
}

static struct yggr_node *node_new(void)
{
    struct yggr_node *node = calloc(1, sizeof(*node));
    if (node == NULL) {
        return NULL;
    }
    node->drv_bell.fd = -1;
    node->apply_bell.fd = -1;
    pthread_mutex_init(&node->fatal_mu, NULL);
    pthread_mutex_init(&node->book_mu, NULL);
    pthread_mutex_init(&node->status.mu, NULL);
    pthread_mutex_init(&node->client_mu, NULL);
    atomic_init(&node->health, YGGR_HEALTH_RUNNING);
    atomic_init(&node->stopping, false);
    return node;
}

static void node_free(struct yggr_node *node)
{
    if (node == NULL) {
        return;
    }
    arena_client_release(node);
    arena_drain(node);
    apply_ring_deinit(&node->to_apply);
    apply_ev_ring_deinit(&node->from_apply);
    mpsc_ring_deinit(&node->free_reqs);
    mpsc_ring_deinit(&node->to_drv);
    mpsc_ring_deinit(&node->free_chunks);
    doorbell_deinit(&node->drv_bell);
    doorbell_deinit(&node->apply_bell);
    pthread_mutex_destroy(&node->fatal_mu);
    pthread_mutex_destroy(&node->book_mu);
    pthread_mutex_destroy(&node->status.mu);
    pthread_mutex_destroy(&node->client_mu);
    free(node->pool);
    free(node->data_dir);
    free(node->listen_addr);
    free(node->secret);
    free(node);
}

/* Founders' configuration: self and every configured peer, all voters. */
static void node_founders(const struct yggr_config *c, struct yggr_membership *m)
{
    memset(m, 0, sizeof(*m));
    yggr_membership_apply(m, YGGR_CHANGE_ADD_VOTER, c->node_id);
    for (uint32_t i = 0; i < c->peer_count; i++) {
        yggr_membership_apply(m, YGGR_CHANGE_ADD_VOTER, c->peers[i].id);
    }
    YGGR_ASSERT(m->voter_count == c->peer_count + 1);
}

static uint64_t node_default_cluster_id(const struct yggr_membership *m)
{
    /* FNV-1a over the sorted founder ids: identical on every founder. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < m->voter_count; i++) {
        for (int b = 0; b < 8; b++) {
            h ^= (m->voters[i] >> (8 * b)) & 0xFFu;
            h *= 0x100000001b3ull;
        }
    }
    return h != 0 ? h : 1;
}

static int node_bootstrap(struct yggr_node *node, const struct yggr_config *c, char *why,
                          size_t n)
{
    struct yggr_storage_meta meta = {0};
    meta.node_id = c->node_id;
    if (c->bootstrap == YGGR_BOOTSTRAP_JOIN) {
        meta.cluster_id = c->cluster_id;
    } else {
        node_founders(c, &meta.bootstrap_config);
        meta.cluster_id =
            c->cluster_id != 0 ? c->cluster_id : node_default_cluster_id(&meta.bootstrap_config);
    }
    node_log(node, 2, "bootstrapping a %s node in %s",
             c->bootstrap == YGGR_BOOTSTRAP_JOIN ? "joining" : "founding",
             c->data_dir != NULL ? c->data_dir : "(custom storage)");
    return node->sops->bootstrap(node->storage, &meta, why, n);
}

/* Recover, bootstrapping first when the mode allows it. */
static int node_recover(struct yggr_node *node, const struct yggr_config *c,
                        struct yggr_storage_state *state, char *why, size_t n)
{
    int rc = node->sops->recover(node->storage, state, why, n);
    bool fresh = rc == YGGR_ERR_NOT_FOUND;
    if (rc != 0 && !fresh) {
        return rc;
    }
    if (fresh && c->bootstrap == YGGR_BOOTSTRAP_RECOVER) {
        snprintf(why, n, "data directory %s is not initialised; start with bootstrap NEW "
                         "(founders) or JOIN (a node a running cluster will add)",
                 c->data_dir != NULL ? c->data_dir : "(custom storage)");
        return YGGR_ERR_NOT_FOUND;
    }
    if (!fresh && (c->bootstrap == YGGR_BOOTSTRAP_NEW || c->bootstrap == YGGR_BOOTSTRAP_JOIN)) {
        snprintf(why, n, "data directory %s already holds node state; restart it with "
                         "bootstrap RECOVER (never re-bootstrap a node)",
                 c->data_dir != NULL ? c->data_dir : "(custom storage)");
        return YGGR_ERR_EXISTS;
    }
    if (fresh) {
        rc = node_bootstrap(node, c, why, n);
        if (rc == 0) {
            rc = node->sops->recover(node->storage, state, why, n);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (state->meta.node_id != c->node_id) {
        snprintf(why, n, "data directory belongs to node %llu, not node %llu",
                 (unsigned long long)state->meta.node_id, (unsigned long long)c->node_id);
        return YGGR_ERR_CONFIG;
    }
    if (c->cluster_id != 0 && state->meta.cluster_id != 0 &&
        state->meta.cluster_id != c->cluster_id) {
        snprintf(why, n, "data directory belongs to cluster %llu, not %llu",
                 (unsigned long long)state->meta.cluster_id, (unsigned long long)c->cluster_id);
        return YGGR_ERR_CONFIG;
    }
    node->cluster_id = state->meta.cluster_id;
    if (state->notes[0] != '\0') {
        node_log(node, 2, "recovered: %s", state->notes);
    }
    return 0;
}

static int node_create_storage(struct yggr_node *node, const struct yggr_config *c, char *why,
                               size_t n)
{
    if (c->storage_ops == NULL) {
        struct yggr_disk_options o = {
            .dir = c->data_dir,
            .segment_bytes = c->segment_bytes,
            .queue_entries = 1u << 16,
            .fault_injection = c->test_fault_injection,
        };
        int rc = yggr_disk_storage_create(&o, &node->sops, &node->storage, why, n);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* After recovery: the authenticated handshake binds the cluster id read from disk. */
static int node_create_transport(struct yggr_node *node, const struct yggr_config *c,
                                 char *why, size_t n)
{
    if (node->transport != NULL) {
        return 0; /* the caller's plugin, taken over at start */
    }
    struct yggr_tcp_options t = {
        .node_id = c->node_id,
        .listen_addr = c->listen_addr,
        .max_frame_bytes = 64u << 20,
        .peer_queue_bytes = 64u << 20,
        .secret = node->secret,
        .secret_len = c->cluster_secret_len,
        .cluster_id = node->cluster_id,
        .log_fn = c->log_fn,
        .log_ctx = c->log_ctx,
    };
    return yggr_tcp_transport_create(&t, &node->tops, &node->transport, why, n);
}

static void node_close_plugins(struct yggr_node *node)
{
    if (node->transport != NULL) {
        node->tops->close(node->transport);
        node->transport = NULL;
    }
    if (node->storage != NULL) {
        node->sops->close(node->storage);
        node->storage = NULL;
    }
}

/* Every known address goes to the transport before it starts, so a peer's first frame
 * after a restart is never rejected as coming from an unknown sender. */
void node_register_peers(struct yggr_node *node)
{
    pthread_mutex_lock(&node->book_mu);
    for (uint32_t i = 0; i < node->book_count; i++) {
        if (node->book[i].id != node->config.node_id) {
            int rc = node->tops->set_peer(node->transport, node->book[i].id, node->book[i].addr);
            if (rc != 0) {
                node_log(node, 1, "peer %llu: cannot use address %s: %s",
                         (unsigned long long)node->book[i].id, node->book[i].addr,
                         yggr_strerror(rc));
            }
        }
    }
    pthread_mutex_unlock(&node->book_mu);
}

static int node_start_threads(struct yggr_node *node, char *why, size_t n)
{
    node_register_peers(node);
    int rc = node->sops->start(node->storage, driver_wake, node, node->config.cpu_disk);
    if (rc != 0) {
        snprintf(why, n, "cannot start the disk worker: %s", yggr_strerror(rc));
        return rc;
    }
    rc = node->tops->start(node->transport, driver_wake, node, node->config.cpu_network, why, n);
    if (rc != 0) {
        return rc;
    }
    if (pthread_create(&node->apply_thread, NULL, apply_main, node) != 0) {
        snprintf(why, n, "cannot create the apply thread: %s", strerror(errno));
        return YGGR_ERR_NOMEM;
    }
    node->apply_started = true;
    if (pthread_create(&node->drv_thread, NULL, driver_main, node) != 0) {
        snprintf(why, n, "cannot create the driver thread: %s", strerror(errno));
        return YGGR_ERR_NOMEM;
    }
    node->drv_started = true;
    return 0;
}

static void node_join_threads(struct yggr_node *node)
{
    atomic_store(&node->stopping, true);
    if (node->drv_started) {
        doorbell_ring(&node->drv_bell);
        pthread_join(node->drv_thread, NULL);
        node->drv_started = false;
    }
    if (node->apply_started) {
        /* The driver queued APPLY_STOP on its way out; without a driver, queue it here. */
        struct apply_item stop = {.kind = APPLY_STOP};
        while (!apply_ring_push(&node->to_apply, &stop)) {
            doorbell_ring(&node->apply_bell);
            usleep(1000);
        }
        doorbell_ring(&node->apply_bell);
        pthread_join(node->apply_thread, NULL);
        node->apply_started = false;
    }
}

int yggr_node_start(const struct yggr_config *config, struct yggr_node **out, char *why,
                    size_t why_size)
{
    char local_why[256];
    if (why == NULL || why_size == 0) {
        why = local_why;
        why_size = sizeof(local_why);
    }
    why[0] = '\0';
    if (out == NULL) {
        snprintf(why, why_size, "out is NULL");
        return YGGR_ERR_INVALID;
    }
    *out = NULL;
    int rc = yggr_config_validate(config, why, why_size);
    if (rc != 0) {
        return rc;
    }
    struct yggr_node *node = node_new();
    if (node == NULL) {
        snprintf(why, why_size, "out of memory");
        return YGGR_ERR_NOMEM;
    }
    struct yggr_storage_state state;
    memset(&state, 0, sizeof(state));
    /* Plugins passed in are ours from here on: closed on any failure below. */
    node->sops = config->storage_ops;
    node->storage = config->storage;
    node->tops = config->transport_ops;
    node->transport = config->transport;
    rc = node_copy_config(node, config);
    if (rc == 0) {
        rc = node_alloc_pools(node);
    }
    if (rc == 0) {
        rc = node_create_storage(node, config, why, why_size);
    }
    if (rc == 0) {
        rc = node_recover(node, config, &state, why, why_size);
    }
    if (rc == 0) {
        rc = node_create_transport(node, config, why, why_size);
    }
    if (rc == 0) {
        rc = driver_create(node, &state);
        if (rc != 0) {
            snprintf(why, why_size, "cannot create the engine: %s", yggr_strerror(rc));
        }
    }
    if (rc == 0) {
        rc = node_start_threads(node, why, why_size);
    }
    if (rc != 0) {
        if (why[0] == '\0') {
            snprintf(why, why_size, "%s", yggr_strerror(rc));
        }
        node_join_threads(node);
        node_close_plugins(node);
        driver_destroy(node);
        node_free(node);
        return rc;
    }
    if (config->cluster_secret == NULL && config->transport_ops == NULL) {
        node_log(node, 1, "peers are unauthenticated (no cluster secret): any process that "
                          "can reach %s can speak Raft to this node",
                 node->listen_addr);
    }
    *out = node;
    return 0;
}

int yggr_node_power_cut(struct yggr_node *node)
{
    /* Only the disk storage this node created itself can have the fault injector. */
    if (node == NULL || node->config.storage_ops != NULL || !node->config.test_fault_injection) {
        return YGGR_ERR_INVALID;
    }
    YGGR_ASSERT(node->storage != NULL);
    return yggr_disk_power_cut(node->storage);
}

void yggr_node_stop(struct yggr_node *node)
{
    if (node == NULL) {
        return;
    }
    int health = atomic_load(&node->health);
    if (health == YGGR_HEALTH_RUNNING) {
        atomic_store(&node->health, YGGR_HEALTH_SHUTTING_DOWN);
    }
    node_join_threads(node);
    node_close_plugins(node);
    driver_destroy(node);
    node_free(node);
}
