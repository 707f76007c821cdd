/* SPDX-License-Identifier: MIT */
/* Shared helpers for the stand-alone tools: asserts, messages, clocks, parsing, addresses. */
#include "tool.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *tool_name = "yggr-tool";

void tool_set_name(const char *name)
{
    TOOL_ASSERT(name != NULL);
    tool_name = name;
}

_Noreturn void tool_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s: assertion failed: %s (%s:%d)\n", tool_name, expr, file, line);
    fflush(stderr);
    abort();
}

_Noreturn void tool_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

void tool_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t tool_now_ns(void)
{
    struct timespec ts;
    int rc = clock_gettime(CLOCK_MONOTONIC, &ts);
    TOOL_ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

uint64_t tool_now_us(void)
{
    return tool_now_ns() / 1000u;
}

size_t tool_put_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    TOOL_ASSERT(dst != NULL);
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        dst[i] = tmp[n - 1 - i];
    }
    return n;
}

bool tool_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    TOOL_ASSERT(out != NULL);
    TOOL_ASSERT(min <= max);
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

bool tool_parse_double(const char *text, double min, double max, double *out)
{
    TOOL_ASSERT(out != NULL);
    if (text == NULL || text[0] == '\0') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || isnan(v) || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Split "host:port" / "[v6]:port" into host and port strings. */
static int split_host_port(const char *text, char *host, size_t host_size, const char **port)
{
    const char *colon = NULL;
    const char *h = text;
    size_t hlen = 0;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            return -1;
        }
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            return -1;
        }
        hlen = (size_t)(colon - text);
    }
    if (hlen == 0 || hlen >= host_size || colon[1] == '\0') {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

int tool_resolve(const char *text, struct tool_addr *out, char *err, size_t err_size)
{
    TOOL_ASSERT(text != NULL);
    TOOL_ASSERT(out != NULL);
    char host[128];
    const char *port = NULL;
    uint64_t port_num = 0;
    if (strlen(text) >= sizeof(out->text) ||
        split_host_port(text, host, sizeof(host), &port) != 0) {
        snprintf(err, err_size, "'%s' is not HOST:PORT (e.g. 127.0.0.1:8001)", text);
        return -1;
    }
    if (!tool_parse_u64(port, 1, 65535, &port_num)) {
        snprintf(err, err_size, "'%s': port must be a number in 1..65535", text);
        return -1;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, err_size, "cannot resolve '%s': %s", text, gai_strerror(rc));
        return -1;
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->sa_len = res->ai_addrlen;
    snprintf(out->text, sizeof(out->text), "%s", text);
    freeaddrinfo(res);
    return 0;
}

bool tool_addr_equal(const struct tool_addr *a, const struct tool_addr *b)
{
    TOOL_ASSERT(a != NULL);
    TOOL_ASSERT(b != NULL);
    if (a->sa.ss_family != b->sa.ss_family) {
        return false;
    }
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)&a->sa;
        const struct sockaddr_in *y = (const struct sockaddr_in *)(const void *)&b->sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)&a->sa;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)&b->sa;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}
