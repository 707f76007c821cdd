/* SPDX-License-Identifier: MIT */
/* loadgen wire protocols: request encoding and reply parsing without allocation.
 *
 * Line protocol (reference kv, REFERENCE.md 5.1): one request per line ("SET k v", "GET k",
 * "DEL k"), one reply line per request ending in "\n" (a trailing "\r" is ignored):
 * "OK", "<nil>", a value, "REDIRECT node:<id>", "ERROR <msg>", "PARSE_ERROR <msg>".
 * RESP: requests are arrays of bulk strings; replies are +simple, -error, :integer, $bulk
 * ($-1 = nil). Redirect convention for yggr-kv's RESP mode: "-REDIRECT node:<id>" (also
 * accepted: "-REDIRECT <id>", and redis-cluster style "-MOVED <slot> <host>:<port>").
 * Invariant: proto_parse never reads past buf + len and never consumes a partial reply. */
#include "proto.h"

#include <string.h>
#include <strings.h>

#include "common/tool.h"

size_t proto_request_max(size_t key_len, size_t value_len)
{
    /* RESP: "*3\r\n" + "$3\r\nSET\r\n" + "$<len>\r\n<key>\r\n" + "$<len>\r\n<value>\r\n". */
    return 64 + key_len + value_len;
}

static size_t put_bulk(char *dst, const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = 0;
    dst[n++] = '$';
    n += tool_put_u64(dst + n, a_len + b_len);
    dst[n++] = '\r';
    dst[n++] = '\n';
    if (a_len > 0) {
        memcpy(dst + n, a, a_len);
        n += a_len;
    }
    if (b_len > 0) {
        memcpy(dst + n, b, b_len);
        n += b_len;
    }
    dst[n++] = '\r';
    dst[n++] = '\n';
    return n;
}

static const char *command_name(enum op_kind op)
{
    switch (op) {
    case OP_KIND_READ:
        return "GET";
    case OP_KIND_WRITE:
        return "SET";
    case OP_KIND_DELETE:
        return "DEL";
    }
    TOOL_UNREACHABLE();
}

size_t proto_encode(enum proto_kind proto, char *dst, enum op_kind op, const char *key,
                    size_t key_len, const char *head, size_t head_len, const char *tail,
                    size_t tail_len)
{
    TOOL_ASSERT(dst != NULL);
    TOOL_ASSERT(key_len > 0);
    const char *name = command_name(op);
    size_t n = 0;
    if (proto == PROTO_KIND_LINE) {
        memcpy(dst, name, 3);
        dst[3] = ' ';
        n = 4;
        memcpy(dst + n, key, key_len);
        n += key_len;
        if (op == OP_KIND_WRITE) {
            dst[n++] = ' ';
            memcpy(dst + n, head, head_len);
            n += head_len;
            memcpy(dst + n, tail, tail_len);
            n += tail_len;
        }
        dst[n++] = '\n';
    } else {
        memcpy(dst, op == OP_KIND_WRITE ? "*3\r\n" : "*2\r\n", 4);
        n = 4;
        n += put_bulk(dst + n, name, 3, NULL, 0);
        n += put_bulk(dst + n, key, key_len, NULL, 0);
        if (op == OP_KIND_WRITE) {
            n += put_bulk(dst + n, head, head_len, tail, tail_len);
        }
    }
    TOOL_ASSERT(n <= proto_request_max(key_len, head_len + tail_len));
    return n;
}

static bool has_prefix_ci(const char *text, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);
    return len >= plen && strncasecmp(text, prefix, plen) == 0;
}

bool proto_error_is_definite(const char *text, size_t len)
{
    static const char *const definite[] = {
        "PARSE_ERROR",
        "NOTLEADER",
        "NOLEADER",
        "BUSY",
        "too many in-flight proposals",
        "ERR unknown command",
        "ERR wrong number of arguments",
        "ERR syntax",
    };
    TOOL_ASSERT(text != NULL || len == 0);
    static const char unknown_mark[] = "outcome unknown";
    static const char applied_mark[] = "(not applied)";
    for (size_t i = 0; i + sizeof(unknown_mark) - 1 <= len; i++) {
        if (strncasecmp(text + i, unknown_mark, sizeof(unknown_mark) - 1) == 0) {
            return false; /* an explicit "outcome unknown" wins over everything */
        }
    }
    /* yggr-kv's explicit marker: "ERROR <reason> (not applied)". */
    size_t mark_len = sizeof(applied_mark) - 1;
    if (len >= mark_len && strncasecmp(text + len - mark_len, applied_mark, mark_len) == 0) {
        return true;
    }
    for (size_t i = 0; i < sizeof(definite) / sizeof(definite[0]); i++) {
        if (has_prefix_ci(text, len, definite[i])) {
            return true;
        }
    }
    return false;
}

/* Parse a decimal (optionally negative) number in [p, end). */
static bool parse_i64(const char *p, const char *end, int64_t *out)
{
    bool neg = false;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p == end || end - p > 18) {
        return false;
    }
    int64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* "node:<id>" or "<id>" -> redirect_id; anything else -> redirect_addr. */
static void parse_redirect_target(const char *p, size_t len, struct reply *out)
{
    out->kind = REPLY_KIND_REDIRECT;
    out->redirect_id = 0;
    out->redirect_addr = NULL;
    out->redirect_addr_len = 0;
    while (len > 0 && *p == ' ') {
        p++;
        len--;
    }
    if (len == 0) {
        return;
    }
    const char *id = p;
    size_t id_len = len;
    if (has_prefix_ci(p, len, "node:")) {
        id += 5;
        id_len -= 5;
    }
    int64_t v = 0;
    if (parse_i64(id, id + id_len, &v) && v > 0 && v <= (int64_t)UINT32_MAX) {
        out->redirect_id = (uint32_t)v;
        return;
    }
    out->redirect_addr = p;
    out->redirect_addr_len = len;
}

/* Classify an error text (after "ERROR " or "-"): redirects, definite errors, others. */
static void classify_error(const char *text, size_t len, bool parse_error, struct reply *out)
{
    out->kind = REPLY_KIND_ERROR;
    out->text = text;
    out->len = len;
    out->definite = parse_error || proto_error_is_definite(text, len);
    if (has_prefix_ci(text, len, "REDIRECT") && (len == 8 || text[8] == ' ')) {
        parse_redirect_target(text + 8, len - 8, out);
    } else if (has_prefix_ci(text, len, "MOVED ")) {
        /* "MOVED <slot> <host>:<port>": the target is the last word. */
        const char *sp = memchr(text + 6, ' ', len - 6);
        if (sp != NULL) {
            parse_redirect_target(sp + 1, len - (size_t)(sp + 1 - text), out);
        } else {
            parse_redirect_target(text + 6, len - 6, out);
        }
    }
}

static long parse_line(const char *buf, size_t len, struct reply *out)
{
    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        return 0;
    }
    size_t n = (size_t)(nl - buf);
    long consumed = (long)n + 1;
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    memset(out, 0, sizeof(*out));
    out->text = buf;
    out->len = n;
    if (n == 2 && memcmp(buf, "OK", 2) == 0) {
        out->kind = REPLY_KIND_OK;
    } else if (n == 5 && memcmp(buf, "<nil>", 5) == 0) {
        out->kind = REPLY_KIND_NIL;
    } else if (has_prefix_ci(buf, n, "REDIRECT") && (n == 8 || buf[8] == ' ')) {
        classify_error(buf, n, false, out);
    } else if (n >= 12 && memcmp(buf, "PARSE_ERROR", 11) == 0 && buf[11] == ' ') {
        classify_error(buf + 12, n - 12, true, out);
    } else if (n == 11 && memcmp(buf, "PARSE_ERROR", 11) == 0) {
        classify_error(buf + 11, 0, true, out);
    } else if (n >= 5 && memcmp(buf, "ERROR", 5) == 0 && (n == 5 || buf[5] == ' ')) {
        size_t skip = n == 5 ? 5 : 6;
        classify_error(buf + skip, n - skip, false, out);
    } else {
        out->kind = REPLY_KIND_VALUE;
    }
    return consumed;
}

/* RESP bulk string "$<len>\r\n<data>\r\n" starting at buf; header ends at crlf. */
static long parse_bulk(const char *buf, size_t len, const char *crlf, struct reply *out)
{
    int64_t blen = 0;
    if (!parse_i64(buf + 1, crlf, &blen) || blen < -1) {
        return -1;
    }
    size_t header = (size_t)(crlf - buf) + 2;
    if (blen == -1) {
        out->kind = REPLY_KIND_NIL;
        return (long)header;
    }
    size_t total = header + (size_t)blen + 2;
    if (len < total) {
        return 0;
    }
    if (buf[total - 2] != '\r' || buf[total - 1] != '\n') {
        return -1;
    }
    out->kind = REPLY_KIND_VALUE;
    out->text = buf + header;
    out->len = (size_t)blen;
    return (long)total;
}

static long parse_resp(const char *buf, size_t len, struct reply *out)
{
    if (len < 3) {
        return 0;
    }
    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        return len > 65536 ? -1 : 0;
    }
    if (nl == buf || nl[-1] != '\r') {
        return -1;
    }
    const char *crlf = nl - 1;
    long line = (long)(nl - buf) + 1;
    memset(out, 0, sizeof(*out));
    switch (buf[0]) {
    case '+':
        out->kind = REPLY_KIND_OK;
        out->text = buf + 1;
        out->len = (size_t)(crlf - buf - 1);
        return line;
    case '-':
        classify_error(buf + 1, (size_t)(crlf - buf - 1), false, out);
        return line;
    case ':':
        out->kind = REPLY_KIND_INTEGER;
        return parse_i64(buf + 1, crlf, &out->integer) ? line : -1;
    case '$':
        return parse_bulk(buf, len, crlf, out);
    case '_':
        out->kind = REPLY_KIND_NIL;
        return line;
    case '*':
        /* Only the null array is a valid reply to GET/SET/DEL. */
        if (crlf - buf == 3 && buf[1] == '-' && buf[2] == '1') {
            out->kind = REPLY_KIND_NIL;
            return line;
        }
        return -1;
    default:
        return -1;
    }
}

long proto_parse(enum proto_kind proto, const char *buf, size_t len, struct reply *out)
{
    TOOL_ASSERT(out != NULL);
    TOOL_ASSERT(buf != NULL || len == 0);
    if (len == 0) {
        return 0;
    }
    long n = proto == PROTO_KIND_LINE ? parse_line(buf, len, out) : parse_resp(buf, len, out);
    TOOL_ASSERT(n <= (long)len);
    return n;
}
