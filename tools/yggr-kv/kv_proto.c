/* SPDX-License-Identifier: MIT */
/* yggr-kv protocols: the reference kv line protocol and RESP2 (redis-cli,
 * redis-benchmark), parsing and reply formatting.
 *
 * Line protocol (one request per line, replies end with "\n"):
 *   SET <key> <value>  -> OK             GET <key> -> <value> | <nil>
 *   DEL <key>          -> <old> | <nil>  INFO      -> role:.. term:.. commit:.. leader:..
 *   REMOVE <id>        -> OK | REDIRECT  DIGEST    -> applied:<index> digest:<hex>
 *   errors: REDIRECT node:<id> | ERROR <message> | PARSE_ERROR <message>
 * RESP2: PING, ECHO, SET, GET, DEL, EXISTS-less subset, INFO, COMMAND, CONFIG GET, JOIN,
 *   REMOVE, DIGEST (a simple string "+applied:<index> digest:<hex>");
 *   redirects as "-REDIRECT node:<id>", unknown outcomes as "-STEPPEDDOWN ...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_conn.h"

void kv_conn_out(struct kv_conn *c, const char *p, uint32_t n);

static void out_str(struct kv_conn *c, const char *s)
{
    kv_conn_out(c, s, (uint32_t)strlen(s));
}

static void protocol_error(struct kv_conn *c, const char *what)
{
    char msg[160];
    if (c->proto == KV_PROTO_RESP) {
        snprintf(msg, sizeof(msg), "-ERR Protocol error: %s", what);
    } else {
        snprintf(msg, sizeof(msg), "PARSE_ERROR %s", what);
    }
    kv_conn_reply_text(c, msg, true);
    c->closing = true;
}

static bool word_eq(const char *p, uint32_t n, const char *w)
{
    size_t wl = strlen(w);
    if (n != wl) {
        return false;
    }
    for (size_t i = 0; i < wl; i++) {
        char a = p[i];
        if (a >= 'a' && a <= 'z') {
            a = (char)(a - 32);
        }
        if (a != w[i]) {
            return false;
        }
    }
    return true;
}

/* A decimal node id of exactly n bytes; 0 (invalid) when it is not one. */
static uint64_t parse_id(const char *p, uint32_t n)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) {
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* ---- Line protocol ---- */

static void line_dispatch(struct kv_conn *c, char *p, uint32_t n)
{
    char *sp = memchr(p, ' ', n);
    uint32_t cl = sp != NULL ? (uint32_t)(sp - p) : n;
    char *arg = sp != NULL ? sp + 1 : p + n;
    uint32_t al = sp != NULL ? n - cl - 1 : 0;
    char *sp2 = memchr(arg, ' ', al);
    uint32_t kl = sp2 != NULL ? (uint32_t)(sp2 - arg) : al;
    if (word_eq(p, cl, "SET")) {
        if (sp2 == NULL || kl == 0) {
            kv_conn_reply_text(c, "PARSE_ERROR usage: SET <key> <value>", true);
            return;
        }
        kv_op_set(c, arg, kl, sp2 + 1, al - kl - 1);
    } else if (word_eq(p, cl, "GET") || word_eq(p, cl, "DEL")) {
        if (al == 0 || sp2 != NULL) {
            kv_conn_reply_text(c, "PARSE_ERROR usage: GET|DEL <key>", true);
            return;
        }
        if (word_eq(p, cl, "GET")) {
            kv_op_get(c, arg, al);
        } else {
            kv_op_del(c, arg, al);
        }
    } else if (word_eq(p, cl, "INFO")) {
        kv_op_info(c);
    } else if (word_eq(p, cl, "PING")) {
        kv_conn_reply_text(c, "PONG", false);
    } else if (word_eq(p, cl, "JOIN") && sp2 != NULL) {
        kv_op_join(c, strtoull(arg, NULL, 10), sp2 + 1, al - kl - 1);
    } else if (word_eq(p, cl, "REMOVE") && al > 0 && sp2 == NULL) {
        kv_op_remove(c, parse_id(arg, al));
    } else if (word_eq(p, cl, "DIGEST") && al == 0) {
        kv_op_digest(c);
    } else {
        kv_conn_reply_text(c, "PARSE_ERROR unknown command (expected SET, GET, DEL, INFO)",
                           true);
    }
}

static long line_parse(struct kv_conn *c)
{
    char *nl = memchr(c->in, '\n', c->in_len);
    if (nl == NULL) {
        if (c->in_len > KV_MAX_REQUEST) {
            protocol_error(c, "request line too long");
            return -1;
        }
        return 0;
    }
    uint32_t n = (uint32_t)(nl - c->in);
    long used = (long)n + 1;
    if (n > 0 && c->in[n - 1] == '\r') {
        n--;
    }
    if (n > KV_MAX_REQUEST) {
        protocol_error(c, "request line too long");
        return -1;
    }
    line_dispatch(c, c->in, n);
    return used;
}

/* ---- RESP2 ---- */

#define RESP_MAX_ARGS 8

/* Parse "<prefix><int>\r\n" at p; returns bytes used, 0 incomplete, -1 malformed. */
static long resp_int(const char *p, uint32_t n, char prefix, long *out)
{
    if (n == 0) {
        return 0;
    }
    if (p[0] != prefix) {
        return -1;
    }
    long v = 0;
    bool neg = false;
    for (uint32_t i = 1; i < n; i++) {
        if (p[i] == '\r') {
            if (i + 1 >= n) {
                return 0;
            }
            if (p[i + 1] != '\n' || i == 1) {
                return -1;
            }
            *out = neg ? -v : v;
            return (long)i + 2;
        }
        if (p[i] == '-' && i == 1) {
            neg = true;
        } else if (p[i] < '0' || p[i] > '9' || v > 100000000L) {
            return -1;
        } else {
            v = v * 10 + (p[i] - '0');
        }
    }
    return n > 24 ? -1 : 0;
}

static void resp_dispatch(struct kv_conn *c, char **a, const uint32_t *l, long argc);

static long resp_parse(struct kv_conn *c)
{
    long argc = 0;
    long pos = resp_int(c->in, c->in_len, '*', &argc);
    if (pos <= 0) {
        if (pos < 0) {
            protocol_error(c, "expected '*' array header");
        }
        return pos;
    }
    if (argc < 1 || argc > RESP_MAX_ARGS) {
        protocol_error(c, "invalid multibulk length");
        return -1;
    }
    char *args[RESP_MAX_ARGS];
    uint32_t lens[RESP_MAX_ARGS];
    for (long i = 0; i < argc; i++) {
        long blen = 0;
        long used = resp_int(c->in + pos, c->in_len - (uint32_t)pos, '$', &blen);
        if (used <= 0) {
            if (used < 0) {
                protocol_error(c, "expected '$' bulk string");
            }
            return used;
        }
        if (blen < 0 || blen > (long)KV_MAX_REQUEST) {
            protocol_error(c, "invalid bulk length");
            return -1;
        }
        pos += used;
        if ((uint32_t)pos + (uint32_t)blen + 2 > c->in_len) {
            return 0;
        }
        if (c->in[pos + blen] != '\r' || c->in[pos + blen + 1] != '\n') {
            protocol_error(c, "bulk string not terminated by CRLF");
            return -1;
        }
        args[i] = c->in + pos;
        lens[i] = (uint32_t)blen;
        pos += blen + 2;
    }
    resp_dispatch(c, args, lens, argc);
    return pos;
}

static void resp_dispatch(struct kv_conn *c, char **a, const uint32_t *l, long argc)
{
    if (word_eq(a[0], l[0], "SET") && argc >= 3) {
        kv_op_set(c, a[1], l[1], a[2], l[2]);
    } else if (word_eq(a[0], l[0], "GET") && argc == 2) {
        kv_op_get(c, a[1], l[1]);
    } else if (word_eq(a[0], l[0], "DEL") && argc == 2) {
        kv_op_del(c, a[1], l[1]);
    } else if (word_eq(a[0], l[0], "PING")) {
        kv_conn_reply_text(c, "+PONG", false);
    } else if (word_eq(a[0], l[0], "INFO")) {
        kv_op_info(c);
    } else if (word_eq(a[0], l[0], "COMMAND") || word_eq(a[0], l[0], "CONFIG")) {
        kv_conn_reply_text(c, "*0", false); /* redis-cli / redis-benchmark start-up probes */
    } else if (word_eq(a[0], l[0], "JOIN") && argc == 3) {
        char id[24];
        uint32_t n = l[1] < sizeof(id) - 1 ? l[1] : (uint32_t)sizeof(id) - 1;
        memcpy(id, a[1], n);
        id[n] = '\0';
        kv_op_join(c, strtoull(id, NULL, 10), a[2], l[2]);
    } else if (word_eq(a[0], l[0], "REMOVE") && argc == 2) {
        kv_op_remove(c, parse_id(a[1], l[1]));
    } else if (word_eq(a[0], l[0], "DIGEST") && argc == 1) {
        kv_op_digest(c);
    } else {
        char msg[96];
        snprintf(msg, sizeof(msg), "-ERR unknown command or wrong number of arguments for '%.*s'",
                 (int)(l[0] < 32 ? l[0] : 32), a[0]);
        kv_conn_reply_text(c, msg, true);
    }
}

long kv_proto_parse_one(struct kv_conn *c)
{
    if (c->in_len == 0) {
        return 0;
    }
    if (c->proto == KV_PROTO_UNKNOWN) {
        c->proto = c->in[0] == '*' ? KV_PROTO_RESP : KV_PROTO_LINE;
    }
    if (atomic_load(&c->s->quiesce)) {
        kv_conn_reply_text(c, c->proto == KV_PROTO_RESP ? "-ERR shutting down"
                                                        : "ERROR node is shutting down",
                           true);
        c->closing = true;
        return -1;
    }
    return c->proto == KV_PROTO_RESP ? resp_parse(c) : line_parse(c);
}

/* ---- Replies ---- */

static void format_error(struct kv_conn *c, const struct kv_op *op)
{
    char msg[200];
    bool resp = c->proto == KV_PROTO_RESP;
    bool write = op->kind == KV_OP_SET || op->kind == KV_OP_DEL;
    switch (op->err) {
    case YGGR_ERR_NOT_LEADER:
        snprintf(msg, sizeof(msg), "%sREDIRECT node:%llu", resp ? "-" : "",
                 (unsigned long long)op->hint);
        break;
    case YGGR_ERR_STEPPED_DOWN:
    case YGGR_ERR_SHUTDOWN:
    case YGGR_ERR_FATAL:
    case YGGR_ERR_TIMEOUT:
        snprintf(msg, sizeof(msg), "%s%s%s", resp ? "-STEPPEDDOWN " : "ERROR ",
                 yggr_strerror(op->err), write ? " (outcome unknown)" : "");
        break;
    default:
        snprintf(msg, sizeof(msg), "%s%s%s", resp ? "-ERR " : "ERROR ", yggr_strerror(op->err),
                 write ? " (not applied)" : "");
        break;
    }
    out_str(c, msg);
    out_str(c, resp ? "\r\n" : "\n");
}

static void format_value(struct kv_conn *c, const struct kv_op *op)
{
    bool resp = c->proto == KV_PROTO_RESP;
    if (op->kind == KV_OP_DEL && resp) {
        out_str(c, op->nil ? ":0\r\n" : ":1\r\n");
        return;
    }
    if (op->nil) {
        out_str(c, resp ? "$-1\r\n" : "<nil>\n");
        return;
    }
    if (resp) {
        char hdr[24];
        snprintf(hdr, sizeof(hdr), "$%u\r\n", op->len);
        out_str(c, hdr);
    }
    kv_conn_out(c, op->data, op->len);
    out_str(c, resp ? "\r\n" : "\n");
}

void kv_proto_format(struct kv_conn *c, const struct kv_op *op)
{
    bool resp = c->proto == KV_PROTO_RESP;
    if (op->kind == KV_OP_TEXT) {
        kv_conn_out(c, op->data, op->len);
        out_str(c, resp ? "\r\n" : "\n");
        return;
    }
    if (op->err != 0) {
        format_error(c, op);
        return;
    }
    switch ((enum kv_op_kind)op->kind) {
    case KV_OP_SET:
    case KV_OP_JOIN:
        out_str(c, resp ? "+OK\r\n" : "OK\n");
        return;
    case KV_OP_GET:
    case KV_OP_DEL:
        format_value(c, op);
        return;
    case KV_OP_TEXT:
        return;
    }
}
