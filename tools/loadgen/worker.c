/* SPDX-License-Identifier: MIT */
/* loadgen worker: one thread, one epoll, many connections, pipelined requests.
 *
 * Connection states: DOWN --(retry_at reached)--> CONNECTING --(SO_ERROR == 0)--> READY.
 * READY --(error, EOF, timeout)--> DOWN: every request in flight fails; a write (SET/DEL) in
 * flight becomes INDETERMINATE (history result "unknown"): it is never re-sent.
 * READY --(REDIRECT for a request)--> moving: no new requests, the redirected request waits in
 * the retry ring (it was definitely not applied), and once the in-flight ring drains the
 * connection closes and reconnects to the named node, where the retry is sent as a NEW
 * operation (new sequence number and value, new invoke time, same latency origin).
 * Invariants: inflight.count + retry.count <= depth; replies arrive in request order, so the
 * front of the in-flight ring owns the next reply; a DOWN connection has fd == -1.
 * Batching: all requests a connection can issue are encoded into one buffer and sent with one
 * send(); replies are parsed in place (no allocation per request or reply). */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loadgen.h"

#define SCAN_INTERVAL_US    1000u
#define BACKOFF_MIN_US      10000u
#define BACKOFF_MAX_US      500000u
#define ERROR_PAUSE_STEP_US 5000u
#define ERROR_PAUSE_MAX_US  100000u
#define ERROR_MOVE_STREAK   4u /* definite errors in a row before trying another node */
#define EVENTS_MAX          256
#define VALUE_PREFIX_MAX    40

enum outcome { OUTCOME_OK, OUTCOME_FAIL, OUTCOME_UNKNOWN };

static const char *const outcome_names[] = {"ok", "fail", "unknown"};

static struct lg_op *ring_push(struct lg_ring *r)
{
    TOOL_ASSERT(r->count < r->capacity);
    uint32_t slot = (r->head + r->count) % r->capacity;
    r->count++;
    return &r->ops[slot];
}

static struct lg_op ring_pop(struct lg_ring *r)
{
    TOOL_ASSERT(r->count > 0);
    struct lg_op op = r->ops[r->head];
    r->head = (r->head + 1) % r->capacity;
    r->count--;
    return op;
}

static bool ring_init(struct lg_ring *r, uint32_t capacity)
{
    r->ops = calloc(capacity, sizeof(*r->ops));
    r->capacity = capacity;
    r->head = 0;
    r->count = 0;
    return r->ops != NULL;
}

static size_t value_len_max(const struct lg_options *opt)
{
    return (size_t)opt->value_size + VALUE_PREFIX_MAX;
}

static int conn_init(struct lg_conn *c, const struct lg_options *opt, uint32_t client)
{
    size_t vmax = value_len_max(opt);
    size_t req_max = proto_request_max(LG_KEY_TEXT_MAX, vmax);
    size_t in_cap = (size_t)opt->depth * (vmax + 32);
    in_cap = in_cap < 16384 ? 16384 : in_cap > (4u << 20) ? (4u << 20) : in_cap;
    in_cap = in_cap < 2 * (vmax + 64) ? 2 * (vmax + 64) : in_cap;
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = LG_CONN_DOWN;
    c->client = client;
    c->move_to = -1;
    c->out_cap = (size_t)opt->depth * req_max;
    c->in_cap = in_cap;
    c->out = malloc(c->out_cap);
    c->in = malloc(c->in_cap);
    uint64_t seed = opt->seed ^ ((uint64_t)client * UINT64_C(0x9E3779B97F4A7C15));
    c->rng = tool_splitmix64(&seed);
    c->next_seq = 1;
    if (c->out == NULL || c->in == NULL || !ring_init(&c->inflight, opt->depth) ||
        !ring_init(&c->retry, opt->depth)) {
        return -1;
    }
    return 0;
}

int worker_init(struct lg_worker *w, struct lg_run *run, uint32_t index, uint32_t first_client,
                uint32_t conn_count)
{
    const struct lg_options *opt = run->opt;
    TOOL_ASSERT(conn_count > 0);
    memset(w, 0, sizeof(*w));
    w->run = run;
    w->index = index;
    w->conn_count = conn_count;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->conns = calloc(conn_count, sizeof(*w->conns));
    if (w->epfd < 0 || w->conns == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < conn_count; i++) {
        if (conn_init(&w->conns[i], opt, first_client + i) != 0) {
            return -1;
        }
    }
    hdr_reset(&w->stats.total);
    hdr_reset(&w->stats.reads);
    hdr_reset(&w->stats.writes);
    hdr_reset(&w->interval);
    if (opt->rate > 0) {
        double rate = opt->rate * (double)conn_count / (double)opt->connections;
        w->op_interval_us = 1e6 / rate;
    }
    if (opt->history_path != NULL) {
        w->hcap = (1u << 20) + 6 * value_len_max(opt) + 512;
        w->hbuf = malloc(w->hcap);
        if (w->hbuf == NULL) {
            return -1;
        }
    }
    return 0;
}

void worker_deinit(struct lg_worker *w)
{
    for (uint32_t i = 0; w->conns != NULL && i < w->conn_count; i++) {
        struct lg_conn *c = &w->conns[i];
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c->out);
        free(c->in);
        free(c->inflight.ops);
        free(c->retry.ops);
    }
    free(w->conns);
    free(w->hbuf);
    if (w->epfd >= 0) {
        close(w->epfd);
    }
}

/* ---- recording ------------------------------------------------------------------------ */

static void count_kind(struct lg_counts *k, enum op_kind kind)
{
    switch (kind) {
    case OP_KIND_READ:
        k->reads++;
        return;
    case OP_KIND_WRITE:
        k->writes++;
        return;
    case OP_KIND_DELETE:
        k->deletes++;
        return;
    }
    TOOL_UNREACHABLE();
}

/* Account one finished attempt; err is LG_ERR_COUNT when there was no error. */
static void finish_op(struct lg_worker *w, const struct lg_conn *c, const struct lg_op *op,
                      uint64_t now, enum outcome outcome, enum lg_err err, const char *read_value,
                      size_t read_len, bool read_raw)
{
    struct lg_run *run = w->run;
    bool measured = now >= run->warm_end_us;
    struct lg_counts *sets[3] = {&w->stats.all, &w->interval_counts,
                                 measured ? &w->stats.counts : NULL};
    for (int i = 0; i < 3 && sets[i] != NULL; i++) {
        if (outcome == OUTCOME_OK) {
            sets[i]->ok++;
            count_kind(sets[i], (enum op_kind)op->kind);
        } else if (outcome == OUTCOME_UNKNOWN && op->kind != OP_KIND_READ) {
            sets[i]->indeterminate++;
        }
        if (err != LG_ERR_COUNT) {
            sets[i]->errors[err]++;
        }
    }
    if (outcome == OUTCOME_OK) {
        uint64_t latency = now > op->intended_us ? now - op->intended_us : 0;
        hdr_record(&w->interval, latency);
        if (measured) {
            hdr_record(&w->stats.total, latency);
            hdr_record(op->kind == OP_KIND_READ ? &w->stats.reads : &w->stats.writes, latency);
            w->stats.last_ok_us = now;
        }
    }
    if (w->hbuf != NULL) {
        history_record(w, c, op, now, outcome_names[outcome], read_value, read_len, read_raw);
    }
}

/* A request whose connection failed: writes become indeterminate, reads simply fail. */
static void fail_inflight(struct lg_worker *w, struct lg_conn *c, enum lg_err err, uint64_t now)
{
    while (c->inflight.count > 0) {
        struct lg_op op = ring_pop(&c->inflight);
        finish_op(w, c, &op, now, OUTCOME_UNKNOWN, err, NULL, 0, false);
    }
}

/* ---- connection lifecycle ------------------------------------------------------------- */

static void set_events(struct lg_worker *w, struct lg_conn *c, uint32_t events, int op)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(w->epfd, op, c->fd, &ev) != 0) {
        tool_die(1, "epoll_ctl: %s", strerror(errno));
    }
}

static void close_fd(struct lg_conn *c)
{
    TOOL_ASSERT(c->fd >= 0);
    close(c->fd); /* also drops it from the epoll set */
    c->fd = -1;
    c->state = LG_CONN_DOWN;
    c->in_len = 0;
    c->out_len = 0;
    c->out_sent = 0;
    c->want_out = false;
}

static uint64_t next_backoff(struct lg_conn *c)
{
    c->backoff_us = c->backoff_us == 0 ? BACKOFF_MIN_US : c->backoff_us * 2;
    if (c->backoff_us > BACKOFF_MAX_US) {
        c->backoff_us = BACKOFF_MAX_US;
    }
    /* Up to 25% jitter so connections do not reconnect in lock step. */
    return c->backoff_us + tool_splitmix64(&c->rng) % (c->backoff_us / 4 + 1);
}

/* Give up on the current node's leadership: move the shared hint to the next node. */
static void suspect_node(struct lg_worker *w, const struct lg_conn *c)
{
    uint32_t n = w->run->opt->node_count;
    if (n > 1) {
        run_set_leader(w->run, c->node, (c->node + 1) % n, false);
    }
}

static void conn_fail(struct lg_worker *w, struct lg_conn *c, enum lg_err err, uint64_t now)
{
    fail_inflight(w, c, err, now);
    close_fd(c);
    if (err == LG_ERR_TIMEOUT || err == LG_ERR_CONN_LOST) {
        suspect_node(w, c);
    }
    c->retry_at_us = now + next_backoff(c);
}

static void connect_failed(struct lg_worker *w, struct lg_conn *c, uint64_t now)
{
    TOOL_ASSERT(c->inflight.count == 0);
    close_fd(c);
    w->stats.all.connect_failures++;
    if (now >= w->run->warm_end_us) {
        w->stats.counts.connect_failures++;
    }
    w->interval_counts.connect_failures++;
    suspect_node(w, c);
    c->move_to = -1;
    c->retry_at_us = now + next_backoff(c);
}

static void conn_ready(struct lg_worker *w, struct lg_conn *c);

static void conn_connect(struct lg_worker *w, struct lg_conn *c, uint64_t now)
{
    const struct lg_options *opt = w->run->opt;
    TOOL_ASSERT(c->state == LG_CONN_DOWN);
    c->node = c->move_to >= 0 ? (uint32_t)c->move_to
                              : atomic_load_explicit(&w->run->leader, memory_order_relaxed);
    c->move_to = -1;
    const struct tool_addr *a = &opt->nodes[c->node];
    c->fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        tool_die(1, "socket: %s%s", strerror(errno),
                 errno == EMFILE ? " (raise the limit with 'ulimit -n' or use fewer "
                                   "--connections)"
                                 : "");
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->connect_started_us = now;
    if (connect(c->fd, (const struct sockaddr *)&a->sa, a->sa_len) == 0) {
        set_events(w, c, EPOLLIN, EPOLL_CTL_ADD);
        conn_ready(w, c);
        return;
    }
    if (errno != EINPROGRESS) {
        c->state = LG_CONN_CONNECTING;
        connect_failed(w, c, now);
        return;
    }
    c->state = LG_CONN_CONNECTING;
    set_events(w, c, EPOLLOUT, EPOLL_CTL_ADD);
}

/* Graceful close after a redirect: nothing is in flight, so nothing is lost. */
static void conn_move(struct lg_conn *c, uint64_t now)
{
    TOOL_ASSERT(c->inflight.count == 0);
    TOOL_ASSERT(c->move_to >= 0);
    close_fd(c);
    uint64_t delay = 0;
    if (c->redirect_streak > 2) {
        uint32_t shift = c->redirect_streak - 2 > 8 ? 8 : c->redirect_streak - 2;
        delay = (uint64_t)1000u << shift; /* redirect ping-pong during an election */
    }
    c->retry_at_us = now + delay;
}

/* ---- issuing ---------------------------------------------------------------------------- */

static bool stopping(const struct lg_worker *w, uint64_t now)
{
    const struct lg_run *run = w->run;
    return now >= run->stop_us || atomic_load_explicit(&run->stop, memory_order_relaxed);
}

static bool conn_accepts(const struct lg_conn *c, uint32_t depth, uint64_t now)
{
    return c->state == LG_CONN_READY && c->move_to < 0 && now >= c->pause_until_us &&
           c->inflight.count < depth;
}

static size_t put_key(char *dst, uint32_t key)
{
    dst[0] = 'k';
    return 1 + tool_put_u64(dst + 1, key);
}

/* Encode op into the connection's output buffer and put it in flight. */
static void send_op(struct lg_worker *w, struct lg_conn *c, struct lg_op op, uint64_t now)
{
    const struct lg_options *opt = w->run->opt;
    char key[LG_KEY_TEXT_MAX];
    char head[VALUE_PREFIX_MAX];
    size_t head_len = 0;
    size_t key_len = put_key(key, op.key);
    op.seq = c->next_seq++;
    op.invoke_us = now;
    if (op.kind == OP_KIND_WRITE && w->hbuf != NULL) {
        head_len = history_value_id(head, c->client, op.seq);
        head[head_len++] = '-';
    }
    size_t tail_len = head_len >= opt->value_size ? 0 : opt->value_size - head_len;
    if (c->out_sent > 0) {
        memmove(c->out, c->out + c->out_sent, c->out_len - c->out_sent);
        c->out_len -= c->out_sent;
        c->out_sent = 0;
    }
    TOOL_ASSERT(c->out_len + proto_request_max(key_len, head_len + tail_len) <= c->out_cap);
    c->out_len += proto_encode(opt->protocol, c->out + c->out_len, (enum op_kind)op.kind, key,
                               key_len, head, head_len, w->run->filler, tail_len);
    *ring_push(&c->inflight) = op;
}

/* Claim and build a new request; false when the run should issue no more. */
static bool new_op(struct lg_worker *w, struct lg_conn *c, uint64_t intended, uint64_t now,
                   struct lg_op *op)
{
    struct lg_run *run = w->run;
    const struct lg_options *opt = run->opt;
    if (opt->requests > 0 && now >= run->warm_end_us) {
        uint64_t claim = atomic_fetch_add_explicit(&run->claimed, 1, memory_order_relaxed);
        if (claim >= opt->requests) {
            atomic_store_explicit(&run->stop, true, memory_order_relaxed);
            return false;
        }
    }
    memset(op, 0, sizeof(*op));
    op->intended_us = intended;
    op->key = opt->key_offset + (uint32_t)(tool_splitmix64(&c->rng) % opt->keys);
    double r = (double)(tool_splitmix64(&c->rng) >> 11) * 0x1.0p-53;
    double d = (double)(tool_splitmix64(&c->rng) >> 11) * 0x1.0p-53;
    op->kind = (uint8_t)(r < opt->read_ratio     ? OP_KIND_READ
                         : d < opt->delete_ratio ? OP_KIND_DELETE
                                                 : OP_KIND_WRITE);
    return true;
}

/* Issue redirect retries, then (closed loop) new requests up to depth. */
static void conn_fill(struct lg_worker *w, struct lg_conn *c, uint64_t now)
{
    const struct lg_options *opt = w->run->opt;
    while (conn_accepts(c, opt->depth, now) && c->retry.count > 0 && !stopping(w, now)) {
        send_op(w, c, ring_pop(&c->retry), now);
    }
    if (opt->rate > 0) {
        return; /* open loop: new requests come from dispatch_scheduled() */
    }
    while (conn_accepts(c, opt->depth, now) && c->inflight.count + c->retry.count < opt->depth &&
           !stopping(w, now)) {
        struct lg_op op;
        if (!new_op(w, c, now, now, &op)) {
            return;
        }
        send_op(w, c, op, now);
    }
}

static void conn_flush(struct lg_worker *w, struct lg_conn *c, uint64_t now)
{
    while (c->state == LG_CONN_READY && c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                c->want_out = true;
                set_events(w, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
            }
            return;
        } else {
            conn_fail(w, c, LG_ERR_CONN_LOST, now);
            return;
        }
    }
    if (c->state == LG_CONN_READY) {
        c->out_len = 0;
        c->out_sent = 0;
        if (c->want_out) {
            c->want_out = false;
            set_events(w, c, EPOLLIN, EPOLL_CTL_MOD);
        }
    }
}

static void conn_ready(struct lg_worker *w, struct lg_conn *c)
{
    uint64_t now = tool_now_us();
    c->state = LG_CONN_READY;
    conn_fill(w, c, now);
    conn_flush(w, c, now);
}

/* Open loop: hand every request whose intended time has come to a connection with room.
 * Requests that find no room wait here with their intended time (coordinated omission). */
static void dispatch_scheduled(struct lg_worker *w, uint64_t now)
{
    const struct lg_run *run = w->run;
    uint32_t depth = run->opt->depth;
    if (stopping(w, now) || now < run->start_us) {
        return;
    }
    uint64_t due = (uint64_t)((double)(now - run->start_us) / w->op_interval_us) + 1;
    uint32_t visited = 0;
    while (w->scheduled < due && visited < w->conn_count) {
        struct lg_conn *c = &w->conns[w->rr];
        if (conn_accepts(c, depth, now) && c->inflight.count + c->retry.count < depth) {
            uint64_t intended =
                run->start_us + (uint64_t)((double)w->scheduled * w->op_interval_us);
            struct lg_op op;
            if (!new_op(w, c, intended, now, &op)) {
                break;
            }
            send_op(w, c, op, now);
            conn_flush(w, c, now);
            w->scheduled++;
            visited = 0;
        } else {
            visited++;
        }
        w->rr = (w->rr + 1) % w->conn_count;
    }
}

/* ---- replies ------------------------------------------------------------------------------ */

static bool is_filler(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != (char)('a' + i % 26)) {
            return false;
        }
    }
    return true;
}

/* Length of a "c<digits>-s<digits>-" prefix at p, or 0. */
static size_t id_prefix_len(const char *p, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 2; part++) {
        if (i >= len || p[i] != (part == 0 ? 'c' : 's')) {
            return 0;
        }
        size_t digits = ++i;
        while (i < len && p[i] >= '0' && p[i] <= '9') {
            i++;
        }
        if (i == digits || i >= len || p[i] != '-') {
            return 0;
        }
        i++;
    }
    return i;
}

/* A read returned a value: check it is one loadgen could have written, and record it. */
static void finish_read_value(struct lg_worker *w, struct lg_conn *c, const struct lg_op *op,
                              const struct reply *r, uint64_t now)
{
    size_t prefix = id_prefix_len(r->text, r->len);
    bool valid = is_filler(r->text + prefix, r->len - prefix);
    if (valid && prefix > 0) {
        /* Record the unique id "c<client>-s<seq>" (the filler was verified above). */
        finish_op(w, c, op, now, OUTCOME_OK, LG_ERR_COUNT, r->text, prefix - 1, false);
    } else {
        finish_op(w, c, op, now, OUTCOME_OK, valid ? LG_ERR_COUNT : LG_ERR_CORRUPT_VALUE, r->text,
                  r->len, true);
    }
}

static int32_t find_node(const struct lg_options *opt, const struct reply *r)
{
    if (r->redirect_id != 0) {
        for (uint32_t i = 0; i < opt->node_count; i++) {
            if (opt->node_ids[i] == r->redirect_id) {
                return (int32_t)i;
            }
        }
        return -1;
    }
    if (r->redirect_addr == NULL || r->redirect_addr_len >= 128) {
        return -1;
    }
    char text[128];
    char err[160];
    struct tool_addr addr;
    memcpy(text, r->redirect_addr, r->redirect_addr_len);
    text[r->redirect_addr_len] = '\0';
    if (tool_resolve(text, &addr, err, sizeof(err)) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < opt->node_count; i++) {
        if (tool_addr_equal(&addr, &opt->nodes[i])) {
            return (int32_t)i;
        }
    }
    return -1;
}

/* REDIRECT: the request was not applied. Record it as failed and retry it on the leader. */
static void on_redirect(struct lg_worker *w, struct lg_conn *c, struct lg_op *op,
                        const struct reply *r, uint64_t now)
{
    const struct lg_options *opt = w->run->opt;
    w->stats.all.redirects++;
    w->interval_counts.redirects++;
    if (now >= w->run->warm_end_us) {
        w->stats.counts.redirects++;
    }
    if (w->hbuf != NULL) {
        history_record(w, c, op, now, "fail", NULL, 0, false);
    }
    int32_t target = find_node(opt, r);
    if (target < 0 || (uint32_t)target == c->node) {
        /* No usable hint (unknown id, or ourselves): try the next node. */
        if (opt->node_count > 1) {
            target = (int32_t)((c->node + 1) % opt->node_count);
            run_set_leader(w->run, c->node, (uint32_t)target, false);
        }
        c->pause_until_us = now + ERROR_PAUSE_STEP_US;
    } else {
        run_set_leader(w->run, c->node, (uint32_t)target, true);
    }
    if (target >= 0 && (uint32_t)target != c->node) {
        c->move_to = target;
    }
    c->redirect_streak++;
    if (op->retries >= LG_RETRIES_MAX) {
        /* Give up; the attempt is already in the history as "fail". */
        w->stats.all.errors[LG_ERR_REDIRECTS]++;
        w->interval_counts.errors[LG_ERR_REDIRECTS]++;
        if (now >= w->run->warm_end_us) {
            w->stats.counts.errors[LG_ERR_REDIRECTS]++;
        }
        return;
    }
    op->retries++;
    *ring_push(&c->retry) = *op;
}

static void on_error_reply(struct lg_worker *w, struct lg_conn *c, const struct lg_op *op,
                           const struct reply *r, uint64_t now)
{
    /* Only a definite error proves a write was not applied; anything else may have been. */
    bool unknown = op->kind != OP_KIND_READ && !r->definite;
    finish_op(w, c, op, now, unknown ? OUTCOME_UNKNOWN : OUTCOME_FAIL, LG_ERR_ERROR_REPLY, NULL, 0,
              false);
    c->error_streak++;
    uint64_t pause = (uint64_t)ERROR_PAUSE_STEP_US * c->error_streak;
    c->pause_until_us = now + (pause > ERROR_PAUSE_MAX_US ? ERROR_PAUSE_MAX_US : pause);
    /* A node that keeps refusing (removed from the cluster, no leader known for a while)
     * will not get better by itself: try the next one, as for a redirect without a hint. */
    uint32_t n = w->run->opt->node_count;
    if (r->definite && c->error_streak % ERROR_MOVE_STREAK == 0 && n > 1 && c->move_to < 0) {
        uint32_t next = (c->node + 1) % n;
        run_set_leader(w->run, c->node, next, false);
        c->move_to = (int32_t)next;
    }
}

/* Does a non-error reply fit the request? (DEL answers the old value or an integer.) */
static bool reply_fits(enum op_kind kind, enum reply_kind reply)
{
    switch (kind) {
    case OP_KIND_READ:
        return reply == REPLY_KIND_NIL || reply == REPLY_KIND_VALUE;
    case OP_KIND_WRITE:
        return reply == REPLY_KIND_OK;
    case OP_KIND_DELETE:
        return reply != REPLY_KIND_ERROR && reply != REPLY_KIND_REDIRECT;
    }
    TOOL_UNREACHABLE();
}

static void on_reply(struct lg_worker *w, struct lg_conn *c, const struct reply *r, uint64_t now)
{
    struct lg_op op = ring_pop(&c->inflight);
    if (r->kind == REPLY_KIND_REDIRECT) {
        on_redirect(w, c, &op, r, now);
        return;
    }
    if (r->kind == REPLY_KIND_ERROR) {
        on_error_reply(w, c, &op, r, now);
        return;
    }
    if (!reply_fits((enum op_kind)op.kind, r->kind)) {
        /* A write answered with something else than OK: its outcome is unknown. */
        finish_op(w, c, &op, now, OUTCOME_UNKNOWN, LG_ERR_BAD_REPLY, NULL, 0, false);
        return;
    }
    c->redirect_streak = 0;
    c->error_streak = 0;
    c->backoff_us = 0;
    if (op.kind != OP_KIND_READ) {
        run_confirm_leader(w->run, c->node, now);
    }
    if (op.kind == OP_KIND_READ && r->kind == REPLY_KIND_VALUE) {
        finish_read_value(w, c, &op, r, now);
    } else {
        finish_op(w, c, &op, now, OUTCOME_OK, LG_ERR_COUNT, NULL, 0, false);
    }
}

static void conn_readable(struct lg_worker *w, struct lg_conn *c, uint64_t now)
{
    if (c->in_len == c->in_cap) {
        conn_fail(w, c, LG_ERR_BAD_REPLY, now); /* a reply larger than any we expect */
        return;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        conn_fail(w, c, LG_ERR_CONN_LOST, now);
        return;
    }
    c->in_len += (size_t)n;
    size_t pos = 0;
    while (pos < c->in_len) {
        struct reply r;
        long used = proto_parse(w->run->opt->protocol, c->in + pos, c->in_len - pos, &r);
        if (used == 0) {
            break;
        }
        if (used < 0 || c->inflight.count == 0) {
            conn_fail(w, c, LG_ERR_BAD_REPLY, now);
            return;
        }
        on_reply(w, c, &r, now);
        pos += (size_t)used;
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    if (c->move_to >= 0 && c->inflight.count == 0) {
        conn_move(c, now);
        return;
    }
    conn_fill(w, c, now);
    conn_flush(w, c, now);
}

static void conn_connected(struct lg_worker *w, struct lg_conn *c, uint64_t now)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        connect_failed(w, c, now);
        return;
    }
    set_events(w, c, EPOLLIN, EPOLL_CTL_MOD);
    conn_ready(w, c);
}

static void handle_event(struct lg_worker *w, struct lg_conn *c, uint32_t events, uint64_t now)
{
    switch (c->state) {
    case LG_CONN_DOWN:
        return; /* closed earlier in this batch */
    case LG_CONN_CONNECTING:
        conn_connected(w, c, now);
        return;
    case LG_CONN_READY:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            conn_readable(w, c, now);
        }
        if (c->state == LG_CONN_READY && (events & EPOLLOUT)) {
            conn_flush(w, c, now);
        }
        return;
    }
    TOOL_UNREACHABLE();
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Every SCAN_INTERVAL_US: time out stuck requests and connects, reconnect DOWN connections,
 * resume paused ones. */
static void scan_conns(struct lg_worker *w, uint64_t now, bool issuing)
{
    const struct lg_options *opt = w->run->opt;
    for (uint32_t i = 0; i < w->conn_count; i++) {
        struct lg_conn *c = &w->conns[i];
        switch (c->state) {
        case LG_CONN_DOWN:
            if (issuing && now >= c->retry_at_us) {
                conn_connect(w, c, now);
            }
            break;
        case LG_CONN_CONNECTING:
            if (now - c->connect_started_us > opt->timeout_us) {
                connect_failed(w, c, now);
            }
            break;
        case LG_CONN_READY:
            if (c->inflight.count > 0 &&
                now - c->inflight.ops[c->inflight.head].invoke_us > opt->timeout_us) {
                conn_fail(w, c, LG_ERR_TIMEOUT, now);
            } else if (c->move_to >= 0 && c->inflight.count == 0) {
                conn_move(c, now);
            } else if (issuing && c->pause_until_us != 0 && now >= c->pause_until_us) {
                c->pause_until_us = 0;
                conn_fill(w, c, now);
                conn_flush(w, c, now);
            }
            break;
        }
    }
}

static void advance_seconds(struct lg_worker *w, uint64_t now)
{
    uint64_t elapsed = now - w->run->start_us;
    while (elapsed / 1000000u > w->second) {
        run_flush_second(w->run, w, 1000000u);
        w->second++;
    }
}

static bool all_idle(const struct lg_worker *w)
{
    for (uint32_t i = 0; i < w->conn_count; i++) {
        if (w->conns[i].inflight.count > 0) {
            return false;
        }
    }
    return true;
}

/* Nanoseconds to sleep in epoll: until the next scan, second boundary or scheduled send. */
static uint64_t wait_ns(const struct lg_worker *w, uint64_t now, bool issuing)
{
    const struct lg_run *run = w->run;
    uint64_t until = w->next_timeout_scan_us;
    uint64_t next_second = run->start_us + (w->second + 1) * 1000000u;
    until = next_second < until ? next_second : until;
    if (issuing && w->op_interval_us > 0) {
        uint64_t next_op = run->start_us + (uint64_t)((double)w->scheduled * w->op_interval_us);
        until = next_op < until ? next_op : until;
    }
    return until > now ? (until - now) * 1000u : 0;
}

static int wait_events(struct lg_worker *w, struct epoll_event *events, uint64_t timeout_ns)
{
#ifdef LG_HAVE_EPOLL_PWAIT2
    static _Atomic bool pwait2_missing;
    if (!atomic_load_explicit(&pwait2_missing, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                              .tv_nsec = (long)(timeout_ns % 1000000000u)};
        int n = epoll_pwait2(w->epfd, events, EVENTS_MAX, &ts, NULL);
        if (n >= 0 || errno != ENOSYS) {
            return n;
        }
        atomic_store_explicit(&pwait2_missing, true, memory_order_relaxed);
    }
#endif
    int ms = (int)((timeout_ns + 999999u) / 1000000u);
    return epoll_wait(w->epfd, events, EVENTS_MAX, ms);
}

/* Stop issuing, wait for replies up to --timeout, then give up on what is still in flight. */
static bool drain_done(struct lg_worker *w, uint64_t now, uint64_t *deadline)
{
    if (*deadline == 0) {
        *deadline = now + w->run->opt->timeout_us;
    }
    if (all_idle(w)) {
        return true;
    }
    if (now < *deadline) {
        return false;
    }
    for (uint32_t i = 0; i < w->conn_count; i++) {
        struct lg_conn *c = &w->conns[i];
        if (c->state != LG_CONN_DOWN) {
            fail_inflight(w, c, LG_ERR_TIMEOUT, now);
            close_fd(c);
        }
    }
    return true;
}

void *worker_main(void *arg)
{
    struct lg_worker *w = arg;
    struct lg_run *run = w->run;
    struct epoll_event events[EVENTS_MAX];
    uint64_t drain_deadline = 0;
    for (;;) {
        uint64_t now = tool_now_us();
        advance_seconds(w, now);
        bool issuing = !stopping(w, now);
        if (!issuing && drain_done(w, now, &drain_deadline)) {
            break;
        }
        if (now >= w->next_timeout_scan_us) {
            scan_conns(w, now, issuing);
            w->next_timeout_scan_us = now + SCAN_INTERVAL_US;
        }
        if (issuing && w->op_interval_us > 0) {
            dispatch_scheduled(w, now);
        }
        int n = wait_events(w, events, wait_ns(w, now, issuing));
        if (n < 0 && errno != EINTR) {
            tool_die(1, "epoll_wait: %s", strerror(errno));
        }
        now = tool_now_us();
        for (int i = 0; i < n; i++) {
            handle_event(w, events[i].data.ptr, events[i].events, now);
        }
    }
    uint64_t now = tool_now_us();
    for (uint32_t i = 0; i < w->conn_count; i++) {
        /* A connect still pending when the run ends failed to connect in time. */
        if (w->conns[i].state == LG_CONN_CONNECTING) {
            connect_failed(w, &w->conns[i], now);
        }
    }
    uint64_t elapsed = now - run->start_us;
    advance_seconds(w, now);
    run_flush_second(run, w, elapsed - w->second * 1000000u);
    if (w->hbuf != NULL) {
        history_flush(w);
    }
    run_worker_done(run, w);
    return NULL;
}
