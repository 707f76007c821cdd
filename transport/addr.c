/* SPDX-License-Identifier: MIT */
/* Numeric socket addresses ("1.2.3.4:5", "[::1]:5", "localhost:5") and socket setup. */

/*
 * Design notes
 * ------------
 * Addresses are numeric on purpose: resolving names would block the calling (driver)
 * thread. "localhost" is the one name accepted, as 127.0.0.1.
 *
 * Every socket gets TCP_NODELAY (REFERENCE 8.3 #27: Nagle plus delayed ACKs stall small
 * RPCs) and SOCK_CLOEXEC. Outgoing sockets bind to the node's own listen IP (port chosen
 * at connect time via IP_BIND_ADDRESS_NO_PORT) so a test harness can partition nodes on
 * 127.0.0.1/127.0.0.2/127.0.0.3 pair by pair with packet filters. Sockets stay blocking:
 * io_uring drives them asynchronously either way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcp.h"
#include "yggr_assert.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int parse_port(const char *text, uint16_t *port)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' || v > 65535) {
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int addr_parse(const char *text, struct tcp_addr *out)
{
    char host[64];
    YGGR_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (text == NULL) {
        return -EINVAL;
    }
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host)) {
        return -EINVAL;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    uint16_t port;
    if (parse_port(colon + 1, &port) != 0) {
        return -EINVAL;
    }
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &out->u.in6.sin6_addr) != 1) {
            return -EINVAL;
        }
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        out->len = sizeof(out->u.in6);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        strcpy(host, "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, &out->u.in4.sin_addr) != 1) {
        return -EINVAL;
    }
    out->u.in4.sin_family = AF_INET;
    out->u.in4.sin_port = htons(port);
    out->len = sizeof(out->u.in4);
    YGGR_ASSERT(out->len > 0);
    return 0;
}

bool addr_is_wildcard(const struct tcp_addr *a)
{
    YGGR_ASSERT(a->len > 0);
    if (a->u.sa.sa_family == AF_INET) {
        return a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
    }
    return memcmp(&a->u.in6.sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0;
}

bool addr_equal(const struct tcp_addr *a, const struct tcp_addr *b)
{
    YGGR_ASSERT(a != NULL && b != NULL);
    return a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
}

uint16_t addr_port(const struct tcp_addr *a)
{
    YGGR_ASSERT(a->len > 0);
    return ntohs(a->u.sa.sa_family == AF_INET ? a->u.in4.sin_port : a->u.in6.sin6_port);
}

void addr_format(const struct tcp_addr *a, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    YGGR_ASSERT(out != NULL && size > 0);
    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.in4.sin_addr, host, sizeof(host));
        snprintf(out, size, "%s:%u", host, addr_port(a));
    } else {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof(host));
        snprintf(out, size, "[%s]:%u", host, addr_port(a));
    }
}

static int set_int_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : -errno;
}

int addr_listen(const struct tcp_addr *a, int *fd_out)
{
    YGGR_ASSERT(a->len > 0);
    YGGR_ASSERT(fd_out != NULL);
    int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    /* SO_REUSEADDR: a restarted node rebinds its port despite TIME_WAIT connections. */
    int rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && bind(fd, &a->u.sa, a->len) != 0) {
        rc = -errno;
    }
    if (rc == 0 && listen(fd, 128) != 0) {
        rc = -errno;
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int addr_socket_for(const struct tcp_addr *peer, const struct tcp_addr *bind_to, int *fd_out)
{
    YGGR_ASSERT(peer->len > 0);
    YGGR_ASSERT(fd_out != NULL);
    int fd = socket(peer->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int rc = set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (rc == 0 && bind_to != NULL && bind_to->u.sa.sa_family == peer->u.sa.sa_family) {
        struct tcp_addr local = *bind_to;
        if (local.u.sa.sa_family == AF_INET) {
            local.u.in4.sin_port = 0;
        } else {
            local.u.in6.sin6_port = 0;
        }
        /* Best effort: without it bind() picks the port now, which still works. */
        (void)set_int_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
        if (bind(fd, &local.u.sa, local.len) != 0) {
            rc = -errno;
        }
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}
