/* SPDX-License-Identifier: MIT */
/* Test harness for the TCP transport over real sockets: nodes, inboxes, raw clients, the
 * every-message-type corpus. Shared by test_tcp.c and test_tcp_auth.c (suite io). */
#ifndef YGGR_TESTS_TRANSPORT_TCP_HARNESS_H
#define YGGR_TESTS_TRANSPORT_TCP_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/plugin.h"

struct got {
    uint64_t from;
    uint64_t to;
    uint8_t *body;          /* the message re-encoded (owned) */
    size_t len;
};

enum { NODE_LOG_LINES = 64, NODE_LOG_BYTES = 400 };

struct node {
    const struct yggr_transport_ops *ops;
    struct yggr_transport *t;
    uint64_t id;
    char host[32];
    char addr[64];
    uint16_t port;
    atomic_int wakes;
    atomic_int rejections_logged;
    struct got *inbox;
    size_t count, cap;
    /* The last NODE_LOG_LINES log lines (written by yggr-net, read by the test). */
    pthread_mutex_t log_lock;
    char logs[NODE_LOG_LINES][NODE_LOG_BYTES];
    unsigned log_total;
};

/* Per-node options beyond the defaults (all may be zero). */
struct node_opts {
    const char *host;       /* default 127.0.0.1 */
    uint16_t port;          /* default 0: any */
    uint64_t budget;        /* peer_queue_bytes; default 0 */
    const struct node *peer; /* known before start() */
    const char *secret;     /* cluster secret (NUL-terminated, used without the NUL) */
    uint64_t cluster_id;
};

struct rec {
    struct yggr_msg msg;
    struct yggr_entry *entries;
    struct yggr_membership config;
};

enum { MANY = 1000, BIG = 100 * 1024, SNAP = 1 << 20 };

struct corpus {
    struct yggr_msg msgs[14];
    int count;
    struct yggr_entry many[MANY];
    struct yggr_entry big[4];
    struct yggr_entry configs[2];
    struct yggr_membership config;
    uint8_t *payload;
};

uint64_t now_ms(void);
void sleep_ms(int ms);
void on_wake(void *ctx);
void on_log(void *ctx, int level, const char *msg);

void node_open_opts(struct node *n, uint64_t id, const struct node_opts *o);
void node_open_peer(struct node *n, uint64_t id, const char *host, uint16_t port,
                    uint64_t budget, const struct node *peer);
void node_open_at(struct node *n, uint64_t id, const char *host, uint16_t port,
                  uint64_t budget);
void node_open(struct node *n, uint64_t id);
void node_close(struct node *n);
void knows(struct node *a, const struct node *b);
/* True when a log line of `n` contains `needle`. */
bool node_logged(struct node *n, const char *needle);
/* Print the captured log lines of `n` (for failure diagnostics). */
void node_dump_logs(struct node *n);

size_t drain(struct node *n);
bool wait_inbox(struct node *rx, size_t want, int timeout_ms, struct node **senders,
                int nsenders);
void decode_got(const struct got *g, struct rec *r);
struct yggr_msg heartbeat(uint64_t from, uint64_t to, uint64_t commit);
bool heartbeat_until_received(struct node *tx, struct node *rx, int timeout_ms);
struct yggr_peer_metrics metrics(struct node *n, uint64_t id);

int raw_connect(uint16_t port);
bool raw_closed_by_peer(int fd, int timeout_ms);
void raw_send(int fd, const void *data, size_t len);
size_t frame_of(uint64_t sender, const struct yggr_msg *m, uint8_t *out, size_t cap);

void corpus_build(struct corpus *c, uint64_t from, uint64_t to);
void expect_corpus(struct node *rx, size_t first, const struct corpus *c, uint64_t from);

#endif /* YGGR_TESTS_TRANSPORT_TCP_HARNESS_H */
