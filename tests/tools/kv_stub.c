/* SPDX-License-Identifier: MIT */
/* kv-stub: a stand-in for yggr-kv used to test loadgen, lincheck and yggr-cluster before the
 * real server exists. It speaks the same client protocols on the same port (first byte '*'
 * selects RESP, anything else the reference kv line protocol) and accepts the reference kv
 * flags, so tools that work against it work unchanged against yggr-kv.
 *
 * Node mode (what yggr-cluster starts): --node-id N --peer-addr H:P --client-addr H:P
 *   --data-dir D --peer ID=H:P...  One process per node. The peer port answers "PING\n" with
 *   "PONG <id>\n"; every 100 ms each node pings its peers and takes the lowest id that
 *   answered within 300 ms (or itself) as leader. Followers answer writes with
 *   "REDIRECT node:<leader>" and serve reads from their own (empty) map, like the reference.
 *   term = boots of this data dir (stored in D/stub-term) + leader changes seen.
 * Cluster mode (what loadgen tests use): --cluster H:P,H:P,...  One process serves every
 *   node's client port over one shared map, so a correct run is linearizable. Non-leaders
 *   redirect reads and writes. Faults (probabilities 0..1) make it misbehave on purpose:
 *   --leader-change-ms, --close-on-change, --fault-unknown (reply "outcome unknown", applied
 *   or not), --fault-drop (close without reply, applied or not), --fault-lose (OK without
 *   applying), --fault-stale (answer a read from a 50 ms old copy), --fault-duplicate
 *   (apply a write again 20 ms later).
 * INFO (RESP) answers a bulk string with role:, term:, commit:, leader:, applied:, node_id:. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NODES_MAX      16
#define ARGS_MAX       8
#define LINE_MAX_BYTES (4u << 20)
#define PROBE_EVERY_US 100000u
#define ALIVE_FOR_US   300000u
#define DELAYED_MAX    4096

/* ---- small helpers --------------------------------------------------------------------- */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kv-stub: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rng_state = 42;

static double rng_unit(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void parse_addr(const char *text, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host) || colon == text) {
        die("bad address '%s' (want HOST:PORT)", text);
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
        die("cannot resolve '%s'", text);
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
}

static int listen_on(const char *text)
{
    struct sockaddr_storage sa;
    socklen_t len;
    parse_addr(text, &sa, &len);
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 1024) != 0) {
        die("cannot listen on %s: %s", text, strerror(errno));
    }
    return fd;
}

/* ---- the map ----------------------------------------------------------------------------- */

struct entry {
    char *key;
    char *value;
    struct entry *next;
};

struct kvmap {
    struct entry **buckets;
    size_t size;
    size_t count;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
    }
    return h;
}

static void map_init(struct kvmap *m)
{
    m->size = 1024;
    m->count = 0;
    m->buckets = calloc(m->size, sizeof(*m->buckets));
    if (m->buckets == NULL) {
        die("out of memory");
    }
}

static struct entry **map_slot(struct kvmap *m, const char *key, size_t klen)
{
    struct entry **p = &m->buckets[hash_bytes(key, klen) & (m->size - 1)];
    for (; *p != NULL; p = &(*p)->next) {
        if (strncmp((*p)->key, key, klen) == 0 && (*p)->key[klen] == '\0') {
            break;
        }
    }
    return p;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL) {
        die("out of memory");
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static const char *map_get(struct kvmap *m, const char *key, size_t klen)
{
    struct entry *e = *map_slot(m, key, klen);
    return e != NULL ? e->value : NULL;
}

static void map_grow(struct kvmap *m)
{
    size_t size = m->size * 4;
    struct entry **buckets = calloc(size, sizeof(*buckets));
    if (buckets == NULL) {
        die("out of memory");
    }
    for (size_t i = 0; i < m->size; i++) {
        while (m->buckets[i] != NULL) {
            struct entry *e = m->buckets[i];
            m->buckets[i] = e->next;
            size_t b = hash_bytes(e->key, strlen(e->key)) & (size - 1);
            e->next = buckets[b];
            buckets[b] = e;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->size = size;
}

static void map_set(struct kvmap *m, const char *key, size_t klen, const char *v, size_t vlen)
{
    if (m->count >= m->size) {
        map_grow(m);
    }
    struct entry **p = map_slot(m, key, klen);
    if (*p != NULL) {
        free((*p)->value);
        (*p)->value = dup_bytes(v, vlen);
        return;
    }
    struct entry *e = malloc(sizeof(*e));
    if (e == NULL) {
        die("out of memory");
    }
    e->key = dup_bytes(key, klen);
    e->value = dup_bytes(v, vlen);
    e->next = NULL;
    *p = e;
    m->count++;
}

/* Remove key; returns the old value (caller frees) or NULL. */
static char *map_del(struct kvmap *m, const char *key, size_t klen)
{
    struct entry **p = map_slot(m, key, klen);
    struct entry *e = *p;
    if (e == NULL) {
        return NULL;
    }
    *p = e->next;
    char *v = e->value;
    free(e->key);
    free(e);
    m->count--;
    return v;
}

static void map_clear(struct kvmap *m)
{
    for (size_t i = 0; i < m->size; i++) {
        while (m->buckets[i] != NULL) {
            struct entry *e = m->buckets[i];
            m->buckets[i] = e->next;
            free(e->key);
            free(e->value);
            free(e);
        }
    }
    m->count = 0;
}

static void map_copy(struct kvmap *dst, const struct kvmap *src)
{
    map_clear(dst);
    for (size_t i = 0; i < src->size; i++) {
        for (const struct entry *e = src->buckets[i]; e != NULL; e = e->next) {
            map_set(dst, e->key, strlen(e->key), e->value, strlen(e->value));
        }
    }
}

/* ---- server state -------------------------------------------------------------------- */

enum handle_kind { HANDLE_LISTEN, HANDLE_CONN, HANDLE_PROBE };
enum proto { PROTO_UNKNOWN, PROTO_LINE, PROTO_RESP };

struct listener {
    enum handle_kind kind; /* HANDLE_LISTEN */
    int fd;
    uint32_t node_index; /* which node's port (peer port: the node itself) */
};

struct conn {
    enum handle_kind kind; /* HANDLE_CONN */
    int fd;
    uint32_t node_index;
    enum proto proto;
    bool want_out;
    char *in;
    size_t in_len;
    size_t in_cap;
    char *out;
    size_t out_len;
    size_t out_cap;
    struct conn *prev;
    struct conn *next;
};

/* Node mode: an outgoing liveness probe to one peer. */
struct peer {
    enum handle_kind kind; /* HANDLE_PROBE */
    int fd;
    uint32_t id;
    struct sockaddr_storage sa;
    socklen_t sa_len;
    uint64_t started_us;
    uint64_t last_ok_us;
    char reply[64];
    size_t reply_len;
};

struct delayed {
    char *key;
    char *value;
    uint64_t at_us;
};

struct server {
    bool cluster;
    uint32_t node_ids[NODES_MAX];
    char client_addrs[NODES_MAX][128];
    uint32_t node_count;
    uint32_t self_index; /* node mode */
    uint32_t leader;     /* node id */
    uint64_t term;
    uint64_t commit;
    struct kvmap map;
    struct kvmap stale;
    uint64_t stale_at_us;
    struct listener listeners[NODES_MAX + 1];
    uint32_t listener_count;
    struct peer peers[NODES_MAX];
    uint32_t peer_count;
    uint64_t next_probe_us;
    uint64_t change_every_us;
    uint64_t next_change_us;
    bool close_on_change;
    double f_unknown, f_drop, f_lose, f_stale, f_dup;
    struct delayed delayed[DELAYED_MAX];
    uint32_t delayed_count;
    struct conn *conns;
    int epfd;
    const char *data_dir;
    uint64_t elect_after_us;
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void watch(struct server *s, int fd, void *handle, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = handle};
    if (epoll_ctl(s->epfd, op, fd, &ev) != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

/* ---- replies ------------------------------------------------------------------------------ */

static void out_append(struct conn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap == 0 ? 16384 : c->out_cap;
        while (cap < c->out_len + n) {
            cap *= 2;
        }
        c->out = realloc(c->out, cap);
        if (c->out == NULL) {
            die("out of memory");
        }
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void out_str(struct conn *c, const char *s)
{
    out_append(c, s, strlen(s));
}

static void out_fmt(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_fmt(struct conn *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    out_append(c, buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void reply_value(struct conn *c, const char *v)
{
    if (c->proto == PROTO_RESP) {
        if (v == NULL) {
            out_str(c, "$-1\r\n");
        } else {
            out_fmt(c, "$%zu\r\n", strlen(v));
            out_str(c, v);
            out_str(c, "\r\n");
        }
        return;
    }
    out_str(c, v == NULL ? "<nil>" : v);
    out_str(c, "\n");
}

static void reply_ok(struct conn *c)
{
    out_str(c, c->proto == PROTO_RESP ? "+OK\r\n" : "OK\n");
}

static void reply_redirect(struct conn *c, uint32_t leader)
{
    out_fmt(c, c->proto == PROTO_RESP ? "-REDIRECT node:%u\r\n" : "REDIRECT node:%u\n", leader);
}

static void reply_unknown_outcome(struct conn *c)
{
    out_str(c, c->proto == PROTO_RESP ? "-STEPPEDDOWN leader stepped down; outcome unknown\r\n"
                                      : "ERROR leader stepped down; outcome unknown\n");
}

static void reply_parse_error(struct conn *c, const char *why)
{
    out_fmt(c, c->proto == PROTO_RESP ? "-ERR %s\r\n" : "PARSE_ERROR %s\n", why);
}

static void reply_info(struct server *s, struct conn *c)
{
    uint32_t id = s->node_ids[c->node_index];
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "# yggr\r\nrole:%s\r\nterm:%llu\r\ncommit:%llu\r\nleader:%u\r\napplied:%llu\r\n"
                     "node_id:%u\r\n",
                     id == s->leader ? "leader" : "follower", (unsigned long long)s->term,
                     (unsigned long long)s->commit, s->leader, (unsigned long long)s->commit, id);
    if (c->proto == PROTO_RESP) {
        out_fmt(c, "$%d\r\n", n);
        out_append(c, body, (size_t)n);
        out_str(c, "\r\n");
    } else {
        for (char *p = body; *p != '\0'; p++) {
            *p = *p == '\r' ? ' ' : *p == '\n' ? ' ' : *p;
        }
        out_str(c, body);
        out_str(c, "\n");
    }
}

/* ---- commands ------------------------------------------------------------------------------ */

struct request {
    int argc;
    const char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
};

static bool arg_is(const struct request *r, int i, const char *word)
{
    return i < r->argc && r->len[i] == strlen(word) && strncasecmp(r->argv[i], word, r->len[i]) == 0;
}

/* Leader-side write with the configured faults. Returns false when the connection must be
 * dropped without a reply. */
static bool do_write(struct server *s, struct conn *c, const struct request *r, bool del)
{
    double x = rng_unit();
    bool apply = true;
    bool reply = true;
    bool unknown = false;
    if (x < s->f_drop) {
        apply = rng_unit() < 0.5;
        reply = false;
    } else if ((x -= s->f_drop) < s->f_unknown) {
        apply = rng_unit() < 0.5;
        unknown = true;
    } else if ((x -= s->f_unknown) < s->f_lose) {
        apply = false;
    }
    char *old = NULL;
    if (apply && del) {
        old = map_del(&s->map, r->argv[1], r->len[1]);
    } else if (apply) {
        map_set(&s->map, r->argv[1], r->len[1], r->argv[2], r->len[2]);
        if (rng_unit() < s->f_dup && s->delayed_count < DELAYED_MAX) {
            struct delayed *d = &s->delayed[s->delayed_count++];
            d->key = dup_bytes(r->argv[1], r->len[1]);
            d->value = dup_bytes(r->argv[2], r->len[2]);
            d->at_us = now_us() + 20000u;
        }
    }
    s->commit += apply ? 1u : 0u;
    if (!reply) {
        free(old);
        return false;
    }
    if (unknown) {
        reply_unknown_outcome(c);
    } else if (!del) {
        reply_ok(c);
    } else if (c->proto == PROTO_RESP) {
        out_fmt(c, ":%d\r\n", old != NULL ? 1 : 0);
    } else {
        reply_value(c, old);
    }
    free(old);
    return true;
}

static void do_read(struct server *s, struct conn *c, const struct request *r)
{
    struct kvmap *m = &s->map;
    if (s->cluster && rng_unit() < s->f_stale) {
        m = &s->stale;
    }
    reply_value(c, map_get(m, r->argv[1], r->len[1]));
}

/* Execute one request. Returns false when the connection must close now. */
static bool execute(struct server *s, struct conn *c, const struct request *r)
{
    uint32_t id = s->node_ids[c->node_index];
    bool leader = id == s->leader;
    bool write = arg_is(r, 0, "SET") || arg_is(r, 0, "DEL");
    if (arg_is(r, 0, "INFO")) {
        reply_info(s, c);
    } else if (arg_is(r, 0, "PING")) {
        c->proto == PROTO_RESP ? out_str(c, "+PONG\r\n") : out_fmt(c, "PONG %u\n", id);
    } else if (arg_is(r, 0, "COMMAND")) {
        out_str(c, "*0\r\n");
    } else if ((arg_is(r, 0, "SET") && r->argc != 3) ||
               ((arg_is(r, 0, "GET") || arg_is(r, 0, "DEL")) && r->argc != 2)) {
        reply_parse_error(c, "wrong number of arguments (SET <key> <value>, GET <key>, DEL <key>)");
    } else if (!write && !arg_is(r, 0, "GET")) {
        reply_parse_error(c, "unknown command");
    } else if (write && s->leader == 0) {
        out_str(c, c->proto == PROTO_RESP ? "-NOLEADER no leader known yet\r\n"
                                          : "ERROR no leader known yet\n");
    } else if (!leader && (write || s->cluster)) {
        reply_redirect(c, s->leader);
    } else if (write) {
        return do_write(s, c, r, arg_is(r, 0, "DEL"));
    } else {
        do_read(s, c, r);
    }
    return true;
}

/* Line protocol: "CMD key value-with-spaces\n". Returns bytes used, 0 = incomplete. */
static size_t parse_line(const char *p, size_t n, struct request *r)
{
    const char *nl = memchr(p, '\n', n);
    if (nl == NULL) {
        return 0;
    }
    size_t len = (size_t)(nl - p);
    size_t used = len + 1;
    if (len > 0 && p[len - 1] == '\r') {
        len--;
    }
    r->argc = 0;
    size_t i = 0;
    while (i < len && r->argc < 3) {
        while (i < len && p[i] == ' ') {
            i++;
        }
        if (i == len) {
            break;
        }
        size_t start = i;
        /* the third word is the rest of the line (values may contain spaces) */
        while (i < len && (p[i] != ' ' || r->argc == 2)) {
            i++;
        }
        r->argv[r->argc] = p + start;
        r->len[r->argc++] = i - start;
    }
    return used;
}

/* RESP: "*N\r\n" then N bulk strings. Returns bytes used, 0 = incomplete, -1 = malformed. */
static long parse_resp(const char *p, size_t n, struct request *r)
{
    const char *end = p + n;
    const char *q = p;
    char *stop = NULL;
    const char *nl = memchr(q, '\n', n);
    if (nl == NULL) {
        return 0;
    }
    long argc = strtol(q + 1, &stop, 10);
    if (argc < 1 || argc > ARGS_MAX || stop != nl - 1) {
        return -1;
    }
    q = nl + 1;
    for (long i = 0; i < argc; i++) {
        nl = q < end ? memchr(q, '\n', (size_t)(end - q)) : NULL;
        if (nl == NULL) {
            return 0;
        }
        long blen = strtol(q + 1, &stop, 10);
        if (*q != '$' || blen < 0 || stop != nl - 1) {
            return -1;
        }
        q = nl + 1;
        if (end - q < blen + 2) {
            return 0;
        }
        r->argv[i] = q;
        r->len[i] = (size_t)blen;
        q += blen + 2;
    }
    r->argc = (int)argc;
    return (long)(q - p);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_close(struct server *s, struct conn *c)
{
    close(c->fd);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c->in);
    free(c->out);
    free(c);
}

/* Send what is buffered. Returns false when the connection failed. */
static bool conn_flush(struct server *s, struct conn *c)
{
    size_t sent = 0;
    while (sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + sent, c->out_len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            return false;
        }
        sent += (size_t)n;
    }
    if (sent > 0) {
        memmove(c->out, c->out + sent, c->out_len - sent);
        c->out_len -= sent;
    }
    /* Backpressure: stop reading while replies are stuck. */
    if ((c->out_len > 0) != c->want_out) {
        c->want_out = c->out_len > 0;
        watch(s, c->fd, c, c->want_out ? EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
    }
    return true;
}

/* Run every complete request in the input buffer. Returns false to close. */
static bool conn_process(struct server *s, struct conn *c)
{
    size_t pos = 0;
    while (pos < c->in_len) {
        if (c->proto == PROTO_UNKNOWN) {
            c->proto = c->in[pos] == '*' ? PROTO_RESP : PROTO_LINE;
        }
        struct request r = {0};
        long used = c->proto == PROTO_RESP
                        ? parse_resp(c->in + pos, c->in_len - pos, &r)
                        : (long)parse_line(c->in + pos, c->in_len - pos, &r);
        if (used < 0) {
            return false;
        }
        if (used == 0) {
            break;
        }
        pos += (size_t)used;
        if (r.argc == 0) {
            continue;
        }
        if (!execute(s, c, &r)) {
            return false;
        }
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    return c->in_len < LINE_MAX_BYTES;
}

static void conn_readable(struct server *s, struct conn *c)
{
    if (c->in_cap - c->in_len < 4096) {
        c->in_cap = c->in_cap == 0 ? 65536 : c->in_cap * 2;
        c->in = realloc(c->in, c->in_cap);
        if (c->in == NULL) {
            die("out of memory");
        }
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        conn_close(s, c);
        return;
    }
    c->in_len += (size_t)n;
    if (!conn_process(s, c) || !conn_flush(s, c)) {
        conn_close(s, c);
    }
}

static void accept_all(struct server *s, struct listener *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            die("out of memory");
        }
        c->kind = HANDLE_CONN;
        c->fd = fd;
        c->node_index = l->node_index;
        c->next = s->conns;
        if (s->conns != NULL) {
            s->conns->prev = c;
        }
        s->conns = c;
        watch(s, fd, c, EPOLLIN, EPOLL_CTL_ADD);
    }
}

/* ---- node mode: peer liveness ------------------------------------------------------------ */

static void probe_end(struct peer *p, bool ok)
{
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    if (ok) {
        p->last_ok_us = now_us();
    }
}

static void probe_start(struct server *s, struct peer *p, uint64_t now)
{
    p->fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    p->started_us = now;
    p->reply_len = 0;
    if (p->fd < 0) {
        return;
    }
    if (connect(p->fd, (struct sockaddr *)&p->sa, p->sa_len) != 0 && errno != EINPROGRESS) {
        probe_end(p, false);
        return;
    }
    watch(s, p->fd, p, EPOLLOUT, EPOLL_CTL_ADD);
}

static void probe_event(struct server *s, struct peer *p, uint32_t events)
{
    if (events & EPOLLOUT) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || send(p->fd, "PING\n", 5, MSG_NOSIGNAL) != 5) {
            probe_end(p, false);
            return;
        }
        watch(s, p->fd, p, EPOLLIN, EPOLL_CTL_MOD);
        return;
    }
    ssize_t n = read(p->fd, p->reply + p->reply_len, sizeof(p->reply) - 1 - p->reply_len);
    if (n <= 0) {
        probe_end(p, false);
        return;
    }
    p->reply_len += (size_t)n;
    if (memchr(p->reply, '\n', p->reply_len) != NULL) {
        probe_end(p, strncmp(p->reply, "PONG", 4) == 0);
    }
}

static void elect(struct server *s, uint64_t now)
{
    uint32_t leader = s->node_ids[s->self_index];
    if (now < s->elect_after_us) {
        leader = 0; /* first probe round still running: no leader known yet */
    }
    for (uint32_t i = 0; i < s->peer_count; i++) {
        struct peer *p = &s->peers[i];
        if (p->fd >= 0 && now - p->started_us > ALIVE_FOR_US) {
            probe_end(p, false);
        }
        if (p->fd < 0 && now >= s->next_probe_us) {
            probe_start(s, p, now);
        }
        bool alive = p->last_ok_us != 0 && now - p->last_ok_us < ALIVE_FOR_US;
        if (alive && leader != 0 && p->id < leader) {
            leader = p->id;
        }
    }
    if (now >= s->next_probe_us) {
        s->next_probe_us = now + PROBE_EVERY_US;
    }
    if (leader != s->leader) {
        s->leader = leader;
        s->term++;
        fprintf(stderr, "kv-stub node %u: leader is now node %u (term %llu)\n",
                s->node_ids[s->self_index], leader, (unsigned long long)s->term);
    }
}

/* ---- cluster mode: leader rotation and faults ------------------------------------------- */

static void rotate_leader(struct server *s)
{
    uint32_t old = s->leader;
    uint32_t index = 0;
    while (s->node_ids[index] != old) {
        index++;
    }
    s->leader = s->node_ids[(index + 1) % s->node_count];
    s->term++;
    if (!s->close_on_change) {
        return;
    }
    /* The old leader "crashes" its client connections: requests in flight get no reply. */
    struct conn *c = s->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        if (s->node_ids[c->node_index] == old) {
            conn_close(s, c);
        }
        c = next;
    }
}

static void cluster_timers(struct server *s, uint64_t now)
{
    if (s->change_every_us > 0 && now >= s->next_change_us) {
        rotate_leader(s);
        s->next_change_us = now + s->change_every_us;
    }
    if (s->f_stale > 0 && now - s->stale_at_us > 50000u) {
        map_copy(&s->stale, &s->map);
        s->stale_at_us = now;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->delayed_count; i++) {
        struct delayed *d = &s->delayed[i];
        if (now < d->at_us) {
            s->delayed[kept++] = *d;
            continue;
        }
        map_set(&s->map, d->key, strlen(d->key), d->value, strlen(d->value));
        free(d->key);
        free(d->value);
    }
    s->delayed_count = kept;
}

static void serve(struct server *s)
{
    struct epoll_event events[256];
    while (!stop_requested) {
        int n = epoll_wait(s->epfd, events, 256, 10);
        for (int i = 0; i < n; i++) {
            enum handle_kind *kind = events[i].data.ptr;
            if (*kind == HANDLE_LISTEN) {
                accept_all(s, events[i].data.ptr);
            } else if (*kind == HANDLE_PROBE) {
                probe_event(s, events[i].data.ptr, events[i].events);
            } else {
                struct conn *c = events[i].data.ptr;
                if (events[i].events & EPOLLOUT) {
                    if (!conn_flush(s, c)) {
                        conn_close(s, c);
                    }
                } else {
                    conn_readable(s, c);
                }
            }
        }
        uint64_t now = now_us();
        if (s->cluster) {
            cluster_timers(s, now);
        } else {
            elect(s, now);
        }
    }
}

/* ---- setup ------------------------------------------------------------------------------------ */

static const char usage_text[] =
    "usage: kv-stub --node-id N --peer-addr H:P --client-addr H:P --data-dir D [--peer ID=H:P]...\n"
    "       kv-stub --cluster H:P,H:P,... [--leader ID] [--leader-change-ms MS]\n"
    "               [--close-on-change] [--fault-unknown P] [--fault-drop P] [--fault-lose P]\n"
    "               [--fault-stale P] [--fault-duplicate P] [--seed N]\n"
    "Test stand-in for yggr-kv (see the comment at the top of tests/tools/kv_stub.c).\n";

static double parse_prob(const char *flag, const char *v)
{
    char *end = NULL;
    double p = strtod(v, &end);
    if (end == v || *end != '\0' || p < 0 || p > 1) {
        die("%s wants a probability in 0..1, not '%s'", flag, v);
    }
    return p;
}

static uint32_t parse_u32(const char *flag, const char *v)
{
    char *end = NULL;
    unsigned long x = strtoul(v, &end, 10);
    if (end == v || *end != '\0' || x > UINT32_MAX) {
        die("%s wants a non-negative integer, not '%s'", flag, v);
    }
    return (uint32_t)x;
}

static void add_listener(struct server *s, const char *addr, uint32_t node_index)
{
    struct listener *l = &s->listeners[s->listener_count++];
    l->kind = HANDLE_LISTEN;
    l->fd = listen_on(addr);
    l->node_index = node_index;
    watch(s, l->fd, l, EPOLLIN, EPOLL_CTL_ADD);
}

static void add_peer(struct server *s, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (eq == NULL || s->peer_count == NODES_MAX) {
        die("--peer wants ID=HOST:PORT, not '%s'", spec);
    }
    char id[32];
    snprintf(id, sizeof(id), "%.*s", (int)(eq - spec), spec);
    struct peer *p = &s->peers[s->peer_count++];
    p->kind = HANDLE_PROBE;
    p->fd = -1;
    p->id = parse_u32("--peer", id);
    parse_addr(eq + 1, &p->sa, &p->sa_len);
}

/* term = number of boots of this data dir (so a restart shows a new term). */
static void load_term(struct server *s)
{
    char path[4096];
    if (mkdir(s->data_dir, 0755) != 0 && errno != EEXIST) {
        die("cannot create --data-dir %s: %s", s->data_dir, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/stub-term", s->data_dir);
    unsigned long long boots = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%llu", &boots) != 1) {
            boots = 0;
        }
        fclose(f);
    }
    s->term = boots + 1;
    f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%llu\n", (unsigned long long)s->term) < 0 || fclose(f) != 0) {
        die("cannot write %s: %s", path, strerror(errno));
    }
}

static void setup_cluster(struct server *s, const char *list, uint32_t leader)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", list);
    s->cluster = true;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (s->node_count == NODES_MAX) {
            die("--cluster: at most %d nodes", NODES_MAX);
        }
        s->node_ids[s->node_count] = s->node_count + 1;
        snprintf(s->client_addrs[s->node_count], 128, "%s", tok);
        add_listener(s, tok, s->node_count);
        s->node_count++;
    }
    if (leader < 1 || leader > s->node_count) {
        die("--leader must name one of the %u nodes", s->node_count);
    }
    s->leader = leader;
    s->term = 1;
    s->next_change_us = now_us() + s->change_every_us;
    fprintf(stderr, "kv-stub: cluster of %u nodes in one process, leader %u\n", s->node_count,
            leader);
}

struct node_flags {
    const char *node_id, *peer_addr, *client_addr, *data_dir, *cluster;
    uint32_t leader;
};

/* One flag with its value; returns false for an unknown flag. */
static bool take_flag(struct server *s, struct node_flags *nf, const char *flag, const char *v)
{
    static const char *const names[] = {"--node-id", "--peer-addr", "--client-addr",
                                        "--data-dir", "--cluster"};
    const char **slots[] = {&nf->node_id, &nf->peer_addr, &nf->client_addr, &nf->data_dir,
                            &nf->cluster};
    for (int i = 0; i < 5; i++) {
        if (strcmp(flag, names[i]) == 0) {
            *slots[i] = v;
            return true;
        }
    }
    if (strcmp(flag, "--peer") == 0) {
        add_peer(s, v);
    } else if (strcmp(flag, "--leader") == 0) {
        nf->leader = parse_u32(flag, v);
    } else if (strcmp(flag, "--leader-change-ms") == 0) {
        s->change_every_us = (uint64_t)parse_u32(flag, v) * 1000u;
    } else if (strcmp(flag, "--fault-unknown") == 0) {
        s->f_unknown = parse_prob(flag, v);
    } else if (strcmp(flag, "--fault-drop") == 0) {
        s->f_drop = parse_prob(flag, v);
    } else if (strcmp(flag, "--fault-lose") == 0) {
        s->f_lose = parse_prob(flag, v);
    } else if (strcmp(flag, "--fault-stale") == 0) {
        s->f_stale = parse_prob(flag, v);
    } else if (strcmp(flag, "--fault-duplicate") == 0) {
        s->f_dup = parse_prob(flag, v);
    } else if (strcmp(flag, "--seed") == 0) {
        rng_state = parse_u32(flag, v);
    } else {
        return false;
    }
    return true;
}

static void parse_flags(struct server *s, int argc, char **argv, struct node_flags *nf)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--close-on-change") == 0) {
            s->close_on_change = true;
            continue;
        }
        if (i + 1 >= argc || !take_flag(s, nf, argv[i], argv[i + 1])) {
            fprintf(stderr, "%s", usage_text);
            die("unknown flag or missing value: %s", argv[i]);
        }
        i++;
    }
}

static void setup_node(struct server *s, const struct node_flags *nf)
{
    if (nf->node_id == NULL || nf->peer_addr == NULL || nf->client_addr == NULL ||
        nf->data_dir == NULL) {
        fprintf(stderr, "%s", usage_text);
        die("node mode needs --node-id, --peer-addr, --client-addr and --data-dir");
    }
    s->node_ids[0] = parse_u32("--node-id", nf->node_id);
    if (s->node_ids[0] == 0) {
        die("--node-id must be non-zero");
    }
    s->node_count = 1;
    s->data_dir = nf->data_dir;
    snprintf(s->client_addrs[0], 128, "%s", nf->client_addr);
    load_term(s);
    add_listener(s, nf->client_addr, 0);
    add_listener(s, nf->peer_addr, 0);
    s->elect_after_us = now_us() + 2 * PROBE_EVERY_US;
    fprintf(stderr, "kv-stub node %u: client %s, peer port %s, %u peers, data %s, term %llu\n",
            s->node_ids[0], nf->client_addr, nf->peer_addr, s->peer_count, nf->data_dir,
            (unsigned long long)s->term);
}

int main(int argc, char **argv)
{
    static struct server s;
    struct node_flags nf = {.leader = 1};
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0) {
        die("epoll_create1: %s", strerror(errno));
    }
    map_init(&s.map);
    map_init(&s.stale);
    parse_flags(&s, argc, argv, &nf);
    if (nf.cluster != NULL) {
        setup_cluster(&s, nf.cluster, nf.leader);
    } else {
        setup_node(&s, &nf);
    }
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    serve(&s);
    fprintf(stderr, "kv-stub: stopping (signal)\n");
    return 0;
}
