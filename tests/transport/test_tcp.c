/* SPDX-License-Identifier: MIT */
/* transport/: the io_uring TCP transport over real sockets on 127.0.0.x (suite io), the
 * port of the reference's tcp_transport.rs plus flow control, hostile input, dynamic peers. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "tcp.h"
#include "tcp_harness.h"
#include "yggr/plugin.h"
#include "yggr_test.h"

/* ---------------------------------------------------------------------------------------
 * Every message type, three transports
 * ------------------------------------------------------------------------------------- */

Test(tcp, every_message_type_crosses_between_three_transports, .timeout = 20)
{
    YGGR_REQUIRE_IO();
    struct node n[3];
    for (int i = 0; i < 3; i++) {
        node_open(&n[i], (uint64_t)i + 1);
    }
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3; k++) {
            if (i != k) {
                knows(&n[i], &n[k]);
            }
        }
    }
    static struct corpus c[3];
    struct node *all[3] = {&n[0], &n[1], &n[2]};
    /* Links come up lazily and frames sent during a connect back-off are dropped (the
     * engine resends): establish every link first so the corpus is not lost on a loaded
     * machine, and let the set-up heartbeats land before counting. */
    size_t first[3];
    for (int i = 0; i < 3; i++) {
        int to = (i + 1) % 3;
        cr_assert(heartbeat_until_received(&n[i], &n[to], 10000), "link %d->%d", i, to);
    }
    sleep_ms(100);
    uint64_t drops_before[3]; /* set-up heartbeats may be dropped while a link connects */
    for (int i = 0; i < 3; i++) {
        drain(&n[i]);
        first[i] = n[i].count;
        drops_before[i] = metrics(&n[i], n[(i + 1) % 3].id).send_drops;
    }
    for (int i = 0; i < 3; i++) {
        int to = (i + 1) % 3;
        corpus_build(&c[i], n[i].id, n[to].id);
        for (int k = 0; k < c[i].count; k++) {
            cr_assert(eq(int, n[i].ops->send(n[i].t, &c[i].msgs[k]), 0));
        }
        n[i].ops->flush(n[i].t);
    }
    for (int i = 0; i < 3; i++) {
        int to = (i + 1) % 3;
        cr_assert(wait_inbox(&n[to], first[to] + (size_t)c[i].count, 10000, all, 3),
                  "node %d got %zu", to, n[to].count - first[to]);
        expect_corpus(&n[to], first[to], &c[i], n[i].id);
        struct yggr_peer_metrics pm = metrics(&n[i], n[to].id);
        cr_expect(pm.connected);
        cr_expect(eq(u64, pm.send_drops - drops_before[i], 0), "corpus frames dropped");
    }
    for (int i = 0; i < 3; i++) {
        free(c[i].payload);
        node_close(&n[i]);
    }
}

Test(tcp, many_messages_arrive_in_order_per_link, .timeout = 20)
{
    YGGR_REQUIRE_IO();
    struct node a, b;
    node_open(&a, 1);
    node_open(&b, 2);
    knows(&a, &b);
    knows(&b, &a);
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        struct yggr_msg m = heartbeat(1, 2, (uint64_t)i + 1);
        m.as.append.round = (uint64_t)i + 1;
        cr_assert(eq(int, a.ops->send(a.t, &m), 0));
        if (i % 64 == 63) {
            a.ops->flush(a.t);
            drain(&b);
        }
    }
    struct node *senders[1] = {&a};
    bool ok = wait_inbox(&b, N, 10000, senders, 1);
    struct yggr_peer_metrics pm = metrics(&a, 2);
    cr_assert(ok, "got %zu of %d (out %llu drops %llu conn %d queued %llu)", b.count, N,
              (unsigned long long)pm.frames_out, (unsigned long long)pm.send_drops, pm.connected,
              (unsigned long long)tcp_transport_queued_bytes(a.t, 2));
    for (size_t i = 0; i < b.count; i++) {
        struct rec r;
        decode_got(&b.inbox[i], &r);
        cr_assert(eq(u64, r.msg.as.append.round, (uint64_t)i + 1), "FIFO at %zu", i);
    }
    cr_expect(eq(u64, metrics(&a, 2).send_drops, 0));
    node_close(&a);
    node_close(&b);
}

Test(tcp, vote_request_and_response_round_trip, .timeout = 10)
{
    YGGR_REQUIRE_IO();
    struct node a, b;
    node_open(&a, 1);
    node_open(&b, 2);
    knows(&a, &b);
    knows(&b, &a);
    struct yggr_msg req = {.type = YGGR_MSG_VOTE_REQUEST, .from = 1, .to = 2, .term = 3};
    req.as.vote_request.candidate_id = 1;
    cr_assert(eq(int, a.ops->send(a.t, &req), 0));
    struct node *sa[1] = {&a}, *sb[1] = {&b};
    cr_assert(wait_inbox(&b, 1, 5000, sa, 1));
    struct yggr_msg resp = {.type = YGGR_MSG_VOTE_RESPONSE, .from = 2, .to = 1, .term = 3};
    resp.as.vote_response.granted = true;
    cr_assert(eq(int, b.ops->send(b.t, &resp), 0)); /* over b's own outbound link */
    cr_assert(wait_inbox(&a, 1, 5000, sb, 1));
    struct rec r;
    decode_got(&a.inbox[0], &r);
    cr_expect(codec_msg_equal(&r.msg, &resp));
    cr_expect(eq(u64, a.inbox[0].from, 2));
    node_close(&a);
    node_close(&b);
}

/* ---------------------------------------------------------------------------------------
 * Reconnect, flow control, dead peers
 * ------------------------------------------------------------------------------------- */

Test(tcp, peer_restarted_on_the_same_port_is_reached_again, .timeout = 20)
{
    YGGR_REQUIRE_IO();
    struct node a, b;
    node_open(&a, 1);
    node_open(&b, 2);
    knows(&a, &b);
    knows(&b, &a);
    cr_assert(heartbeat_until_received(&a, &b, 3000));
    uint16_t port = b.port;
    node_close(&b);
    /* Traffic while b is gone is dropped or parked, never blocking. */
    for (int i = 0; i < 50; i++) {
        struct yggr_msg m = heartbeat(1, 2, 100 + (uint64_t)i);
        cr_assert(eq(int, a.ops->send(a.t, &m), 0));
        a.ops->flush(a.t);
        sleep_ms(2);
    }
    node_open_peer(&b, 2, "127.0.0.1", port, 0, &a);
    cr_assert(heartbeat_until_received(&a, &b, 5000), "not reconnected");
    struct yggr_peer_metrics pm = metrics(&a, 2);
    cr_expect(ge(u64, pm.reconnects, 1));
    cr_expect(pm.connected);
    node_close(&a);
    node_close(&b);
}

Test(tcp, dead_peer_keeps_only_the_newest_heartbeat_and_gets_it_on_reconnect, .timeout = 20)
{
    YGGR_REQUIRE_IO();
    struct node a, b;
    node_open(&b, 2);
    uint16_t port = b.port;
    node_close(&b); /* b's address is known but nobody listens there */
    node_open(&a, 1);
    cr_assert(eq(int, a.ops->set_peer(a.t, 2, b.addr), 0));
    a.ops->flush(a.t);
    sleep_ms(100); /* the first dial fails: the link is down */
    struct corpus *c = malloc(sizeof(*c));
    corpus_build(c, 1, 2);
    for (uint64_t commit = 1; commit <= 200; commit++) {
        struct yggr_msg hb = heartbeat(1, 2, commit);
        cr_assert(eq(int, a.ops->send(a.t, &hb), 0));
        cr_assert(eq(int, a.ops->send(a.t, &c->msgs[3]), 0)); /* 1000 entries: dropped */
        a.ops->flush(a.t);
    }
    struct yggr_peer_metrics pm = metrics(&a, 2);
    cr_expect(ge(u64, pm.send_drops, 200 + 199 - 2), "drops %llu", (unsigned long long)pm.send_drops);
    cr_expect(le(u64, tcp_transport_queued_bytes(a.t, 2), 64 * 1024), "a dead peer holds no memory");
    node_open_peer(&b, 2, "127.0.0.1", port, 0, &a);
    uint64_t end = now_ms() + 5000;
    while (b.count == 0 && now_ms() < end) {
        a.ops->flush(a.t); /* the driver would flush after the network thread's wake */
        drain(&b);
        sleep_ms(5);
    }
    cr_assert(ge(sz, b.count, 1), "parked heartbeat never delivered");
    struct rec r;
    decode_got(&b.inbox[b.count - 1], &r);
    cr_expect(eq(u64, r.msg.as.append.leader_commit, 200), "the newest heartbeat survives");
    cr_expect(ge(int, atomic_load(&a.wakes), 1), "reconnect wakes the driver");
    free(c->payload);
    free(c);
    node_close(&a);
    node_close(&b);
}

Test(tcp, stalled_reader_does_not_stall_others_and_memory_stays_bounded, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    enum { BUDGET = 1 << 20 };
    struct node a, b;
    node_open_at(&a, 1, "127.0.0.1", 0, BUDGET);
    node_open(&b, 2);
    knows(&a, &b);
    knows(&b, &a);
    /* Peer 9: a listening socket that accepts nothing and reads nothing. */
    int stall = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, bind(stall, (struct sockaddr *)&sa, sizeof(sa)), 0));
    cr_assert(eq(int, listen(stall, 4), 0));
    socklen_t sl = sizeof(sa);
    getsockname(stall, (struct sockaddr *)&sa, &sl);
    char stall_addr[64];
    snprintf(stall_addr, sizeof(stall_addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    cr_assert(eq(int, a.ops->set_peer(a.t, 9, stall_addr), 0));
    struct corpus *c = malloc(sizeof(*c));
    corpus_build(c, 1, 9);
    struct yggr_msg big = c->msgs[4]; /* 4 x 100 KiB entries */
    uint64_t start = now_ms();
    uint64_t max_queued = 0;
    int sent_b = 0;
    for (int i = 0; i < 600; i++) {
        cr_assert(eq(int, a.ops->send(a.t, &big), 0));
        struct yggr_msg hb = heartbeat(1, 9, (uint64_t)i + 1);
        cr_assert(eq(int, a.ops->send(a.t, &hb), 0));
        struct yggr_msg to_b = heartbeat(1, 2, (uint64_t)i + 1);
        to_b.as.append.round = (uint64_t)i + 1;
        cr_assert(eq(int, a.ops->send(a.t, &to_b), 0));
        sent_b++;
        a.ops->flush(a.t);
        uint64_t q = tcp_transport_queued_bytes(a.t, 9);
        max_queued = q > max_queued ? q : max_queued;
        drain(&b);
    }
    uint64_t elapsed = now_ms() - start;
    struct node *sa_[1] = {&a};
    bool ok = wait_inbox(&b, (size_t)sent_b, 5000, sa_, 1);
    struct yggr_peer_metrics m2 = metrics(&a, 2), in2 = metrics(&b, 1);
    cr_assert(ok, "healthy peer got %zu of %d (out %llu drops %llu conn %d queued %llu; in %llu)",
              b.count, sent_b, (unsigned long long)m2.frames_out,
              (unsigned long long)m2.send_drops, m2.connected,
              (unsigned long long)tcp_transport_queued_bytes(a.t, 2),
              (unsigned long long)in2.frames_in);
    cr_expect(eq(u64, metrics(&a, 2).send_drops, 0), "no drops to the healthy peer");
    cr_expect(le(u64, max_queued, (uint64_t)BUDGET + 410 * 1024),
              "queued %llu over budget", (unsigned long long)max_queued);
    struct yggr_peer_metrics pm = metrics(&a, 9);
    cr_expect(gt(u64, pm.send_drops, 0), "drops counted for the stalled peer");
    cr_expect(lt(u64, elapsed, 10000), "send() never blocked (%llu ms)", (unsigned long long)elapsed);
    free(c->payload);
    free(c);
    node_close(&a);
    node_close(&b);
    close(stall);
}

/* ---------------------------------------------------------------------------------------
 * Hostile input
 * ------------------------------------------------------------------------------------- */

struct hostile {
    struct node a, b, c;         /* b is the target; a and c are its known peers */
};

static void hostile_setup(struct hostile *h)
{
    node_open(&h->a, 1);
    node_open(&h->b, 2);
    node_open(&h->c, 3);
    knows(&h->a, &h->b);
    knows(&h->b, &h->a);
    knows(&h->b, &h->c);
    cr_assert(heartbeat_until_received(&h->a, &h->b, 3000));
}

/* After each attack the well-behaved peer a still reaches b. */
static void expect_still_serving(struct hostile *h)
{
    cr_assert(heartbeat_until_received(&h->a, &h->b, 3000), "b stopped serving a");
}

static void hostile_teardown(struct hostile *h)
{
    node_close(&h->a);
    node_close(&h->b);
    node_close(&h->c);
}

Test(tcp, garbage_truncated_oversized_and_zero_sender_frames_close_only_their_connection,
     .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct hostile h;
    hostile_setup(&h);
    uint8_t buf[256];
    struct yggr_msg hb = heartbeat(1, 2, 1);

    /* Undecodable body from a known sender. */
    int fd = raw_connect(h.b.port);
    codec_frame_header_put(buf, 1, 5);
    memcpy(buf + 12, "\xff\xff\xff\xff\xff", 5);
    raw_send(fd, buf, 17);
    cr_expect(raw_closed_by_peer(fd, 3000), "garbage body");
    close(fd);
    expect_still_serving(&h);
    cr_expect(ge(u64, metrics(&h.b, 1).decode_errors, 1));

    /* Length over max_frame_bytes (64 MiB default). */
    fd = raw_connect(h.b.port);
    codec_frame_header_put(buf, 1, (64u << 20) + 1);
    raw_send(fd, buf, 12);
    cr_expect(raw_closed_by_peer(fd, 3000), "oversized frame");
    close(fd);

    /* Sender id 0 (header written by hand: codec refuses to build it). */
    fd = raw_connect(h.b.port);
    size_t n = frame_of(1, &hb, buf, sizeof(buf));
    memset(buf, 0, 8);
    raw_send(fd, buf, n);
    cr_expect(raw_closed_by_peer(fd, 3000), "zero sender");
    close(fd);
    expect_still_serving(&h);

    /* Disconnect in the middle of the prefix and in the middle of a body: clean. */
    fd = raw_connect(h.b.port);
    raw_send(fd, buf, 7);
    close(fd);
    fd = raw_connect(h.b.port);
    n = frame_of(1, &hb, buf, sizeof(buf));
    raw_send(fd, buf, n - 3);
    close(fd);
    expect_still_serving(&h);

    cr_expect(ge(u64, metrics(&h.b, 0).decode_errors, 1), "zero sender lands in 'unknown'");
    cr_expect(ge(u64, metrics(&h.b, 1).decode_errors, 2), "garbage + oversize counted for 1");
    cr_expect(ge(int, atomic_load(&h.b.rejections_logged), 3), "each rejection is logged");
    /* Nothing hostile reached the driver: every inbox message is a valid heartbeat from 1. */
    for (size_t i = 0; i < h.b.count; i++) {
        cr_expect(eq(u64, h.b.inbox[i].from, 1));
    }
    hostile_teardown(&h);
}

/* Regression: a frame HEADER split across the end of the 256 KiB receive buffer tripped an
 * assertion in arm_recv (found by the runtime's disk+TCP scenarios under load). A first
 * frame sized so that the next frame's 12-byte header straddles the buffer end. */
Test(regress, partial_header_at_receive_buffer_end_is_carried_over, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct hostile h;
    hostile_setup(&h);
    size_t before = h.b.count;
    static uint8_t payload[TCP_RBUF_BYTES];
    memset(payload, 'p', sizeof(payload));
    struct yggr_entry e = {.index = 2, .term = 1, .type = YGGR_ENTRY_COMMAND, .data = payload};
    struct yggr_msg big = heartbeat(1, 2, 1);
    big.as.append.entries = &e;
    big.as.append.entry_count = 1;
    /* Grow the payload until the frame ends 5 bytes before the buffer's end. */
    size_t want = TCP_RBUF_BYTES - 5;
    e.len = (uint32_t)(want - 64);
    while (codec_msg_size(&big) + CODEC_FRAME_HEADER_BYTES < want) {
        e.len++;
    }
    cr_assert(eq(sz, codec_msg_size(&big) + CODEC_FRAME_HEADER_BYTES, want));
    size_t cap = TCP_RBUF_BYTES + 4096;
    uint8_t *stream = malloc(cap);
    cr_assert_not_null(stream);
    size_t n = frame_of(1, &big, stream, cap);
    struct yggr_msg hb = heartbeat(1, 2, 1);
    for (int i = 0; i < 20; i++) {
        n += frame_of(1, &hb, stream + n, cap - n);
    }
    int fd = raw_connect(h.b.port);
    raw_send(fd, stream, n);
    struct node *senders[] = {&h.a};
    cr_assert(wait_inbox(&h.b, before + 21, 5000, senders, 1), "got %zu of 21",
              h.b.count - before);
    close(fd);
    free(stream);
    expect_still_serving(&h);
    hostile_teardown(&h);
}

Test(tcp, unknown_and_changing_senders_are_rejected, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct hostile h;
    hostile_setup(&h);
    uint8_t buf[512];
    size_t before = h.b.count;

    /* A sender b does not know. */
    struct yggr_msg hb77 = heartbeat(77, 2, 1);
    int fd = raw_connect(h.b.port);
    size_t n = frame_of(77, &hb77, buf, sizeof(buf));
    raw_send(fd, buf, n);
    cr_expect(raw_closed_by_peer(fd, 3000), "unknown sender");
    close(fd);

    /* Our own id is not a peer either. */
    struct yggr_msg hb2 = heartbeat(2, 2, 1);
    fd = raw_connect(h.b.port);
    n = frame_of(2, &hb2, buf, sizeof(buf));
    raw_send(fd, buf, n);
    cr_expect(raw_closed_by_peer(fd, 3000), "self as sender");
    close(fd);

    /* First frame from 3 (known, valid: delivered), then a frame claiming to be 1. */
    struct yggr_msg hb3 = heartbeat(3, 2, 42);
    struct yggr_msg hb1 = heartbeat(1, 2, 43);
    fd = raw_connect(h.b.port);
    n = frame_of(3, &hb3, buf, sizeof(buf));
    n += frame_of(1, &hb1, buf + n, sizeof(buf) - n);
    raw_send(fd, buf, n);
    cr_expect(raw_closed_by_peer(fd, 3000), "sender changed mid-connection");
    close(fd);
    expect_still_serving(&h);

    size_t from3 = 0;
    for (size_t i = before; i < h.b.count; i++) {
        cr_expect(h.b.inbox[i].from == 1 || h.b.inbox[i].from == 3);
        if (h.b.inbox[i].from == 3) {
            from3++;
            struct rec r;
            decode_got(&h.b.inbox[i], &r);
            cr_expect(eq(u64, r.msg.as.append.leader_commit, 42), "only the valid first frame");
        }
    }
    cr_expect(eq(sz, from3, 1));
    cr_expect(ge(u64, metrics(&h.b, 0).decode_errors, 2), "unknown senders counted");
    cr_expect(ge(u64, metrics(&h.b, 3).decode_errors, 1), "mismatch counted for 3");
    hostile_teardown(&h);
}

/* ---------------------------------------------------------------------------------------
 * Dynamic peers, lifecycle, options
 * ------------------------------------------------------------------------------------- */

Test(tcp, peers_are_added_readdressed_and_removed_at_runtime, .timeout = 30)
{
    YGGR_REQUIRE_IO();
    struct node a, b, b2;
    node_open(&a, 1);
    node_open(&b, 2);
    struct yggr_msg hb = heartbeat(1, 2, 1);
    cr_expect(eq(int, a.ops->send(a.t, &hb), YGGR_ERR_UNKNOWN_NODE), "not added yet");
    knows(&a, &b);
    knows(&b, &a);
    cr_assert(heartbeat_until_received(&a, &b, 3000));

    /* b moves to a new address (a new process on another port): readdress. */
    node_open(&b2, 2);
    knows(&b2, &a);
    knows(&a, &b2);
    cr_assert(heartbeat_until_received(&a, &b2, 3000), "new address not used");

    /* b2 forgets a: a's frames are rejected and its link is closed by b2. */
    cr_assert(eq(int, b2.ops->remove_peer(b2.t, 1), 0));
    b2.ops->flush(b2.t);
    cr_expect(eq(int, b2.ops->remove_peer(b2.t, 1), YGGR_ERR_UNKNOWN_NODE));
    sleep_ms(100); /* frames already in flight when b2 forgot a may still arrive */
    drain(&b2);
    cr_expect(not(heartbeat_until_received(&a, &b2, 500)), "unknown sender must not pass");
    knows(&b2, &a);
    cr_assert(heartbeat_until_received(&a, &b2, 5000), "re-added peer served again");

    cr_assert(eq(int, a.ops->remove_peer(a.t, 2), 0));
    cr_expect(eq(int, a.ops->send(a.t, &hb), YGGR_ERR_UNKNOWN_NODE));
    struct yggr_peer_metrics pm;
    cr_expect(eq(int, a.ops->peer_metrics(a.t, 2, &pm), YGGR_ERR_UNKNOWN_NODE));
    /* And added back into a (possibly reused) slot. */
    knows(&a, &b2);
    cr_assert(heartbeat_until_received(&a, &b2, 5000));
    node_close(&a);
    node_close(&b);
    node_close(&b2);
}

Test(tcp, self_in_the_peer_map_is_ignored_and_bad_addresses_refused, .timeout = 10)
{
    YGGR_REQUIRE_IO();
    struct node a;
    node_open(&a, 1);
    cr_expect(eq(int, a.ops->set_peer(a.t, 1, a.addr), 0));
    struct yggr_msg hb = heartbeat(1, 1, 1);
    cr_expect(eq(int, a.ops->send(a.t, &hb), YGGR_ERR_UNKNOWN_NODE));
    cr_expect(eq(int, a.ops->set_peer(a.t, 2, "example.org:80"), YGGR_ERR_INVALID));
    cr_expect(eq(int, a.ops->set_peer(a.t, 2, "127.0.0.1"), YGGR_ERR_INVALID));
    cr_expect(eq(int, a.ops->set_peer(a.t, 2, "127.0.0.1:70000"), YGGR_ERR_INVALID));
    cr_expect(eq(int, a.ops->set_peer(a.t, 0, "127.0.0.1:1"), YGGR_ERR_INVALID));
    cr_expect(eq(int, a.ops->set_peer(a.t, 2, "[::1]:7000"), 0));
    cr_expect(eq(int, a.ops->set_peer(a.t, 3, "localhost:7000"), 0));
    node_close(&a);
}

Test(tcp, close_frees_the_port_and_closes_accepted_connections, .timeout = 10)
{
    YGGR_REQUIRE_IO();
    struct node b;
    node_open(&b, 2);
    uint16_t port = b.port;
    int fd = raw_connect(port);
    sleep_ms(20); /* accepted */
    uint64_t t0 = now_ms();
    node_close(&b);
    cr_expect(lt(u64, now_ms() - t0, 1000), "close is prompt");
    cr_expect(raw_closed_by_peer(fd, 1000), "accepted connection closed");
    close(fd);
    node_open_at(&b, 2, "127.0.0.1", port, 0); /* rebind succeeds */
    cr_expect(eq(u16, b.port, port));
    node_close(&b);
}

Test(tcp, start_reports_a_port_in_use, .timeout = 10)
{
    YGGR_REQUIRE_IO();
    struct node a;
    node_open(&a, 1);
    const struct yggr_transport_ops *ops;
    struct yggr_transport *t;
    char why[256] = "";
    struct yggr_tcp_options o = {.node_id = 2, .listen_addr = a.addr};
    cr_assert(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), 0));
    cr_expect(eq(int, ops->start(t, NULL, NULL, -1, why, sizeof(why)), YGGR_ERR_IO));
    cr_expect(strstr(why, "cannot listen") != NULL, "%s", why);
    ops->close(t);
    node_close(&a);
}

Test(tcp, outgoing_links_bind_to_the_listen_ip, .timeout = 10)
{
    YGGR_REQUIRE_IO();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(eq(int, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0));
    cr_assert(eq(int, listen(lfd, 4), 0));
    socklen_t sl = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    struct node a;
    node_open_at(&a, 1, "127.0.0.2", 0, 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    cr_assert(eq(int, a.ops->set_peer(a.t, 9, addr), 0));
    a.ops->flush(a.t);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    cr_assert(eq(int, poll(&p, 1, 3000), 1));
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    int fd = accept(lfd, (struct sockaddr *)&from, &fl);
    cr_assert(ge(int, fd, 0));
    char ip[32];
    inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
    cr_expect(eq(str, ip, "127.0.0.2"));
    close(fd);
    close(lfd);
    node_close(&a);
}

Test(tcp_options, create_validates_options_and_secrets)
{
    const struct yggr_transport_ops *ops;
    struct yggr_transport *t;
    char why[256];
    struct yggr_tcp_options o = {.node_id = 1, .listen_addr = "127.0.0.1:0"};
    o.node_id = 0;
    cr_expect(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), YGGR_ERR_INVALID));
    o.node_id = 1;
    o.listen_addr = "nowhere";
    cr_expect(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), YGGR_ERR_INVALID));
    o.listen_addr = "127.0.0.1:0";
    o.secret = (const uint8_t *)"0123456789abcde"; /* 15 bytes: too short */
    o.secret_len = 15;
    cr_expect(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), YGGR_ERR_INVALID));
    cr_expect(strstr(why, "at least 16") != NULL, "%s", why);
    o.secret = NULL;
    o.secret_len = 16;
    cr_expect(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), YGGR_ERR_INVALID));
    o.secret = (const uint8_t *)"0123456789abcdef";
    cr_assert(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), 0), "%s", why);
    ops->close(t);
    o.secret = NULL;
    o.secret_len = 0;
    o.max_frame_bytes = 2u << 30;
    cr_expect(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), YGGR_ERR_INVALID));
    o.max_frame_bytes = 0;
    cr_assert(eq(int, yggr_tcp_transport_create(&o, &ops, &t, why, sizeof(why)), 0));
    ops->close(t); /* never started: close frees it */
}

Test(tcp_options, addresses_parse_numeric_hosts_only)
{
    struct tcp_addr a;
    cr_expect(eq(int, addr_parse("127.0.0.3:7003", &a), 0));
    cr_expect(eq(u16, addr_port(&a), 7003));
    cr_expect(eq(int, addr_parse("[::1]:1", &a), 0));
    cr_expect(eq(int, addr_parse("0.0.0.0:5", &a), 0));
    cr_expect(addr_is_wildcard(&a));
    cr_expect(ne(int, addr_parse("host:1", &a), 0));
    cr_expect(ne(int, addr_parse("1.2.3.4:", &a), 0));
    cr_expect(ne(int, addr_parse("1.2.3.4:-1", &a), 0));
    cr_expect(ne(int, addr_parse("[::1:1", &a), 0));
    cr_expect(ne(int, addr_parse(NULL, &a), 0));
}
