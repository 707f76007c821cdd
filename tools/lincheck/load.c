/* SPDX-License-Identifier: MIT */
/* lincheck input: JSON-lines histories (loadgen --history format, docs/loadgen.md) parsed
 * into interned ops. Fields: op (read|write|delete; get|set|put|del also accepted), key,
 * value, read_value, invoke_us, complete_us, result (ok|fail|unknown; "info" and "timeout"
 * mean unknown), client (optional). Unknown fields are ignored. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

static uint64_t hash_text(const char *s, size_t len)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
    }
    return h;
}

static int strings_grow(struct lc_strings *s)
{
    uint32_t size = s->table_size == 0 ? 1024 : s->table_size * 2;
    uint32_t *table = calloc(size, sizeof(*table));
    if (table == NULL) {
        return -1;
    }
    for (uint32_t id = 0; id < s->count; id++) {
        uint64_t h = hash_text(s->text[id], strlen(s->text[id]));
        uint32_t i = (uint32_t)(h & (size - 1));
        while (table[i] != 0) {
            i = (i + 1) & (size - 1);
        }
        table[i] = id + 1;
    }
    free(s->table);
    s->table = table;
    s->table_size = size;
    return 0;
}

/* Intern text[0..len) (no NUL inside); returns the id or UINT32_MAX when out of memory. */
static uint32_t strings_intern(struct lc_strings *s, const char *text, size_t len)
{
    if ((uint64_t)(s->count + 1) * 2 > s->table_size && strings_grow(s) != 0) {
        return UINT32_MAX;
    }
    uint64_t h = hash_text(text, len);
    uint32_t i = (uint32_t)(h & (s->table_size - 1));
    for (; s->table[i] != 0; i = (i + 1) & (s->table_size - 1)) {
        const char *t = s->text[s->table[i] - 1];
        if (strncmp(t, text, len) == 0 && t[len] == '\0') {
            return s->table[i] - 1;
        }
    }
    if (s->count == s->cap) {
        uint32_t cap = s->cap == 0 ? 1024 : s->cap * 2;
        char **grown = realloc(s->text, cap * sizeof(*grown));
        if (grown == NULL) {
            return UINT32_MAX;
        }
        s->text = grown;
        s->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return UINT32_MAX;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    s->text[s->count] = copy;
    s->table[i] = s->count + 1;
    return s->count++;
}

static void strings_free(struct lc_strings *s)
{
    for (uint32_t i = 0; i < s->count; i++) {
        free(s->text[i]);
    }
    free(s->text);
    free(s->table);
    memset(s, 0, sizeof(*s));
}

int lc_history_init(struct lc_history *h)
{
    TOOL_ASSERT(h != NULL);
    memset(h, 0, sizeof(*h));
    /* Value id 0 is nil; its text is what the line protocol prints for it. */
    return strings_intern(&h->values, "<nil>", 5) == LC_NIL ? 0 : -1;
}

void lc_history_deinit(struct lc_history *h)
{
    free(h->ops);
    strings_free(&h->keys);
    strings_free(&h->values);
    memset(h, 0, sizeof(*h));
}

const char *lc_history_key(const struct lc_history *h, uint32_t key)
{
    TOOL_ASSERT(key < h->keys.count);
    return h->keys.text[key];
}

const char *lc_history_value(const struct lc_history *h, uint32_t value)
{
    TOOL_ASSERT(value < h->values.count);
    return h->values.text[value];
}

/* ---- a small JSON object reader ------------------------------------------------------- */

enum jtype { JTYPE_STRING, JTYPE_NUMBER, JTYPE_NULL, JTYPE_BOOL };

struct jvalue {
    enum jtype type;
    char *text; /* strings: unescaped into the scratch buffer */
    size_t len;
    uint64_t number;
};

struct jreader {
    const char *p;
    const char *end;
    char *scratch; /* at least as long as the line */
    size_t used;
    const char *error;
};

static void skip_ws(struct jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n')) {
        r->p++;
    }
}

static size_t put_utf8(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    dst[0] = (char)(0xE0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static bool read_escape(struct jreader *r, char *out, size_t *n)
{
    char e = *r->p++;
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *at = strchr(from, e);
    if (e != '\0' && at != NULL) {
        out[(*n)++] = to[at - from];
        return true;
    }
    if (e != 'u' || r->end - r->p < 4) {
        r->error = "bad escape in string";
        return false;
    }
    char hex[5] = {r->p[0], r->p[1], r->p[2], r->p[3], '\0'};
    char *stop = NULL;
    unsigned long cp = strtoul(hex, &stop, 16);
    if (stop != hex + 4 || cp == 0) {
        r->error = "bad \\u escape in string";
        return false;
    }
    r->p += 4;
    *n += put_utf8(out + *n, (uint32_t)cp);
    return true;
}

static bool read_string(struct jreader *r, struct jvalue *v)
{
    if (r->p >= r->end || *r->p != '"') {
        r->error = "expected a string";
        return false;
    }
    r->p++;
    char *out = r->scratch + r->used;
    size_t n = 0;
    while (r->p < r->end && *r->p != '"') {
        if (*r->p == '\\') {
            r->p++;
            if (r->p >= r->end || !read_escape(r, out, &n)) {
                r->error = r->error != NULL ? r->error : "unterminated string";
                return false;
            }
        } else {
            out[n++] = *r->p++;
        }
    }
    if (r->p >= r->end) {
        r->error = "unterminated string";
        return false;
    }
    r->p++;
    out[n] = '\0';
    r->used += n + 1;
    v->type = JTYPE_STRING;
    v->text = out;
    v->len = n;
    return true;
}

static bool read_value(struct jreader *r, struct jvalue *v)
{
    skip_ws(r);
    memset(v, 0, sizeof(*v));
    if (r->p < r->end && *r->p == '"') {
        return read_string(r, v);
    }
    static const char *const words[] = {"null", "true", "false"};
    for (int i = 0; i < 3; i++) {
        size_t wl = strlen(words[i]);
        if ((size_t)(r->end - r->p) >= wl && memcmp(r->p, words[i], wl) == 0) {
            r->p += wl;
            v->type = i == 0 ? JTYPE_NULL : JTYPE_BOOL;
            return true;
        }
    }
    if (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        v->type = JTYPE_NUMBER;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            if (v->number > (UINT64_MAX - 9) / 10) {
                r->error = "number too large";
                return false;
            }
            v->number = v->number * 10 + (uint64_t)(*r->p++ - '0');
        }
        /* Fractions (e.g. 12.5 us) are truncated to whole microseconds. */
        while (r->p < r->end && (*r->p == '.' || (*r->p >= '0' && *r->p <= '9'))) {
            r->p++;
        }
        return true;
    }
    r->error = "expected a string, a non-negative number or null";
    return false;
}

/* ---- history lines ------------------------------------------------------------------------ */

struct fields {
    struct jvalue op, key, value, read_value, result, invoke, complete, client;
    bool has_op, has_key, has_value, has_read_value, has_result, has_invoke, has_complete;
};

static void assign_field(struct fields *f, const char *name, const struct jvalue *v)
{
    static const char *const names[] = {"op",          "key",       "value",       "read_value",
                                        "result",      "invoke_us", "complete_us", "client"};
    for (int i = 0; i < 8; i++) {
        if (strcmp(name, names[i]) != 0) {
            continue;
        }
        struct jvalue *slots[] = {&f->op,     &f->key,    &f->value,    &f->read_value,
                                  &f->result, &f->invoke, &f->complete, &f->client};
        bool *has[] = {&f->has_op,     &f->has_key,    &f->has_value,    &f->has_read_value,
                       &f->has_result, &f->has_invoke, &f->has_complete, NULL};
        *slots[i] = *v;
        if (has[i] != NULL) {
            *has[i] = true;
        }
        return;
    }
}

static bool parse_object(struct jreader *r, struct fields *f)
{
    memset(f, 0, sizeof(*f));
    skip_ws(r);
    if (r->p >= r->end || *r->p++ != '{') {
        r->error = "expected a JSON object";
        return false;
    }
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
    } else {
        for (;;) {
            struct jvalue name;
            struct jvalue v;
            skip_ws(r);
            if (!read_string(r, &name)) {
                return false;
            }
            skip_ws(r);
            if (r->p >= r->end || *r->p++ != ':') {
                r->error = "expected ':' after a field name";
                return false;
            }
            if (!read_value(r, &v)) {
                return false;
            }
            assign_field(f, name.text, &v);
            skip_ws(r);
            char c = r->p < r->end ? *r->p++ : '\0';
            if (c == '}') {
                break;
            }
            if (c != ',') {
                r->error = "expected ',' or '}'";
                return false;
            }
        }
    }
    skip_ws(r);
    if (r->p != r->end) {
        r->error = "trailing characters after the object";
        return false;
    }
    return true;
}

static const char *decode_kind(const struct fields *f, struct lc_op *op)
{
    static const char *const reads[] = {"read", "get"};
    static const char *const writes[] = {"write", "set", "put"};
    static const char *const deletes[] = {"delete", "del"};
    if (!f->has_op || f->op.type != JTYPE_STRING) {
        return "missing \"op\" (read, write or delete)";
    }
    for (int i = 0; i < 3; i++) {
        if (i < 2 && strcmp(f->op.text, reads[i]) == 0) {
            op->kind = LC_KIND_READ;
            return NULL;
        }
        if (strcmp(f->op.text, writes[i]) == 0) {
            op->kind = LC_KIND_WRITE;
            return NULL;
        }
        if (i < 2 && strcmp(f->op.text, deletes[i]) == 0) {
            op->kind = LC_KIND_WRITE;
            op->is_delete = true;
            return NULL;
        }
    }
    return "\"op\" must be read, write or delete";
}

static const char *decode_result(const struct fields *f, struct lc_op *op)
{
    if (!f->has_result || f->result.type != JTYPE_STRING) {
        return "missing \"result\" (ok, fail or unknown)";
    }
    const char *t = f->result.text;
    if (strcmp(t, "ok") == 0) {
        op->result = LC_RESULT_OK;
    } else if (strcmp(t, "fail") == 0) {
        op->result = LC_RESULT_FAIL;
    } else if (strcmp(t, "unknown") == 0 || strcmp(t, "info") == 0 ||
               strcmp(t, "timeout") == 0) {
        op->result = LC_RESULT_UNKNOWN;
    } else {
        return "\"result\" must be ok, fail or unknown";
    }
    return NULL;
}

static const char *decode_times(const struct fields *f, struct lc_op *op)
{
    if (!f->has_invoke || f->invoke.type != JTYPE_NUMBER) {
        return "missing \"invoke_us\"";
    }
    op->invoke_us = f->invoke.number;
    op->complete_us = LC_TIME_INF;
    if (f->has_complete && f->complete.type == JTYPE_NUMBER) {
        op->complete_us = f->complete.number;
    } else if (op->result == LC_RESULT_OK) {
        return "an ok operation needs \"complete_us\"";
    }
    if (op->complete_us < op->invoke_us) {
        return "\"complete_us\" is before \"invoke_us\"";
    }
    return NULL;
}

static const char *intern_value(struct lc_history *h, const struct jvalue *v, uint32_t *out)
{
    if (v->type == JTYPE_NULL) {
        *out = LC_NIL;
        return NULL;
    }
    if (v->type != JTYPE_STRING || memchr(v->text, '\0', v->len) != NULL) {
        return "values must be strings or null";
    }
    *out = strings_intern(&h->values, v->text, v->len);
    return *out == UINT32_MAX ? "out of memory" : NULL;
}

static const char *decode_op(struct lc_history *h, const struct fields *f, struct lc_op *op)
{
    const char *e = decode_kind(f, op);
    e = e != NULL ? e : decode_result(f, op);
    e = e != NULL ? e : decode_times(f, op);
    if (e != NULL) {
        return e;
    }
    if (!f->has_key || f->key.type != JTYPE_STRING) {
        return "missing \"key\"";
    }
    op->key = strings_intern(&h->keys, f->key.text, f->key.len);
    if (op->key == UINT32_MAX) {
        return "out of memory";
    }
    op->client = f->client.type == JTYPE_NUMBER ? (uint32_t)f->client.number : 0;
    if (op->kind == LC_KIND_WRITE && !op->is_delete) {
        if (!f->has_value) {
            return "a write needs \"value\"";
        }
        return intern_value(h, &f->value, &op->value);
    }
    if (op->kind == LC_KIND_READ && op->result == LC_RESULT_OK) {
        if (!f->has_read_value) {
            return "an ok read needs \"read_value\" (null for <nil>)";
        }
        return intern_value(h, &f->read_value, &op->value);
    }
    op->value = LC_NIL;
    return NULL;
}

int lc_history_add_line(struct lc_history *h, const char *line, size_t len, uint32_t line_number,
                        char *err, size_t err_size)
{
    TOOL_ASSERT(h != NULL);
    TOOL_ASSERT(line != NULL);
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) {
        i++;
    }
    if (i == len) {
        return 0;
    }
    char *scratch = malloc(len + 1);
    if (scratch == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    struct jreader r = {.p = line, .end = line + len, .scratch = scratch};
    struct fields f;
    struct lc_op op;
    memset(&op, 0, sizeof(op));
    op.line = line_number;
    const char *e = parse_object(&r, &f) ? decode_op(h, &f, &op) : r.error;
    if (e == NULL && h->count == h->cap) {
        size_t cap = h->cap == 0 ? 4096 : h->cap * 2;
        struct lc_op *grown = realloc(h->ops, cap * sizeof(*grown));
        e = grown == NULL ? "out of memory" : NULL;
        if (grown != NULL) {
            h->ops = grown;
            h->cap = cap;
        }
    }
    free(scratch);
    if (e != NULL) {
        snprintf(err, err_size, "%s", e);
        return -1;
    }
    h->ops[h->count++] = op;
    return 0;
}

int lc_history_load(struct lc_history *h, FILE *f, const char *name, char *err, size_t err_size)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t number = 0;
    char why[256];
    while ((len = getline(&line, &cap, f)) >= 0) {
        number++;
        if (lc_history_add_line(h, line, (size_t)len, number, why, sizeof(why)) != 0) {
            snprintf(err, err_size, "%s:%u: %s", name, number, why);
            free(line);
            return -1;
        }
    }
    int failed = ferror(f);
    free(line);
    if (failed) {
        snprintf(err, err_size, "%s: read error: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}
