/* SPDX-License-Identifier: MIT */
/* bench-transport: AppendEntries throughput between two TCP transports on loopback, next to
 * a plain blocking-socket baseline that moves the very same frame bytes. */

/*
 * Design notes
 * ------------
 * Uses only the public plugin API (yggr/plugin.h), as a host would. Two transports run in
 * one process, each driven by its own "driver" thread. The sender keeps a window of
 * messages in flight (sent minus received) so the measurement is not dominated by drops;
 * drops are reported anyway. The frame bytes for the baseline are captured from the real
 * transport: node 1 sends one message to a raw listening socket and the bench reads it.
 * The baseline then writes those bytes with blocking send() in a loop and a reader thread
 * splits the stream into frames by their length prefix (no protobuf decoding), which is
 * the cost floor of moving the bytes through the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "yggr/plugin.h"

struct options {
    double seconds;           /* per measurement */
    uint32_t entries;         /* entries per AppendEntries */
    uint32_t window;          /* messages in flight */
};

struct result {
    double msgs_per_s;
    double mb_per_s;
    uint64_t drops;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-transport: %s: %s\n", what, why);
    exit(1);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        die("free port", strerror(errno));
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---------------------------------------------------------------------------------------
 * One transport and its driver loop
 * ------------------------------------------------------------------------------------- */

struct side {
    const struct yggr_transport_ops *ops;
    struct yggr_transport *t;
    char addr[64];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int woken;
};

static void on_wake(void *ctx)
{
    struct side *s = ctx;
    pthread_mutex_lock(&s->lock);
    s->woken = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void side_wait(struct side *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->lock);
    if (!s->woken) {
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    s->woken = 0;
    pthread_mutex_unlock(&s->lock);
}

static void side_open(struct side *s, uint64_t id)
{
    char why[256];
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", free_port());
    struct yggr_tcp_options o = {.node_id = id, .listen_addr = s->addr};
    if (yggr_tcp_transport_create(&o, &s->ops, &s->t, why, sizeof(why)) != 0 ||
        s->ops->start(s->t, on_wake, s, -1, why, sizeof(why)) != 0) {
        die("transport", why);
    }
}

static void side_close(struct side *s)
{
    s->ops->close(s->t);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}

struct run {
    struct options opt;
    struct side a, b;
    struct yggr_msg msg;
    struct yggr_entry *entries;
    uint8_t *payload;
    _Atomic uint64_t received;
    _Atomic uint64_t received_bytes;
    _Atomic int stop;
};

static void build_msg(struct run *r, uint32_t entry_bytes)
{
    r->payload = malloc(entry_bytes);
    r->entries = calloc(r->opt.entries, sizeof(*r->entries));
    if (r->payload == NULL || r->entries == NULL) {
        die("memory", "out of memory");
    }
    memset(r->payload, 'x', entry_bytes);
    for (uint32_t i = 0; i < r->opt.entries; i++) {
        r->entries[i] = (struct yggr_entry){.index = 1001 + i, .term = 7,
                                            .type = YGGR_ENTRY_COMMAND, .data = r->payload,
                                            .len = entry_bytes};
    }
    r->msg = (struct yggr_msg){.type = YGGR_MSG_APPEND_REQUEST, .from = 1, .to = 2, .term = 7};
    r->msg.as.append = (struct yggr_msg_append_request){
        .leader_id = 1, .prev = {1000, 7}, .leader_commit = 1000, .entries = r->entries,
        .entry_count = r->opt.entries};
}

/* Receiver driver: poll, count, release. */
static void *receiver_main(void *arg)
{
    struct run *r = arg;
    struct yggr_inbound in;
    while (!atomic_load(&r->stop)) {
        bool any = false;
        while (r->b.ops->poll(r->b.t, &in)) {
            uint64_t bytes = 0;
            for (uint32_t i = 0; i < in.count; i++) {
                for (uint32_t k = 0; k < in.msgs[i].as.append.entry_count; k++) {
                    bytes += in.msgs[i].as.append.entries[k].len;
                }
            }
            atomic_fetch_add(&r->received, in.count);
            atomic_fetch_add(&r->received_bytes, bytes);
            r->b.ops->release(r->b.t, &in);
            any = true;
        }
        if (any) {
            on_wake(&r->a); /* let the sender refill its window */
        } else {
            side_wait(&r->b);
        }
    }
    return NULL;
}

/* Sender driver (this thread): keep `window` messages in flight for opt.seconds. */
static struct result measure_transport(struct run *r, const char *label)
{
    pthread_t rx;
    atomic_store(&r->received, 0);
    atomic_store(&r->received_bytes, 0);
    atomic_store(&r->stop, 0);
    pthread_create(&rx, NULL, receiver_main, r);
    uint64_t sent = 0;
    double start = now_s(), next_report = start + 1.0, end = start + r->opt.seconds;
    while (now_s() < end) {
        uint64_t got = atomic_load(&r->received);
        while (sent - got < r->opt.window) {
            r->msg.as.append.leader_commit = 1000 + sent;
            if (r->a.ops->send(r->a.t, &r->msg) != 0) {
                die("send", "refused");
            }
            sent++;
        }
        r->a.ops->flush(r->a.t);
        side_wait(&r->a);
        if (now_s() >= next_report) {
            printf("  %-22s %5.1fs  %10llu msgs received\n", label, now_s() - start,
                   (unsigned long long)atomic_load(&r->received));
            fflush(stdout);
            next_report += 1.0;
        }
    }
    double elapsed = now_s() - start;
    atomic_store(&r->stop, 1);
    on_wake(&r->b);
    pthread_join(rx, NULL);
    struct yggr_peer_metrics pm;
    r->a.ops->peer_metrics(r->a.t, 2, &pm);
    struct result res = {.msgs_per_s = (double)atomic_load(&r->received) / elapsed,
                         .mb_per_s = (double)pm.bytes_out / elapsed / 1e6,
                         .drops = pm.send_drops};
    return res;
}

/* Capture the exact frame node 1 puts on the wire for r->msg. */
static uint8_t *capture_frame(struct run *r, size_t *len_out)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        die("capture listener", strerror(errno));
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    r->a.ops->set_peer(r->a.t, 99, addr);
    struct yggr_msg m = r->msg;
    m.to = 99;
    r->a.ops->send(r->a.t, &m);
    r->a.ops->flush(r->a.t);
    int fd = accept(lfd, NULL, NULL);
    uint8_t hdr[12];
    if (fd < 0 || recv(fd, hdr, sizeof(hdr), MSG_WAITALL) != (ssize_t)sizeof(hdr)) {
        die("capture", "no frame");
    }
    uint32_t body = ((uint32_t)hdr[8] << 24) | ((uint32_t)hdr[9] << 16) |
                    ((uint32_t)hdr[10] << 8) | hdr[11];
    uint8_t *frame = malloc(sizeof(hdr) + body);
    memcpy(frame, hdr, sizeof(hdr));
    if (recv(fd, frame + sizeof(hdr), body, MSG_WAITALL) != (ssize_t)body) {
        die("capture", "short frame");
    }
    close(fd);
    close(lfd);
    r->a.ops->remove_peer(r->a.t, 99);
    *len_out = sizeof(hdr) + body;
    return frame;
}

struct baseline {
    int fd;
    size_t frame_len;
    _Atomic uint64_t frames;
    double seconds;
};

/* Reader: split the stream into frames by the length prefix. */
static void *baseline_reader(void *arg)
{
    struct baseline *b = arg;
    size_t cap = 4 << 20, have = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        ssize_t n = recv(b->fd, buf + have, cap - have, 0);
        if (n <= 0) {
            break;
        }
        have += (size_t)n;
        size_t at = 0;
        while (have - at >= 12) {
            uint32_t body = ((uint32_t)buf[at + 8] << 24) | ((uint32_t)buf[at + 9] << 16) |
                            ((uint32_t)buf[at + 10] << 8) | buf[at + 11];
            if (have - at < 12 + (size_t)body) {
                break;
            }
            at += 12 + body;
            atomic_fetch_add(&b->frames, 1);
        }
        memmove(buf, buf + at, have - at);
        have -= at;
    }
    free(buf);
    return NULL;
}

static struct result measure_baseline(const uint8_t *frame, size_t len, double seconds)
{
    int sv[2], lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        die("baseline", strerror(errno));
    }
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(sv[0], (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        die("baseline connect", strerror(errno));
    }
    sv[1] = accept(lfd, NULL, NULL);
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct baseline b = {.fd = sv[1], .frame_len = len, .seconds = seconds};
    pthread_t rx;
    pthread_create(&rx, NULL, baseline_reader, &b);
    double start = now_s(), next_report = start + 1.0, end = start + seconds;
    uint64_t bytes = 0;
    while (now_s() < end) {
        if (send(sv[0], frame, len, MSG_NOSIGNAL) != (ssize_t)len) {
            die("baseline send", strerror(errno));
        }
        bytes += len;
        if (now_s() >= next_report) {
            printf("  %-22s %5.1fs  %10llu msgs received\n", "blocking baseline",
                   now_s() - start, (unsigned long long)atomic_load(&b.frames));
            fflush(stdout);
            next_report += 1.0;
        }
    }
    double elapsed = now_s() - start;
    uint64_t frames = atomic_load(&b.frames);
    shutdown(sv[0], SHUT_WR);
    pthread_join(rx, NULL);
    close(sv[0]);
    close(sv[1]);
    close(lfd);
    (void)bytes;
    return (struct result){.msgs_per_s = (double)frames / elapsed,
                           .mb_per_s = (double)frames * (double)len / elapsed / 1e6};
}

static void run_case(const struct options *opt, uint32_t entry_bytes)
{
    static struct run r;
    memset(&r, 0, sizeof(r));
    r.opt = *opt;
    char label[64];
    snprintf(label, sizeof(label), "%u x %u B entries", opt->entries, entry_bytes);
    printf("case: AppendEntries of %s, %.1f s each\n", label, opt->seconds);
    build_msg(&r, entry_bytes);
    side_open(&r.a, 1);
    side_open(&r.b, 2);
    r.a.ops->set_peer(r.a.t, 2, r.b.addr);
    r.b.ops->set_peer(r.b.t, 1, r.a.addr);
    size_t frame_len = 0;
    uint8_t *frame = capture_frame(&r, &frame_len);
    /* Keep the window inside the default 64 MiB per-peer budget (no drops by design). */
    uint32_t fit = (uint32_t)((48u << 20) / frame_len);
    r.opt.window = r.opt.window < fit ? r.opt.window : (fit > 0 ? fit : 1);
    struct result tr = measure_transport(&r, "yggr transport");
    struct result base = measure_baseline(frame, frame_len, opt->seconds);
    printf("  frame %zu bytes, window %u messages\n", frame_len, r.opt.window);
    printf("  %-18s %12.0f msgs/s %10.1f MB/s  (%.0f entries/s, drops %llu)\n", "yggr transport",
           tr.msgs_per_s, tr.mb_per_s, tr.msgs_per_s * opt->entries,
           (unsigned long long)tr.drops);
    printf("  %-18s %12.0f msgs/s %10.1f MB/s\n", "blocking baseline", base.msgs_per_s,
           base.mb_per_s);
    printf("  ratio transport/baseline: %.2f\n\n", tr.msgs_per_s / base.msgs_per_s);
    side_close(&r.a);
    side_close(&r.b);
    free(frame);
    free(r.payload);
    free(r.entries);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench-transport [--seconds S] [--entries N] [--window W]\n"
            "  AppendEntries throughput between two yggr TCP transports on 127.0.0.1, for\n"
            "  entries of 64 B and of 4 KiB, next to a blocking send/recv loop moving the\n"
            "  same frame bytes. Prints progress every second and the ratio.\n"
            "  --seconds S  duration of each measurement (default 3, max 60)\n"
            "  --entries N  entries per AppendEntries (default 64)\n"
            "  --window W   messages in flight (default 256)\n");
}

int main(int argc, char **argv)
{
    struct options opt = {.seconds = 3.0, .entries = 64, .window = 256};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            opt.seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc) {
            opt.entries = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
            opt.window = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (opt.seconds <= 0 || opt.seconds > 60 || opt.entries == 0 || opt.entries > 4096 ||
        opt.window == 0) {
        usage(stderr);
        return 2;
    }
    run_case(&opt, 64);
    run_case(&opt, 4096);
    return 0;
}
