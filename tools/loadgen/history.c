/* SPDX-License-Identifier: MIT */
/* loadgen history: one JSON object per line per operation attempt, for tools/lincheck.
 *   {"client":3,"node":1,"op":"write","key":"k17","value":"c3-s42","invoke_us":123,
 *    "complete_us":456,"result":"ok","read_value":null}
 * op: read | write | delete; result: ok | fail (definitely not applied) | unknown (a write
 * whose outcome is unknown: it may take effect at any time after invoke_us, or never).
 * value: the write's unique id (the written bytes are "<id>-" + filler); null for reads and
 * deletes. read_value: a read's result: the id of the value read, null for <nil>, or the raw
 * bytes when they are not a value loadgen writes. Times are microseconds since loadgen
 * started (one monotonic clock). Each worker buffers lines and appends whole buffers to the
 * file under the run lock, so lines never interleave. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

static size_t put_str(char *dst, const char *s)
{
    size_t n = strlen(s);
    memcpy(dst, s, n);
    return n;
}

/* JSON string with escapes; dst needs 2 + 6 * len bytes. */
static size_t put_json_string(char *dst, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    dst[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(dst + n, "\\u00", 4);
            dst[n + 4] = hex[ch >> 4];
            dst[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            dst[n++] = (char)ch;
        }
    }
    dst[n++] = '"';
    return n;
}

size_t history_value_id(char *dst, uint32_t client, uint64_t seq)
{
    size_t n = 0;
    dst[n++] = 'c';
    n += tool_put_u64(dst + n, client);
    dst[n++] = '-';
    dst[n++] = 's';
    n += tool_put_u64(dst + n, seq);
    return n;
}

static const char *op_name(uint8_t kind)
{
    switch ((enum op_kind)kind) {
    case OP_KIND_READ:
        return "read";
    case OP_KIND_WRITE:
        return "write";
    case OP_KIND_DELETE:
        return "delete";
    }
    TOOL_UNREACHABLE();
}

void history_flush(struct lg_worker *w)
{
    struct lg_run *run = w->run;
    TOOL_ASSERT(run->history_fd >= 0);
    pthread_mutex_lock(&run->lock);
    size_t off = 0;
    while (off < w->hlen) {
        ssize_t n = write(run->history_fd, w->hbuf + off, w->hlen - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            tool_die(1, "writing --history %s failed: %s (the history would be incomplete)",
                     run->opt->history_path, n < 0 ? strerror(errno) : "short write");
        }
        off += (size_t)n;
    }
    pthread_mutex_unlock(&run->lock);
    w->hlen = 0;
}

void history_record(struct lg_worker *w, const struct lg_conn *c, const struct lg_op *op,
                    uint64_t complete_us, const char *result, const char *read_value,
                    size_t read_len, bool read_raw)
{
    const struct lg_run *run = w->run;
    TOOL_ASSERT(w->hbuf != NULL);
    TOOL_ASSERT(result != NULL);
    if (read_raw && read_len > (size_t)run->opt->value_size + 64) {
        read_len = (size_t)run->opt->value_size + 64; /* foreign value: keep a prefix */
    }
    if (w->hlen + 320 + 6 * read_len > w->hcap) {
        history_flush(w);
    }
    TOOL_ASSERT(w->hlen + 320 + 6 * read_len <= w->hcap);
    char *p = w->hbuf + w->hlen;
    size_t n = put_str(p, "{\"client\":");
    n += tool_put_u64(p + n, c->client);
    n += put_str(p + n, ",\"node\":");
    n += tool_put_u64(p + n, run->opt->node_ids[c->node]);
    n += put_str(p + n, ",\"op\":\"");
    n += put_str(p + n, op_name(op->kind));
    n += put_str(p + n, "\",\"key\":\"k");
    n += tool_put_u64(p + n, op->key);
    n += put_str(p + n, "\",\"value\":");
    if (op->kind == OP_KIND_WRITE) {
        p[n++] = '"';
        n += history_value_id(p + n, c->client, op->seq);
        p[n++] = '"';
    } else {
        n += put_str(p + n, "null");
    }
    n += put_str(p + n, ",\"invoke_us\":");
    n += tool_put_u64(p + n, op->invoke_us - run->start_us);
    n += put_str(p + n, ",\"complete_us\":");
    n += tool_put_u64(p + n, complete_us - run->start_us);
    n += put_str(p + n, ",\"result\":\"");
    n += put_str(p + n, result);
    n += put_str(p + n, "\",\"read_value\":");
    if (read_value != NULL && op->kind == OP_KIND_READ) {
        n += put_json_string(p + n, read_value, read_len);
    } else {
        n += put_str(p + n, "null");
    }
    p[n++] = '}';
    p[n++] = '\n';
    w->hlen += n;
}
