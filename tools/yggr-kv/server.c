/* SPDX-License-Identifier: MIT */
/* yggr-kv's client server: the reference kv line protocol and RESP2 on one port,
 * detected from the first byte; pipelined requests, answered in order.
 *
 * Design notes:
 * - One thread, epoll. Each connection parses every complete request in its input
 *   buffer, issues it (yggr_propose / yggr_read, or an immediate answer) and records an
 *   `op` in its in-order ring. yggr completes ops on its own threads: the callback fills
 *   the op, publishes it with a release store and pokes the server's eventfd (once per
 *   batch: `poked` suppresses duplicates). The server then writes every completed prefix.
 * - Backpressure and hostile clients: a connection stops being parsed (and read) while
 *   its op ring is full or its output buffer is over budget; a request line or RESP
 *   element over the size limit gets a protocol error and the connection is closed.
 *   Memory per connection is bounded.
 * - A connection closed by the peer while ops are in flight is kept (socket closed)
 *   until those ops complete, since yggr still holds pointers to them.
 * - Write outcomes: REDIRECT / "not applied" errors are definite; STEPPED_DOWN, SHUTDOWN,
 *   FATAL and TIMEOUT say "outcome unknown" (a client must not assume either).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv.h"
#include "kv_conn.h"

int kv_parse_addr(const char *addr, struct sockaddr_in *out)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
        return -1;
    }
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    return inet_pton(AF_INET, host[0] != '\0' ? host : "0.0.0.0", &out->sin_addr) == 1 ? 0 : -1;
}

void kv_server_poke(struct kv_server *s)
{
    if (!atomic_exchange(&s->poked, true)) {
        uint64_t one = 1;
        ssize_t n = write(s->efd, &one, sizeof(one));
        (void)n;
    }
}

static int listen_on(const char *addr, char *why, size_t n)
{
    struct sockaddr_in sa;
    if (kv_parse_addr(addr, &sa) != 0) {
        snprintf(why, n, "invalid client address \"%s\" (expected host:port)", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, n, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        snprintf(why, n, "cannot listen on %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void accept_all(struct kv_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                if (s->o.verbose) {
                    fprintf(stderr, "yggr-kv: accept: %s\n", strerror(errno));
                }
            }
            return;
        }
        if (s->conn_count >= s->o.max_conns) {
            static const char msg[] = "ERROR too many connections\n";
            ssize_t w = write(fd, msg, sizeof(msg) - 1);
            (void)w;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct kv_conn *c = kv_conn_new(s, fd);
        if (c == NULL) {
            close(fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void drain_efd(struct kv_server *s)
{
    uint64_t v;
    ssize_t n = read(s->efd, &v, sizeof(v));
    (void)n;
    atomic_store(&s->poked, false);
}

static void *server_main(void *arg)
{
    struct kv_server *s = arg;
    pthread_setname_np(pthread_self(), "kv-server");
    struct epoll_event evs[256];
    while (!atomic_load(&s->stop)) {
        int n = epoll_wait(s->epfd, evs, 256, 200);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "yggr-kv: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->lfd) {
                accept_all(s);
            } else if (p == &s->efd) {
                drain_efd(s);
            } else {
                kv_conn_event(p, evs[i].events);
            }
        }
        kv_conn_flush_busy(s);
        kv_conn_reap(s);
        atomic_fetch_add(&s->loops, 1);
    }
    return NULL;
}

int kv_server_start(const struct kv_server_options *o, struct kv_server **out, char *why,
                    size_t n)
{
    struct kv_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    s->o = *o;
    if (s->o.max_conns == 0) {
        s->o.max_conns = 10000;
    }
    atomic_init(&s->poked, false);
    atomic_init(&s->stop, false);
    atomic_init(&s->quiesce, false);
    atomic_init(&s->loops, 0);
    atomic_init(&s->joins, 0);
    s->lfd = listen_on(o->client_addr, why, n);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->lfd < 0 || s->efd < 0 || s->epfd < 0) {
        if (s->lfd >= 0) {
            close(s->lfd);
        }
        free(s);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lfd};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev);
    ev.data.ptr = &s->efd;
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd, &ev);
    if (pthread_create(&s->thread, NULL, server_main, s) != 0) {
        snprintf(why, n, "cannot create the server thread");
        close(s->lfd);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void kv_server_quiesce(struct kv_server *s)
{
    atomic_store(&s->quiesce, true);
    /* Two full loop iterations after the flag: the server thread is past any parse that
     * started before it. */
    uint64_t seen = atomic_load(&s->loops);
    while (atomic_load(&s->loops) < seen + 2) {
        kv_server_poke(s);
        usleep(1000);
    }
    while (atomic_load(&s->joins) > 0) {
        usleep(10000);
    }
}

void kv_server_stop(struct kv_server *s)
{
    if (s == NULL) {
        return;
    }
    atomic_store(&s->stop, true);
    kv_server_poke(s);
    pthread_join(s->thread, NULL);
    close(s->lfd);
    kv_conn_close_all(s);
    close(s->efd);
    close(s->epfd);
    free(s);
}
