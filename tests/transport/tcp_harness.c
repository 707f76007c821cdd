/* SPDX-License-Identifier: MIT */
/* Test harness for the TCP transport (see tcp_harness.h). Moved out of test_tcp.c so the
 * authentication tests (test_tcp_auth.c) drive nodes the same way. */
#include "tcp_harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "tcp.h"

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void on_wake(void *ctx)
{
    atomic_fetch_add(&((struct node *)ctx)->wakes, 1);
}

void on_log(void *ctx, int level, const char *msg)
{
    struct node *n = ctx;
    if (strstr(msg, "closing connection") != NULL) {
        atomic_fetch_add(&n->rejections_logged, 1);
    }
    pthread_mutex_lock(&n->log_lock);
    snprintf(n->logs[n->log_total % NODE_LOG_LINES], NODE_LOG_BYTES, "[%d] %s", level, msg);
    n->log_total++;
    pthread_mutex_unlock(&n->log_lock);
    if (getenv("YGGR_TEST_LOG") != NULL) {
        fprintf(stderr, "node %llu: [%d] %s\n", (unsigned long long)n->id, level, msg);
    }
}

bool node_logged(struct node *n, const char *needle)
{
    bool found = false;
    pthread_mutex_lock(&n->log_lock);
    unsigned first = n->log_total > NODE_LOG_LINES ? n->log_total - NODE_LOG_LINES : 0;
    for (unsigned i = first; i < n->log_total && !found; i++) {
        found = strstr(n->logs[i % NODE_LOG_LINES], needle) != NULL;
    }
    pthread_mutex_unlock(&n->log_lock);
    return found;
}

void node_dump_logs(struct node *n)
{
    pthread_mutex_lock(&n->log_lock);
    unsigned first = n->log_total > NODE_LOG_LINES ? n->log_total - NODE_LOG_LINES : 0;
    for (unsigned i = first; i < n->log_total; i++) {
        fprintf(stderr, "node %llu log: %s\n", (unsigned long long)n->id,
                n->logs[i % NODE_LOG_LINES]);
    }
    pthread_mutex_unlock(&n->log_lock);
}

/* `o->peer` (may be NULL) is known before start(), as a restarting node would do it:
 * frames that arrive the moment the listener opens then find their sender known. */
void node_open_opts(struct node *n, uint64_t id, const struct node_opts *o)
{
    char listen[64], why[256] = "";
    const char *host = o->host != NULL ? o->host : "127.0.0.1";
    memset(n, 0, sizeof(*n));
    pthread_mutex_init(&n->log_lock, NULL);
    n->id = id;
    snprintf(n->host, sizeof(n->host), "%s", host);
    snprintf(listen, sizeof(listen), "%s:%u", host, o->port);
    struct yggr_tcp_options to = {.node_id = id, .listen_addr = listen,
                                  .peer_queue_bytes = o->budget, .log_fn = on_log,
                                  .log_ctx = n, .cluster_id = o->cluster_id};
    if (o->secret != NULL) {
        to.secret = (const uint8_t *)o->secret;
        to.secret_len = (uint32_t)strlen(o->secret);
    }
    cr_assert(eq(int, yggr_tcp_transport_create(&to, &n->ops, &n->t, why, sizeof(why)), 0),
              "create: %s", why);
    if (o->peer != NULL) {
        cr_assert(eq(int, n->ops->set_peer(n->t, o->peer->id, o->peer->addr), 0));
    }
    cr_assert(eq(int, n->ops->start(n->t, on_wake, n, -1, why, sizeof(why)), 0), "start: %s",
              why);
    n->port = tcp_transport_port(n->t);
    snprintf(n->addr, sizeof(n->addr), "%s:%u", host, n->port);
}

void node_open_peer(struct node *n, uint64_t id, const char *host, uint16_t port,
                    uint64_t budget, const struct node *peer)
{
    struct node_opts o = {.host = host, .port = port, .budget = budget, .peer = peer};
    node_open_opts(n, id, &o);
}

void node_open_at(struct node *n, uint64_t id, const char *host, uint16_t port,
                  uint64_t budget)
{
    node_open_peer(n, id, host, port, budget, NULL);
}

void node_open(struct node *n, uint64_t id)
{
    node_open_at(n, id, "127.0.0.1", 0, 0);
}

void node_close(struct node *n)
{
    if (n->t != NULL) {
        n->ops->close(n->t);
        n->t = NULL;
    }
    for (size_t i = 0; i < n->count; i++) {
        free(n->inbox[i].body);
    }
    free(n->inbox);
    n->inbox = NULL;
    n->count = n->cap = 0;
    /* The log lock stays usable: node_close may run twice, and a node is reopened in place
     * only through node_open_opts, which initialises it again. */
}

void knows(struct node *a, const struct node *b)
{
    cr_assert(eq(int, a->ops->set_peer(a->t, b->id, b->addr), 0));
}

/* Drain every inbound batch of `n` into its inbox (copies), then release the batch. */
size_t drain(struct node *n)
{
    struct yggr_inbound in;
    size_t got = 0;
    n->ops->flush(n->t);
    while (n->ops->poll(n->t, &in)) {
        for (uint32_t i = 0; i < in.count; i++) {
            const struct yggr_msg *m = &in.msgs[i];
            if (n->count == n->cap) {
                n->cap = n->cap ? n->cap * 2 : 256;
                n->inbox = realloc(n->inbox, n->cap * sizeof(*n->inbox));
                cr_assert_not_null(n->inbox);
            }
            struct got *g = &n->inbox[n->count++];
            g->from = m->from;
            g->to = m->to;
            g->len = codec_msg_size(m);
            g->body = malloc(g->len + 1);
            cr_assert_not_null(g->body);
            codec_msg_encode(m, g->body, g->len);
            got++;
        }
        n->ops->release(n->t, &in);
    }
    return got;
}

/* Flush the senders and drain `rx` until it holds `want` messages or time runs out. */
bool wait_inbox(struct node *rx, size_t want, int timeout_ms, struct node **senders,
                int nsenders)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (rx->count < want && now_ms() < end) {
        for (int i = 0; i < nsenders; i++) {
            senders[i]->ops->flush(senders[i]->t);
        }
        if (drain(rx) == 0) {
            sleep_ms(1);
        }
    }
    return rx->count >= want;
}

void decode_got(const struct got *g, struct rec *r)
{
    static struct yggr_entry entries[8192];
    struct codec_error err;
    r->entries = entries;
    struct codec_space s = {.entries = entries, .entry_cap = 8192, .config = &r->config};
    cr_assert(eq(int, codec_msg_decode(g->body, g->len, NULL, &s, &r->msg, &err), 0));
}

struct yggr_msg heartbeat(uint64_t from, uint64_t to, uint64_t commit)
{
    struct yggr_msg m = {.type = YGGR_MSG_APPEND_REQUEST, .from = from, .to = to, .term = 1};
    m.as.append = (struct yggr_msg_append_request){.leader_id = from, .prev = {commit, 1},
                                                   .leader_commit = commit};
    return m;
}

/* A raw TCP client (no transport): for hostile input and stalled readers. */
int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(ge(int, fd, 0));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0), "%s",
              strerror(errno));
    return fd;
}

/* True when the server closed `fd` within the timeout (EOF or reset). */
bool raw_closed_by_peer(int fd, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            uint8_t junk[4096];
            ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                return true;
            }
        }
    }
    return false;
}

void raw_send(int fd, const void *data, size_t len)
{
    cr_assert(eq(sz, (size_t)send(fd, data, len, MSG_NOSIGNAL), len));
}

size_t frame_of(uint64_t sender, const struct yggr_msg *m, uint8_t *out, size_t cap)
{
    size_t body = codec_msg_size(m);
    cr_assert(le(sz, body + CODEC_FRAME_HEADER_BYTES, cap));
    codec_frame_header_put(out, sender, (uint32_t)body);
    codec_msg_encode(m, out + CODEC_FRAME_HEADER_BYTES, cap - CODEC_FRAME_HEADER_BYTES);
    return body + CODEC_FRAME_HEADER_BYTES;
}

struct yggr_peer_metrics metrics(struct node *n, uint64_t id)
{
    struct yggr_peer_metrics m;
    cr_assert(eq(int, n->ops->peer_metrics(n->t, id, &m), 0));
    return m;
}

/* ---------------------------------------------------------------------------------------
 * Every message type, three transports
 * ------------------------------------------------------------------------------------- */

void corpus_build(struct corpus *c, uint64_t from, uint64_t to)
{
    memset(c, 0, sizeof(*c));
    c->payload = malloc(SNAP);
    cr_assert_not_null(c->payload);
    for (int i = 0; i < SNAP; i++) {
        c->payload[i] = (uint8_t)(i * 31 + 7);
    }
    struct yggr_msg base = {.from = from, .to = to, .term = 4};
    struct yggr_msg *m = c->msgs;
    m[0] = base;
    m[0].type = YGGR_MSG_VOTE_REQUEST;
    m[0].as.vote_request = (struct yggr_msg_vote_request){.candidate_id = from, .last = {9, 3},
                                                          .transfer = true};
    m[1] = base;
    m[1].type = YGGR_MSG_VOTE_RESPONSE;
    m[1].as.vote_response.granted = true;
    m[2] = heartbeat(from, to, 7);
    m[3] = base;
    m[3].type = YGGR_MSG_APPEND_REQUEST;
    m[3].as.append = (struct yggr_msg_append_request){.leader_id = from, .prev = {10, 4},
                                                      .leader_commit = 10, .round = 5,
                                                      .entries = c->many, .entry_count = MANY};
    for (int i = 0; i < MANY; i++) {
        c->many[i] = (struct yggr_entry){.index = 11 + (uint64_t)i, .term = 4,
                                         .type = YGGR_ENTRY_COMMAND, .data = c->payload + i,
                                         .len = 64};
    }
    m[4] = m[3];
    m[4].as.append.entries = c->big;
    m[4].as.append.entry_count = 4;
    for (int i = 0; i < 4; i++) {
        c->big[i] = (struct yggr_entry){.index = 11 + (uint64_t)i, .term = 4,
                                        .type = YGGR_ENTRY_COMMAND, .data = c->payload + i * 7,
                                        .len = BIG};
    }
    m[5] = m[3];
    m[5].as.append.entries = c->configs;
    m[5].as.append.entry_count = 2;
    c->configs[0] = (struct yggr_entry){.index = 11, .term = 4, .type = YGGR_ENTRY_CONFIG,
                                        .change = YGGR_CHANGE_ADD_VOTER, .node = 9,
                                        .data = (const uint8_t *)"127.0.0.9:7009", .len = 14};
    c->configs[1] = (struct yggr_entry){.index = 12, .term = 4, .type = YGGR_ENTRY_CONFIG,
                                        .change = YGGR_CHANGE_REMOVE_VOTER, .node = 8};
    m[6] = base;
    m[6].type = YGGR_MSG_APPEND_RESPONSE;
    m[6].as.append_response = (struct yggr_msg_append_response){.success = true,
                                                                .last_appended = 12, .round = 5};
    m[7] = base;
    m[7].type = YGGR_MSG_APPEND_RESPONSE;
    m[7].as.append_response = (struct yggr_msg_append_response){.hint = 3, .conflict_term = 2};
    c->config = (struct yggr_membership){.voter_count = 3, .voters = {1, 2, 3},
                                         .learner_count = 1, .learners = {7}};
    m[8] = base;
    m[8].type = YGGR_MSG_SNAPSHOT_REQUEST;
    m[8].as.snapshot = (struct yggr_msg_snapshot_request){
        .leader_id = from, .last = {500, 3}, .offset = (uint64_t)SNAP, .leader_commit = 600,
        .data = c->payload, .len = SNAP, .config = &c->config, .round = 6};
    m[9] = base;
    m[9].type = YGGR_MSG_SNAPSHOT_RESPONSE;
    m[9].as.snapshot_response = (struct yggr_msg_snapshot_response){.last = {500, 3},
                                                                    .next_offset = 2 * SNAP};
    m[10] = base;
    m[10].type = YGGR_MSG_TIMEOUT_NOW;
    m[10].as.timeout_now.leader_id = from;
    m[11] = base;
    m[11].type = YGGR_MSG_PRE_VOTE_REQUEST;
    m[11].as.vote_request = (struct yggr_msg_vote_request){.candidate_id = from};
    m[12] = base;
    m[12].type = YGGR_MSG_PRE_VOTE_RESPONSE;
    m[12].as.vote_response = (struct yggr_msg_vote_response){.granted = false, .removed = true};
    c->count = 13;
}

void expect_corpus(struct node *rx, size_t first, const struct corpus *c, uint64_t from)
{
    int matched = 0;
    for (size_t i = first; i < rx->count; i++) {
        if (rx->inbox[i].from != from) {
            continue;
        }
        struct rec r;
        decode_got(&rx->inbox[i], &r);
        cr_expect(eq(u64, rx->inbox[i].to, rx->id));
        cr_expect(codec_msg_equal(&r.msg, &c->msgs[matched]), "message %d (type %d) from %llu",
                  matched, c->msgs[matched].type, (unsigned long long)from);
        matched++;
    }
    cr_expect(eq(int, matched, c->count));
}

/* Send heartbeats (commit = 1, 2, ...) until rx has one, within the timeout. */
bool heartbeat_until_received(struct node *tx, struct node *rx, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    uint64_t commit = 0;
    size_t before = rx->count;
    while (now_ms() < end) {
        struct yggr_msg m = heartbeat(tx->id, rx->id, ++commit);
        cr_assert(eq(int, tx->ops->send(tx->t, &m), 0));
        tx->ops->flush(tx->t);
        sleep_ms(10);
        drain(rx);
        if (rx->count > before) {
            return true;
        }
    }
    return false;
}
