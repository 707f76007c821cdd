/* SPDX-License-Identifier: MIT */
/* Test harness for in-process yggr clusters. */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include "yggr/plugin.h"

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(uint64_t ms)
{
    usleep((useconds_t)(ms * 1000));
}

char *cluster_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/yggr-%s-XXXXXX", base != NULL && base[0] ? base : "/tmp",
             tag);
    CL_ASSERT(mkdtemp(path) != NULL, "mkdtemp %s", path);
    return strdup(path);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void cluster_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void counter_apply(void *ctx, const struct yggr_command *cmd, struct yggr_reply *reply)
{
    struct counter *sm = ctx;
    uint64_t v = 0;
    memcpy(&v, cmd->data, cmd->len < 8 ? cmd->len : 8);
    if (sm->apply_delay_us > 0) {
        usleep(sm->apply_delay_us);
    }
    pthread_mutex_lock(&sm->mu);
    sm->total += v;
    sm->applied = cmd->index;
    sm->commands++;
    sm->digest = (sm->digest ^ (cmd->index * 0x9E3779B97F4A7C15ull) ^ v) * 0x100000001b3ull;
    uint64_t total = sm->total;
    pthread_mutex_unlock(&sm->mu);
    yggr_reply_set(reply, &total, sizeof(total));
}

static int counter_snapshot(void *ctx, struct yggr_snapshot_writer *w)
{
    struct counter *sm = ctx;
    if (sm->decline_snapshots) {
        return YGGR_ERR_DECLINED;
    }
    pthread_mutex_lock(&sm->mu);
    uint64_t state[4] = {sm->total, sm->applied, sm->digest, sm->commands};
    pthread_mutex_unlock(&sm->mu);
    return yggr_snapshot_write(w, state, sizeof(state));
}

static int counter_restore(void *ctx, struct yggr_snapshot_reader *r)
{
    struct counter *sm = ctx;
    uint64_t state[4];
    size_t got = 0;
    while (got < sizeof(state)) {
        long n = yggr_snapshot_read(r, (uint8_t *)state + got, sizeof(state) - got);
        if (n <= 0) {
            return YGGR_ERR_CORRUPT;
        }
        got += (size_t)n;
    }
    pthread_mutex_lock(&sm->mu);
    sm->total = state[0];
    sm->applied = state[1];
    sm->digest = state[2];
    sm->commands = state[3];
    pthread_mutex_unlock(&sm->mu);
    return 0;
}

uint64_t counter_total(struct counter *sm)
{
    pthread_mutex_lock(&sm->mu);
    uint64_t t = sm->total;
    pthread_mutex_unlock(&sm->mu);
    return t;
}

void cluster_init(struct cluster *c, uint32_t n, bool real, cluster_tweak_fn tweak)
{
    CL_ASSERT(n >= 1 && n <= CLUSTER_MAX, "bad size %u", n);
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->real = real;
    if (real) {
        c->dir = cluster_tmpdir("cluster");
        /* Below the kernel's ephemeral range (32768+), where outgoing connections take
         * ports a node might want to listen on. */
        c->base_port = (uint16_t)(12000 + ((getpid() * 7 + (int)(now_ms() % 997)) % 1900) * 10);
    } else {
        c->net = mem_net_new(0x1234 + n);
    }
    for (uint32_t i = 0; i < n; i++) {
        snprintf(c->addr[i], sizeof(c->addr[i]), "127.0.0.1:%u", c->base_port + i);
        pthread_mutex_init(&c->sm[i].mu, NULL);
        if (!real) {
            c->disk[i] = mem_disk_new();
        }
        uint32_t k = 0;
        for (uint32_t j = 0; j < n; j++) {
            if (j != i) {
                c->peers[i][k].id = j + 1;
                c->peers[i][k].addr = c->addr[j];
                k++;
            }
        }
        struct yggr_config *cfg = &c->cfg[i];
        yggr_config_init(cfg, i + 1);
        /* YGGR_TEST_TICK_MS slows time down for sanitizer builds (default 5 ms). */
        const char *tick = getenv("YGGR_TEST_TICK_MS");
        cfg->tick_ms = tick != NULL && atoi(tick) > 0 ? (uint32_t)atoi(tick) : 5;
        cfg->election_timeout_min_ticks = 10;
        cfg->election_timeout_max_ticks = 20;
        cfg->heartbeat_interval_ticks = 2;
        cfg->peers = c->peers[i];
        cfg->peer_count = n - 1;
        cfg->listen_addr = c->addr[i];
        cfg->bootstrap = YGGR_BOOTSTRAP_AUTO;
        cfg->sm = (struct yggr_state_machine){
            .ctx = &c->sm[i],
            .apply = counter_apply,
            .snapshot = counter_snapshot,
            .restore = counter_restore,
        };
        const char *lvl = getenv("YGGR_TEST_LOG_LEVEL");
        cfg->log_level = lvl != NULL ? atoi(lvl) : 0;
        cfg->segment_bytes = 4u << 20; /* small segments: less zeroing at start-up */
        if (tweak != NULL) {
            tweak(cfg, i);
        }
    }
}

void cluster_start(struct cluster *c, uint32_t i)
{
    CL_ASSERT(i < c->n, "no node %u", i);
    CL_ASSERT(c->node[i] == NULL, "node %u already running", i + 1);
    struct yggr_config cfg = c->cfg[i];
    char dir[512];
    /* A (re)started node gets a fresh, empty state machine, as a new process would. */
    pthread_mutex_lock(&c->sm[i].mu);
    c->sm[i].total = 0;
    c->sm[i].applied = 0;
    c->sm[i].digest = 0;
    c->sm[i].commands = 0;
    pthread_mutex_unlock(&c->sm[i].mu);
    if (c->real) {
        snprintf(dir, sizeof(dir), "%s/n%u", c->dir, i + 1);
        cfg.data_dir = dir;
    } else {
        CL_ASSERT(mem_storage_create(c->disk[i], &cfg.storage_ops, &cfg.storage) == 0, "%s", "mem storage");
        CL_ASSERT(mem_transport_create(c->net, i + 1, &cfg.transport_ops, &cfg.transport) == 0,
                  "%s", "mem transport");
    }
    char why[256] = "";
    int rc = yggr_node_start(&cfg, &c->node[i], why, sizeof(why));
    CL_ASSERT(rc == 0, "node %u start: %s (%s)", i + 1, why, yggr_strerror(rc));
}

void cluster_start_all(struct cluster *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        cluster_start(c, i);
    }
}

void cluster_stop(struct cluster *c, uint32_t i)
{
    if (c->node[i] != NULL) {
        yggr_node_stop(c->node[i]);
        c->node[i] = NULL;
    }
}

void cluster_destroy(struct cluster *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        cluster_stop(c, i);
    }
    for (uint32_t i = 0; i < c->n; i++) {
        mem_disk_free(c->disk[i]);
        pthread_mutex_destroy(&c->sm[i].mu);
    }
    mem_net_free(c->net);
    if (c->dir != NULL) {
        cluster_rmtree(c->dir);
        free(c->dir);
    }
}

int cluster_wait_leader(struct cluster *c, uint64_t timeout_ms)
{
    uint64_t until = now_ms() + timeout_ms;
    do {
        int leader = -1;
        uint32_t leaders = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            struct yggr_status st;
            if (c->node[i] != NULL && yggr_status(c->node[i], &st) == 0 &&
                st.role == YGGR_ROLE_LEADER) {
                leader = (int)i;
                leaders++;
            }
        }
        if (leaders == 1) {
            return leader;
        }
        sleep_ms(5);
    } while (now_ms() < until);
    return -1;
}

bool cluster_wait_applied(struct cluster *c, uint64_t index, uint64_t timeout_ms)
{
    uint64_t until = now_ms() + timeout_ms;
    do {
        bool all = true;
        for (uint32_t i = 0; i < c->n; i++) {
            struct yggr_status st;
            if (c->node[i] != NULL && (yggr_status(c->node[i], &st) != 0 ||
                                       st.applied_index < index)) {
                all = false;
            }
        }
        if (all) {
            return true;
        }
        sleep_ms(5);
    } while (now_ms() < until);
    return false;
}

int cluster_add(struct cluster *c, uint32_t i, uint64_t value, uint64_t *total, uint64_t *index)
{
    uint64_t reply = 0;
    uint32_t len = 0;
    int rc = yggr_propose_sync(c->node[i], &value, sizeof(value), &reply, sizeof(reply), &len,
                               index, NULL, 5000);
    if (rc == 0 && total != NULL) {
        CL_ASSERT(len == 8, "reply of %u bytes", len);
        *total = reply;
    }
    return rc;
}

bool cluster_total_ok(const struct cluster *c, uint64_t total, uint64_t expected)
{
    return total >= expected && total <= expected + c->unknown_sum;
}

int cluster_add_any(struct cluster *c, uint64_t value, uint64_t *total, uint64_t timeout_ms)
{
    uint64_t until = now_ms() + timeout_ms;
    int rc = YGGR_ERR_NO_LEADER;
    while (now_ms() < until) {
        int l = cluster_wait_leader(c, 200);
        if (l >= 0) {
            rc = cluster_add(c, (uint32_t)l, value, total, NULL);
            if (rc == 0) {
                return 0;
            }
            if (rc == YGGR_ERR_STEPPED_DOWN || rc == YGGR_ERR_TIMEOUT ||
                rc == YGGR_ERR_SHUTDOWN) {
                c->unknown_count++;
                c->unknown_sum += value;
                fprintf(stderr, "cluster: write of %llu: %s, retrying (may apply twice)\n",
                        (unsigned long long)value, yggr_strerror(rc));
            }
        }
        sleep_ms(10);
    }
    return rc;
}
