/* SPDX-License-Identifier: MIT */
/* transport/: authenticated peers over real sockets on 127.0.0.1 (suite io). Attackers are
 * raw sockets speaking the handshake as docs/wire.md describes it (their own HMAC code,
 * not auth.c); each attack runs ATTEMPTS times while a legitimate peer keeps exchanging
 * messages, and prints its figures. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "codec.h"
#include "tcp.h"
#include "tcp_harness.h"
#include "yggr/plugin.h"
#include "yggr_test.h"

#define SECRET "yggr test cluster secret 0123456789"
#define WRONG_SECRET "not the cluster secret, but long enough"
#define CLUSTER 0x5EC0DE5ull
#define ATTACK_TERM 666u       /* every message an attacker sends carries this term */
#define ATTEMPTS 100

enum { HELLO = 68, CHALLENGE = 92, PROOF = 44, SIGNED = 60 };

/* ---------------------------------------------------------------------------------------
 * The handshake from docs/wire.md, written independently of transport/auth.c
 * ------------------------------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void hmac_cat(const void *key, size_t key_len, const void *a, size_t a_len,
                     const void *b, size_t b_len, uint8_t out[32])
{
    uint8_t msg[256];
    unsigned len = 0;
    cr_assert(le(sz, a_len + b_len, sizeof(msg)));
    memcpy(msg, a, a_len);
    memcpy(msg + a_len, b, b_len);
    cr_assert_not_null(HMAC(EVP_sha256(), key, (int)key_len, msg, a_len + b_len, out, &len));
}

/* K = HMAC-SHA256(secret, "yggr-key" || cluster_id) */
static void wire_key(const char *secret, uint64_t cluster, uint8_t key[32])
{
    uint8_t c[8];
    put64(c, cluster);
    hmac_cat(secret, strlen(secret), "yggr-key", 8, c, 8, key);
}

static void header(uint8_t *p, uint8_t type)
{
    memcpy(p, "YGGRAUTH", 8);
    p[8] = 0;
    p[9] = 1;
    p[10] = type;
    p[11] = 0;
}

static void hello_make(uint8_t out[HELLO], uint64_t cluster, uint64_t claimed, uint64_t target)
{
    header(out, 1);
    put64(out + 12, cluster);
    put64(out + 20, claimed);
    put64(out + 28, target);
    cr_assert(eq(int, RAND_bytes(out + 36, 32), 1));
}

/* HMAC(K, label || HELLO || CHALLENGE[0..60)) */
static void transcript_mac(const uint8_t key[32], const char *label, const uint8_t *hello,
                           const uint8_t *chal, uint8_t out[32])
{
    uint8_t t[HELLO + SIGNED];
    memcpy(t, hello, HELLO);
    memcpy(t + HELLO, chal, SIGNED);
    hmac_cat(key, 32, label, 16, t, sizeof(t), out);
}

static void proof_make(const uint8_t key[32], const uint8_t *hello, const uint8_t *chal,
                       uint8_t out[PROOF])
{
    header(out, 3);
    transcript_mac(key, "yggr-auth-client", hello, chal, out + 12);
}

static bool challenge_ok(const uint8_t key[32], const uint8_t *hello, const uint8_t *chal)
{
    uint8_t want[32];
    transcript_mac(key, "yggr-auth-server", hello, chal, want);
    return memcmp(want, chal + SIGNED, 32) == 0;
}

/* A CHALLENGE from `listener` for `hello`, signed with `key`. */
static void challenge_make(const uint8_t key[32], const uint8_t *hello, uint64_t listener,
                           uint8_t out[CHALLENGE])
{
    header(out, 2);
    memcpy(out + 12, hello + 12, 8); /* the dialer's cluster id */
    put64(out + 20, listener);
    cr_assert(eq(int, RAND_bytes(out + 28, 32), 1));
    transcript_mac(key, "yggr-auth-server", hello, out, out + SIGNED);
}

/* ---------------------------------------------------------------------------------------
 * Raw sockets
 * ------------------------------------------------------------------------------------- */

/* Receive exactly `n` bytes within the timeout; the count received (< n: EOF, reset or
 * timeout). */
static size_t recv_exact(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (got < n && now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) != 1) {
            continue;
        }
        ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            break;
        }
        got += r > 0 ? (size_t)r : 0;
    }
    return got;
}

/* Send what the peer takes; an attacker does not care that the server already closed. */
static size_t send_any(int fd, const void *data, size_t len)
{
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0;
}

/* Three heartbeats from `sender` to node 2, marked with ATTACK_TERM. */
static size_t attack_frames(uint64_t sender, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (uint64_t i = 0; i < 3; i++) {
        struct yggr_msg m = heartbeat(sender, 2, 100 + i);
        m.term = ATTACK_TERM;
        m.as.append.leader_id = sender;
        n += frame_of(sender, &m, out + n, cap - n);
    }
    return n;
}

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0));
    cr_assert(eq(int, listen(fd, 16), 0));
    socklen_t sl = sizeof(sa);
    cr_assert(eq(int, getsockname(fd, (struct sockaddr *)&sa, &sl), 0));
    *port = ntohs(sa.sin_port);
    return fd;
}

static int accept_within(int lfd, int timeout_ms)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    cr_assert(eq(int, poll(&p, 1, timeout_ms), 1), "nobody dialled");
    int fd = accept(lfd, NULL, NULL);
    cr_assert(ge(int, fd, 0));
    return fd;
}

/* ---------------------------------------------------------------------------------------
 * Fixture: b (2) is attacked; a (1) is its legitimate peer; 3 is a member of b's peer map
 * whose process is not running (so every message "from 3" is an attacker's).
 * ------------------------------------------------------------------------------------- */

struct authed {
    struct node a, b;
};

static void open_member(struct node *n, uint64_t id, const char *secret)
{
    struct node_opts o = {.secret = secret, .cluster_id = CLUSTER};
    node_open_opts(n, id, &o);
}

static void authed_setup(struct authed *h)
{
    open_member(&h->a, 1, SECRET);
    open_member(&h->b, 2, SECRET);
    knows(&h->a, &h->b);
    knows(&h->b, &h->a);
    cr_assert(eq(int, h->b.ops->set_peer(h->b.t, 3, "127.0.0.1:1"), 0)); /* nobody there */
    cr_assert(heartbeat_until_received(&h->a, &h->b, 5000), "a never reached b");
    cr_assert(heartbeat_until_received(&h->b, &h->a, 5000), "b never reached a");
}

static void authed_teardown(struct authed *h)
{
    node_close(&h->a);
    node_close(&h->b);
}

static size_t count_from(struct node *rx, uint64_t from, size_t first)
{
    size_t n = 0;
    for (size_t i = first; i < rx->count; i++) {
        struct rec r;
        decode_got(&rx->inbox[i], &r);
        n += rx->inbox[i].from == from && r.msg.term != ATTACK_TERM;
    }
    return n;
}

/* Messages an attacker got through to b's driver since `first`: any with the attack term,
 * and any from 3 (not running). */
static size_t count_attacker(struct node *rx, size_t first)
{
    size_t n = 0;
    for (size_t i = first; i < rx->count; i++) {
        struct rec r;
        decode_got(&rx->inbox[i], &r);
        n += r.msg.term == ATTACK_TERM || rx->inbox[i].from == 3;
    }
    return n;
}

/* Handshake failures b counted: unknown bucket and the two ids attackers claim. */
static uint64_t failures(struct node *b)
{
    return metrics(b, 0).decode_errors + metrics(b, 1).decode_errors +
           metrics(b, 3).decode_errors;
}

/* One round of legitimate traffic both ways. */
static void exchange_step(struct authed *h, uint64_t i)
{
    struct yggr_msg ab = heartbeat(1, 2, 1000 + i), ba = heartbeat(2, 1, 1000 + i);
    cr_assert(eq(int, h->a.ops->send(h->a.t, &ab), 0));
    cr_assert(eq(int, h->b.ops->send(h->b.t, &ba), 0));
    h->a.ops->flush(h->a.t);
    h->b.ops->flush(h->b.t);
    drain(&h->a);
    drain(&h->b);
}

struct figures {
    int attempts, rejected, challenged;
};

typedef bool (*attack_fn)(struct authed *h, int attempt, struct figures *f);

static void run_attack(struct authed *h, const char *name, attack_fn attack)
{
    struct figures f = {0};
    size_t first_b = h->b.count, first_a = h->a.count;
    uint64_t counted_before = failures(&h->b);
    int logged_before = atomic_load(&h->b.rejections_logged);
    for (int i = 0; i < ATTEMPTS; i++) {
        f.attempts++;
        f.rejected += attack(h, i, &f) ? 1 : 0;
        exchange_step(h, (uint64_t)i);
    }
    uint64_t end = now_ms() + 5000;
    while ((count_from(&h->b, 1, first_b) < ATTEMPTS || count_from(&h->a, 2, first_a) < ATTEMPTS)
           && now_ms() < end) {
        exchange_step(h, 10000);
        sleep_ms(5);
    }
    sleep_ms(50); /* anything an attacker got through would have landed by now */
    drain(&h->b);
    size_t delivered = count_attacker(&h->b, first_b);
    size_t legit_ab = count_from(&h->b, 1, first_b), legit_ba = count_from(&h->a, 2, first_a);
    uint64_t counted = failures(&h->b) - counted_before;
    int logged = atomic_load(&h->b.rejections_logged) - logged_before;
    printf("auth attack %-32s attempts %3d  rejected %3d  got a CHALLENGE %3d  messages "
           "delivered from attacker %zu  | b counted %llu failures, logged %d lines | legit "
           "a->b %zu b->a %zu\n",
           name, f.attempts, f.rejected, f.challenged, delivered, (unsigned long long)counted,
           logged, legit_ab, legit_ba);
    fflush(stdout);
    cr_expect(eq(int, f.rejected, ATTEMPTS), "%s: every attempt closed", name);
    cr_expect(eq(sz, delivered, 0), "%s: nothing reached the driver", name);
    cr_expect(ge(u64, counted, (uint64_t)ATTEMPTS), "%s: every failure counted", name);
    cr_expect(ge(int, logged, 1), "%s: logged", name);
    cr_expect(ge(sz, legit_ab, (size_t)ATTEMPTS), "%s: a kept reaching b", name);
    cr_expect(ge(sz, legit_ba, (size_t)ATTEMPTS), "%s: b kept reaching a", name);
}

/* HELLO claiming `claimed`; if a CHALLENGE comes back, a PROOF under `key` plus frames.
 * True when b closed the connection. */
static bool handshake_attempt(struct authed *h, const uint8_t key[32], uint64_t cluster,
                              uint64_t claimed, struct figures *f)
{
    uint8_t hello[HELLO], chal[CHALLENGE], proof[PROOF], frames[512];
    int fd = raw_connect(h->b.port);
    hello_make(hello, cluster, claimed, 2);
    send_any(fd, hello, sizeof(hello));
    if (recv_exact(fd, chal, sizeof(chal), 3000) == sizeof(chal)) {
        f->challenged++;
        proof_make(key, hello, chal, proof);
        send_any(fd, proof, sizeof(proof));
        send_any(fd, frames, attack_frames(claimed, frames, sizeof(frames)));
    }
    bool closed = raw_closed_by_peer(fd, 3000);
    close(fd);
    return closed;
}

/* ---------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------- */

Test(tcp_auth, three_transports_with_a_secret_exchange_every_message_type, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct node n[3];
    for (int i = 0; i < 3; i++) {
        open_member(&n[i], (uint64_t)i + 1, SECRET);
    }
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3; k++) {
            if (i != k) {
                knows(&n[i], &n[k]);
            }
        }
    }
    /* A node that dials before its peer knows it is refused at the HELLO (and what it
     * queued is dropped, as on any failed link); wait until every link authenticated. */
    uint64_t end = now_ms() + 5000;
    bool up = false;
    while (!up && now_ms() < end) {
        up = true;
        for (int i = 0; i < 9; i++) {
            up = up && (i / 3 == i % 3 || metrics(&n[i / 3], n[i % 3].id).connected);
        }
        sleep_ms(5);
    }
    cr_assert(up, "links not authenticated within 5 s");
    uint64_t errors_at_start[3][4]; /* [node][peer id or 0]: from here on, no failure */
    for (int i = 0; i < 3; i++) {
        for (uint64_t id = 0; id <= 3; id++) {
            errors_at_start[i][id] = id == n[i].id ? 0 : metrics(&n[i], id).decode_errors;
        }
    }
    static struct corpus c[3];
    struct node *all[3] = {&n[0], &n[1], &n[2]};
    for (int i = 0; i < 3; i++) {
        corpus_build(&c[i], n[i].id, n[(i + 1) % 3].id);
        for (int k = 0; k < c[i].count; k++) {
            cr_assert(eq(int, n[i].ops->send(n[i].t, &c[i].msgs[k]), 0));
        }
        n[i].ops->flush(n[i].t);
    }
    for (int i = 0; i < 3; i++) {
        int to = (i + 1) % 3;
        cr_assert(wait_inbox(&n[to], (size_t)c[i].count, 10000, all, 3), "node %d got %zu", to,
                  n[to].count);
        expect_corpus(&n[to], 0, &c[i], n[i].id);
        struct yggr_peer_metrics pm = metrics(&n[i], n[to].id);
        cr_expect(pm.connected);
        cr_expect(eq(u64, pm.send_drops, 0));
        cr_expect(eq(u64, pm.decode_errors, errors_at_start[i][n[to].id]));
        cr_expect(eq(u64, metrics(&n[to], n[i].id).frames_in, (uint64_t)c[i].count));
    }
    for (int i = 0; i < 3; i++) {
        cr_expect(eq(u64, metrics(&n[i], 0).decode_errors, errors_at_start[i][0]));
        free(c[i].payload);
        node_close(&n[i]);
    }
}

static bool attack_wrong_cluster(struct authed *h, int attempt, struct figures *f)
{
    uint8_t key[32];
    (void)attempt;
    wire_key(SECRET, CLUSTER + 1, key); /* the right secret, another cluster */
    return handshake_attempt(h, key, CLUSTER + 1, 1, f);
}

Test(tcp_auth, wrong_cluster_id_is_rejected, .timeout = 60)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    run_attack(&h, "wrong cluster id", attack_wrong_cluster);
    cr_expect(node_logged(&h.b, "wrong cluster id"));
    authed_teardown(&h);
}

static bool attack_wrong_secret(struct authed *h, int attempt, struct figures *f)
{
    uint8_t key[32];
    wire_key(WRONG_SECRET, CLUSTER, key);
    return handshake_attempt(h, key, CLUSTER, attempt % 2 == 0 ? 1 : 3, f);
}

Test(tcp_auth, wrong_secret_is_rejected, .timeout = 60)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    run_attack(&h, "wrong secret", attack_wrong_secret);
    cr_expect(node_logged(&h.b, "PROOF does not verify"));
    authed_teardown(&h);
}

static bool attack_no_handshake(struct authed *h, int attempt, struct figures *f)
{
    uint8_t frames[512];
    (void)f;
    int fd = raw_connect(h->b.port);
    send_any(fd, frames, attack_frames(attempt % 2 == 0 ? 1 : 3, frames, sizeof(frames)));
    bool closed = raw_closed_by_peer(fd, 3000);
    close(fd);
    return closed;
}

Test(tcp_auth, raw_frames_without_a_handshake_are_rejected, .timeout = 60)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    run_attack(&h, "no handshake (raw frames)", attack_no_handshake);
    cr_expect(node_logged(&h.b, "sent Raft frames without a handshake"));
    authed_teardown(&h);
}

/* A man in the middle between a real dialer and b: relays both ways and records. */
struct relay {
    int lfd;
    uint16_t port, target_port;
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
    uint8_t up[16384];             /* dialer -> b, recorded */
    size_t up_len;
    uint8_t down[1024];            /* b -> dialer, recorded */
    size_t down_len;
};

static void relay_copy(struct relay *r, int from, int to, bool up, bool *done)
{
    uint8_t buf[4096];
    ssize_t n = recv(from, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) {
        *done = n == 0 || (errno != EAGAIN && errno != EINTR);
        return;
    }
    pthread_mutex_lock(&r->lock);
    uint8_t *rec = up ? r->up : r->down;
    size_t *len = up ? &r->up_len : &r->down_len;
    size_t cap = up ? sizeof(r->up) : sizeof(r->down);
    size_t keep = (size_t)n < cap - *len ? (size_t)n : cap - *len;
    memcpy(rec + *len, buf, keep);
    *len += keep;
    pthread_mutex_unlock(&r->lock);
    *done = send(to, buf, (size_t)n, MSG_NOSIGNAL) != n;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    int c = -1;
    while (c < 0 && !atomic_load(&r->stop)) {
        struct pollfd p = {.fd = r->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) == 1) {
            c = accept(r->lfd, NULL, NULL);
        }
    }
    if (c < 0) {
        return NULL;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(r->target_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool done = connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0;
    while (!done && !atomic_load(&r->stop)) {
        struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = s, .events = POLLIN}};
        if (poll(p, 2, 20) <= 0) {
            continue;
        }
        if (p[0].revents != 0) {
            relay_copy(r, c, s, true, &done);
        }
        if (!done && p[1].revents != 0) {
            relay_copy(r, s, c, false, &done);
        }
    }
    close(c);
    close(s);
    return NULL;
}

/* Record a real node 3's handshake and first frames to b, through the relay. */
static void record_real_dialer(struct authed *h, struct relay *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->lfd = listen_any(&r->port);
    r->target_port = h->b.port;
    cr_assert(eq(int, pthread_create(&r->thread, NULL, relay_main, r), 0));
    struct node c;
    open_member(&c, 3, SECRET);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", r->port);
    cr_assert(eq(int, c.ops->set_peer(c.t, 2, addr), 0));
    cr_assert(eq(int, h->b.ops->set_peer(h->b.t, 3, c.addr), 0));
    cr_assert(heartbeat_until_received(&c, &h->b, 5000), "3 did not get through the relay");
    cr_assert(eq(u64, h->b.inbox[h->b.count - 1].from, 3), "positive control: 3 is served");
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->lfd);
    node_close(&c); /* from now on, anything "from 3" is the attacker */
    cr_assert(eq(int, h->b.ops->set_peer(h->b.t, 3, "127.0.0.1:1"), 0));
    cr_assert(ge(sz, r->up_len, (size_t)HELLO + PROOF + CODEC_FRAME_HEADER_BYTES));
    cr_assert(eq(int, memcmp(r->up, "YGGRAUTH\0\1\1\0", 12), 0), "recorded a HELLO");
    cr_assert(eq(int, memcmp(r->up + HELLO, "YGGRAUTH\0\1\3\0", 12), 0), "recorded a PROOF");
    cr_assert(eq(u64, get64(r->up + HELLO + PROOF), 3), "then frames from 3");
    cr_assert(eq(sz, r->down_len, (size_t)CHALLENGE), "b sent one CHALLENGE, nothing else");
}

static struct relay recorded;

static bool attack_replay(struct authed *h, int attempt, struct figures *f)
{
    uint8_t chal[CHALLENGE];
    (void)attempt;
    int fd = raw_connect(h->b.port);
    send_any(fd, recorded.up, HELLO);
    if (recv_exact(fd, chal, sizeof(chal), 3000) == sizeof(chal)) {
        f->challenged++;
        cr_expect(ne(int, memcmp(chal + 28, recorded.down + 28, 32), 0), "nonce_s is fresh");
        /* The recorded PROOF and every frame the real node sent after it. */
        send_any(fd, recorded.up + HELLO, recorded.up_len - HELLO);
    }
    bool closed = raw_closed_by_peer(fd, 3000);
    close(fd);
    return closed;
}

Test(tcp_auth, replayed_handshake_is_rejected, .timeout = 60)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    record_real_dialer(&h, &recorded);
    printf("auth replay: recorded %zu bytes from the real node 3 (HELLO 68 + PROOF 44 + "
           "frames %zu)\n",
           recorded.up_len, recorded.up_len - HELLO - PROOF);
    run_attack(&h, "replayed HELLO+PROOF+frames", attack_replay);
    cr_expect(node_logged(&h.b, "PROOF does not verify"));
    authed_teardown(&h);
}

/* An honest node 3 dials b; a man in the middle rewrites the claimed id to 1 (a live
 * member) and forwards the PROOF node 3 computes. Node 3 itself would already refuse b's
 * CHALLENGE (checked); b must refuse the PROOF. */
static bool attack_spoofed_hello(struct authed *h, int attempt, struct figures *f)
{
    uint8_t key[32], honest[HELLO], sent[HELLO], chal[CHALLENGE], proof[PROOF], frames[512];
    (void)attempt;
    wire_key(SECRET, CLUSTER, key);
    hello_make(honest, CLUSTER, 3, 2);
    memcpy(sent, honest, HELLO);
    put64(sent + 20, 1);
    int fd = raw_connect(h->b.port);
    send_any(fd, sent, sizeof(sent));
    if (recv_exact(fd, chal, sizeof(chal), 3000) == sizeof(chal)) {
        f->challenged++;
        cr_expect(not(challenge_ok(key, honest, chal)), "the honest dialer detects the MITM");
        proof_make(key, honest, chal, proof);
        send_any(fd, proof, sizeof(proof));
        send_any(fd, frames, attack_frames(1, frames, sizeof(frames)));
    }
    bool closed = raw_closed_by_peer(fd, 3000);
    close(fd);
    return closed;
}

/* Authenticate for real as 3; returns the connected socket (the CHALLENGE verified). */
static int authenticate_as_3(struct authed *h)
{
    uint8_t key[32], hello[HELLO], chal[CHALLENGE], proof[PROOF];
    wire_key(SECRET, CLUSTER, key);
    hello_make(hello, CLUSTER, 3, 2);
    int fd = raw_connect(h->b.port);
    raw_send(fd, hello, sizeof(hello));
    cr_assert(eq(sz, recv_exact(fd, chal, sizeof(chal), 3000), (size_t)CHALLENGE));
    cr_assert(challenge_ok(key, hello, chal), "b's CHALLENGE verifies with the secret");
    cr_assert(eq(u64, get64(chal + 20), 2));
    proof_make(key, hello, chal, proof);
    raw_send(fd, proof, sizeof(proof));
    return fd;
}

/* A holder of the secret, authenticated as 3, sends frames whose header says 1. */
static bool attack_spoofed_sender(struct authed *h, int attempt, struct figures *f)
{
    uint8_t frames[512];
    (void)attempt;
    f->challenged++;
    int fd = authenticate_as_3(h);
    send_any(fd, frames, attack_frames(1, frames, sizeof(frames)));
    bool closed = raw_closed_by_peer(fd, 3000);
    close(fd);
    return closed;
}

Test(tcp_auth, spoofed_node_id_is_rejected, .timeout = 90)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    /* Positive control: this file's handshake code is right (a frame from 3 passes). */
    int fd = authenticate_as_3(&h);
    uint8_t buf[256];
    struct yggr_msg m = heartbeat(3, 2, 7);
    raw_send(fd, buf, frame_of(3, &m, buf, sizeof(buf)));
    struct node *none[1] = {&h.a};
    cr_assert(wait_inbox(&h.b, h.b.count + 1, 3000, none, 1), "authenticated raw client served");
    cr_assert(eq(u64, h.b.inbox[h.b.count - 1].from, 3));
    close(fd);
    sleep_ms(50);
    drain(&h.b);
    run_attack(&h, "spoofed id in the HELLO (MITM)", attack_spoofed_hello);
    run_attack(&h, "spoofed sender after auth as 3", attack_spoofed_sender);
    cr_expect(node_logged(&h.b, "sender differs"));
    authed_teardown(&h);
}

Test(tcp_auth, removed_peer_can_no_longer_connect, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct node a, b, c;
    open_member(&a, 1, SECRET);
    open_member(&b, 2, SECRET);
    open_member(&c, 3, SECRET);
    knows(&a, &b);
    knows(&b, &a);
    knows(&b, &c);
    knows(&c, &b);
    cr_assert(heartbeat_until_received(&c, &b, 5000));
    cr_assert(eq(int, b.ops->remove_peer(b.t, 3), 0));
    b.ops->flush(b.t);
    sleep_ms(100); /* frames in flight when b removed 3 may still land */
    drain(&b);
    size_t mark = b.count;
    cr_expect(not(heartbeat_until_received(&c, &b, 1500)), "removed node delivered a message");
    cr_expect(eq(sz, count_from(&b, 3, mark), 0));
    cr_expect(node_logged(&b, "node 3 is not a member here"), "b says why");
    cr_expect(node_logged(&c, "authentication failed"), "c says it was refused");
    /* With the secret and a valid HELLO, a removed id gets no CHALLENGE at all. */
    uint8_t hello[HELLO], chal[CHALLENGE];
    hello_make(hello, CLUSTER, 3, 2);
    int fd = raw_connect(b.port);
    raw_send(fd, hello, sizeof(hello));
    cr_expect(eq(sz, recv_exact(fd, chal, sizeof(chal), 3000), 0), "no CHALLENGE for 3");
    close(fd);
    cr_assert(heartbeat_until_received(&a, &b, 3000), "a still served");
    knows(&b, &c); /* re-added: served again after c's backoff */
    cr_expect(heartbeat_until_received(&c, &b, 6000), "re-added node served again");
    node_close(&a);
    node_close(&b);
    node_close(&c);
}

/* Push up to 1 MiB at b without blocking; the bytes b took before closing. */
static size_t push_junk(int fd)
{
    static uint8_t junk[1 << 20];
    memset(junk, 0xAB, sizeof(junk));
    size_t sent = 0;
    uint64_t end = now_ms() + 3000;
    while (sent < sizeof(junk) && now_ms() < end) {
        ssize_t n = send(fd, junk + sent, sizeof(junk) - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 10);
        } else {
            break; /* EPIPE, ECONNRESET: b closed */
        }
    }
    return sent;
}

Test(tcp_auth, junk_before_authentication_is_read_only_up_to_the_cap, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    for (int variant = 0; variant < 2; variant++) {
        uint64_t before = metrics(&h.b, 0).bytes_in;
        int fd = raw_connect(h.b.port);
        if (variant == 1) {
            uint8_t hello[HELLO];
            hello_make(hello, CLUSTER, 1, 2);
            raw_send(fd, hello, sizeof(hello)); /* a valid HELLO, then junk as the PROOF */
        }
        size_t sent = push_junk(fd);
        cr_expect(raw_closed_by_peer(fd, 3000), "junk client closed");
        close(fd);
        sleep_ms(20);
        uint64_t read = metrics(&h.b, 0).bytes_in - before;
        printf("auth pre-auth cap: %s: client pushed %zu bytes, b read %llu (cap %u)\n",
               variant == 0 ? "1 MiB junk" : "HELLO + 1 MiB junk", sent + (variant ? HELLO : 0),
               (unsigned long long)read, AUTH_PREAUTH_MAX_BYTES);
        cr_expect(le(u64, read, (uint64_t)AUTH_PREAUTH_MAX_BYTES));
        cr_expect(ge(u64, read, variant == 0 ? 1u : (uint64_t)HELLO + 1));
    }
    cr_expect(eq(sz, count_attacker(&h.b, 0), 0));
    cr_expect(heartbeat_until_received(&h.a, &h.b, 3000), "a still served");
    authed_teardown(&h);
}

Test(tcp_auth, silent_and_stalled_clients_are_closed_after_the_timeout, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct authed h;
    authed_setup(&h);
    uint8_t hello[HELLO];
    hello_make(hello, CLUSTER, 1, 2);
    int silent = raw_connect(h.b.port);
    int partial = raw_connect(h.b.port);
    raw_send(partial, hello, 30); /* part of a HELLO, then nothing */
    uint64_t t0 = now_ms();
    bool closed[2] = {false, false};
    uint64_t at[2] = {0, 0};
    int fds[2] = {silent, partial};
    while ((!closed[0] || !closed[1]) && now_ms() - t0 < 5000) {
        exchange_step(&h, 0); /* the legitimate peer is unaffected meanwhile */
        for (int i = 0; i < 2; i++) {
            if (!closed[i] && raw_closed_by_peer(fds[i], 10)) {
                closed[i] = true;
                at[i] = now_ms() - t0;
            }
        }
    }
    printf("auth timeout: silent client closed after %llu ms, partial HELLO after %llu ms "
           "(timeout %u ms)\n",
           (unsigned long long)at[0], (unsigned long long)at[1], AUTH_TIMEOUT_MS);
    for (int i = 0; i < 2; i++) {
        cr_expect(closed[i], "client %d closed", i);
        cr_expect(ge(u64, at[i], (uint64_t)AUTH_TIMEOUT_MS - 100));
        cr_expect(le(u64, at[i], (uint64_t)AUTH_TIMEOUT_MS + 1500));
        close(fds[i]);
    }
    cr_expect(node_logged(&h.b, "not authenticated within 2000 ms"));
    authed_teardown(&h);
}

/* The dialer side: a's link to "node 2" reaches a listener this test controls. */
Test(tcp_auth, dialer_sends_nothing_but_a_hello_to_an_impostor, .timeout = 40)
{
    YGGR_REQUIRE_IO();
    uint16_t port;
    int lfd = listen_any(&port);
    struct node a;
    open_member(&a, 1, SECRET);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    cr_assert(eq(int, a.ops->set_peer(a.t, 2, addr), 0));
    struct yggr_msg hb = heartbeat(1, 2, 1);
    cr_assert(eq(int, a.ops->send(a.t, &hb), 0));
    a.ops->flush(a.t);
    uint8_t key[32], bad[32], hello[HELLO], chal[CHALLENGE], proof[PROOF], rest[64];
    wire_key(SECRET, CLUSTER, key);
    wire_key(WRONG_SECRET, CLUSTER, bad);

    /* 0. A genuine node 2: a's PROOF verifies here, then its frames follow. */
    int fd = accept_within(lfd, 3000);
    cr_assert(eq(sz, recv_exact(fd, hello, HELLO, 3000), (size_t)HELLO));
    cr_expect(eq(u64, get64(hello + 12), CLUSTER));
    cr_expect(eq(u64, get64(hello + 20), 1));
    cr_expect(eq(u64, get64(hello + 28), 2));
    challenge_make(key, hello, 2, chal);
    raw_send(fd, chal, sizeof(chal));
    cr_assert(eq(sz, recv_exact(fd, proof, PROOF, 3000), (size_t)PROOF));
    uint8_t want[PROOF];
    proof_make(key, hello, chal, want);
    cr_expect(eq(int, memcmp(proof, want, PROOF), 0), "a's PROOF matches docs/wire.md");
    cr_assert(eq(sz, recv_exact(fd, rest, 12, 3000), 12u), "frames follow the PROOF");
    cr_expect(eq(u64, get64(rest), 1), "a frame from 1");
    close(fd);

    /* 1. Wrong secret; 2. right secret, wrong node; 3. silence. */
    for (int impostor = 1; impostor <= 3; impostor++) {
        a.ops->send(a.t, &hb);
        a.ops->flush(a.t);
        fd = accept_within(lfd, 5000);
        cr_assert(eq(sz, recv_exact(fd, hello, HELLO, 3000), (size_t)HELLO));
        uint64_t t0 = now_ms();
        if (impostor < 3) {
            challenge_make(impostor == 1 ? bad : key, hello, impostor == 1 ? 2 : 3, chal);
            raw_send(fd, chal, sizeof(chal));
        }
        size_t more = recv_exact(fd, rest, sizeof(rest), 4000); /* until a closes */
        cr_expect(eq(sz, more, 0), "impostor %d got %zu bytes after the HELLO", impostor, more);
        cr_expect(raw_closed_by_peer(fd, 100), "impostor %d: a closed", impostor);
        if (impostor == 3) {
            uint64_t took = now_ms() - t0;
            cr_expect(ge(u64, took, (uint64_t)AUTH_TIMEOUT_MS - 100), "%llu ms",
                      (unsigned long long)took);
        }
        close(fd);
    }
    cr_expect(node_logged(&a, "CHALLENGE does not verify"));
    cr_expect(node_logged(&a, "node 3 answered instead of node 2"));
    cr_expect(ge(u64, metrics(&a, 2).decode_errors, 3), "every failure counted for peer 2");
    node_close(&a);
    close(lfd);
}

Test(tcp_auth, mixed_configuration_fails_closed_with_a_clear_log, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct node a, b;
    open_member(&a, 1, SECRET);
    node_open(&b, 2); /* no secret */
    knows(&a, &b);
    knows(&b, &a);
    uint64_t end = now_ms() + 1500;
    for (uint64_t i = 1; now_ms() < end; i++) {
        struct yggr_msg ab = heartbeat(1, 2, i), ba = heartbeat(2, 1, i);
        a.ops->send(a.t, &ab);
        b.ops->send(b.t, &ba);
        a.ops->flush(a.t);
        b.ops->flush(b.t);
        drain(&a);
        drain(&b);
        sleep_ms(10);
    }
    cr_expect(eq(sz, a.count, 0), "nothing crossed into the node with the secret");
    cr_expect(eq(sz, b.count, 0), "nothing crossed into the node without it");
    bool said_b = node_logged(&b, "this node has no cluster secret configured");
    bool said_a = node_logged(&a, "node 2 sent Raft frames without a handshake");
    bool said_dialer = node_logged(&a, "peer 2: authentication failed");
    if (!said_a || !said_b || !said_dialer) {
        node_dump_logs(&a);
        node_dump_logs(&b);
    }
    cr_expect(said_b, "the node without a secret says why it refuses the HELLO");
    cr_expect(said_a, "the node with a secret says why it refuses raw frames");
    cr_expect(said_dialer, "the dialer with a secret says it was refused");
    cr_expect(not(metrics(&a, 2).connected));
    node_close(&a);
    node_close(&b);
}

Test(tcp_auth, without_a_secret_the_first_bytes_are_a_reference_frame, .timeout = 10)
{
    YGGR_REQUIRE_IO();
    uint16_t port;
    int lfd = listen_any(&port);
    struct node a;
    node_open(&a, 1);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    cr_assert(eq(int, a.ops->set_peer(a.t, 2, addr), 0));
    struct yggr_msg hb = heartbeat(1, 2, 1);
    cr_assert(eq(int, a.ops->send(a.t, &hb), 0));
    a.ops->flush(a.t);
    int fd = accept_within(lfd, 3000);
    uint8_t head[CODEC_FRAME_HEADER_BYTES];
    cr_assert(eq(sz, recv_exact(fd, head, sizeof(head), 3000), sizeof(head)));
    uint64_t sender;
    uint32_t len;
    codec_frame_header_get(head, &sender, &len);
    cr_expect(eq(u64, sender, 1), "no handshake bytes: the frame header comes first");
    cr_expect(eq(u32, len, (uint32_t)codec_msg_size(&hb)));
    close(fd);
    node_close(&a);
    close(lfd);
}
