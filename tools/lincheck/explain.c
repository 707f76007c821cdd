/* SPDX-License-Identifier: MIT */
/* lincheck explanations: once the search proved a key non-linearizable, name the anomaly
 * with the few operations that prove it. Each pattern below is itself a proof (checked in
 * this order; the first match is reported):
 *  1. write from nowhere: an ok read returned v, and no ok/unknown write of the key wrote v;
 *  2. read from the future: every write of v was invoked after the read returned;
 *  3. stale read / lost write: a write W2 completed before read R began, every write of R's
 *     value completed before W2 began, so R must have seen W2 or later (lost write when W2's
 *     value was never read by anyone);
 *  4. duplicate apply: v was written once, yet reads R1 < R2 < R3 (real time) returned v, u,
 *     v (u != v): after u overwrote v, v came back (found even when the writes overlap the
 *     reads, where pattern 3 proves nothing);
 *  5. otherwise: what the search found (the zones in conflict, or the deepest point the WGL
 *     search reached and the op it could not place).
 * Patterns 3 and 4 use sweeps (sort + running top-2) so a large key stays O(n log n). */
#include <stdlib.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

/* ---- formatting ---------------------------------------------------------------------------- */

static const char *value_text(const struct lc_history *h, uint32_t value, char *buf, size_t size)
{
    const char *t = lc_history_value(h, value);
    if (strlen(t) > 60) {
        snprintf(buf, size, "%.48s...(%zu bytes)", t, strlen(t));
        return buf;
    }
    return t;
}

static void fmt_span(char *buf, size_t size, const struct lc_op *op)
{
    if (op->result == LC_RESULT_UNKNOWN) {
        snprintf(buf, size, "[%llu, ?] us (outcome unknown)", (unsigned long long)op->invoke_us);
    } else {
        snprintf(buf, size, "[%llu, %llu] us", (unsigned long long)op->invoke_us,
                 (unsigned long long)op->complete_us);
    }
}

/* "write of X at [a, b] us (client c, line l)" and friends. */
const char *explain_op(char *buf, size_t size, const struct lc_history *h,
                       const struct lc_op *op)
{
    char span[96];
    char v[96];
    fmt_span(span, sizeof(span), op);
    if (op->kind == LC_KIND_READ) {
        snprintf(buf, size, "read at %s (client %u, line %u) returning %s", span, op->client,
                 op->line, value_text(h, op->value, v, sizeof(v)));
    } else if (op->is_delete || op->value == LC_NIL) {
        snprintf(buf, size, "delete at %s (client %u, line %u)", span, op->client, op->line);
    } else {
        snprintf(buf, size, "write of %s at %s (client %u, line %u)",
                 value_text(h, op->value, v, sizeof(v)), span, op->client, op->line);
    }
    return buf;
}

/* ---- patterns ---------------------------------------------------------------------------- */

static bool find_nowhere(const struct lc_history *h, struct vmap *m, const struct lc_op *all,
                         size_t n, char *out, size_t size)
{
    char a[512];
    char v[96];
    for (size_t i = 0; i < n; i++) {
        const struct lc_op *r = &all[i];
        if (r->kind != LC_KIND_READ || r->result != LC_RESULT_OK || r->value == LC_NIL) {
            continue;
        }
        const struct vinfo *vi = vmap_get(m, r->value);
        if (vi->writes > 0) {
            continue;
        }
        char b[512];
        snprintf(out, size,
                 "write from nowhere: %s, but no write of %s to this key took effect%s%s",
                 explain_op(a, sizeof(a), h, r), value_text(h, r->value, v, sizeof(v)),
                 vi->fails > 0 ? "; the only such write failed: " : "",
                 vi->fails > 0 ? explain_op(b, sizeof(b), h, vi->a_fail) : "");
        return true;
    }
    return false;
}

static bool find_future(const struct lc_history *h, struct vmap *m, const struct lc_op *all,
                        size_t n, char *out, size_t size)
{
    char a[512];
    char b[512];
    for (size_t i = 0; i < n; i++) {
        const struct lc_op *r = &all[i];
        if (r->kind != LC_KIND_READ || r->result != LC_RESULT_OK || r->value == LC_NIL) {
            continue;
        }
        const struct vinfo *vi = vmap_get(m, r->value);
        if (vi->writes > 0 && vi->min_write_invoke > r->complete_us) {
            snprintf(out, size, "read from the future: %s, but its write only began later: %s",
                     explain_op(a, sizeof(a), h, r), explain_op(b, sizeof(b), h, vi->last_write));
            return true;
        }
    }
    return false;
}

/* Running top-2 (by score) with distinct values. */
struct top2 {
    const void *item[2];
    uint32_t value[2];
    uint64_t score[2];
    int count;
};

static void top2_offer(struct top2 *t, const void *item, uint32_t value, uint64_t score)
{
    if (t->count > 0 && t->value[0] == value) {
        if (score > t->score[0]) {
            t->item[0] = item;
            t->score[0] = score;
        }
        return;
    }
    if (t->count == 0 || score > t->score[0]) {
        t->item[1] = t->item[0];
        t->value[1] = t->value[0];
        t->score[1] = t->score[0];
        t->item[0] = item;
        t->value[0] = value;
        t->score[0] = score;
        t->count = t->count == 0 ? 1 : 2;
    } else if (t->count == 1 || score > t->score[1]) {
        t->item[1] = item;
        t->value[1] = value;
        t->score[1] = score;
        t->count = 2;
    }
}

/* Best entry whose value differs from `value`, or -1. */
static int top2_other(const struct top2 *t, uint32_t value)
{
    for (int i = 0; i < t->count; i++) {
        if (t->value[i] != value) {
            return i;
        }
    }
    return -1;
}

static int by_invoke(const void *a, const void *b)
{
    const struct lc_op *x = *(const struct lc_op *const *)a;
    const struct lc_op *y = *(const struct lc_op *const *)b;
    return x->invoke_us < y->invoke_us ? -1 : x->invoke_us > y->invoke_us;
}

static int by_complete(const void *a, const void *b)
{
    const struct lc_op *x = *(const struct lc_op *const *)a;
    const struct lc_op *y = *(const struct lc_op *const *)b;
    return x->complete_us < y->complete_us ? -1 : x->complete_us > y->complete_us;
}

static int by_min_read_complete(const void *a, const void *b)
{
    const struct vinfo *x = *(const struct vinfo *const *)a;
    const struct vinfo *y = *(const struct vinfo *const *)b;
    return x->min_read_complete < y->min_read_complete ? -1
                                                       : x->min_read_complete >
                                                             y->min_read_complete;
}

/* ok reads of the key, sorted by invoke time (caller frees). */
static const struct lc_op **sorted_reads(const struct lc_op *all, size_t n, size_t *count)
{
    const struct lc_op **reads = malloc((n + 1) * sizeof(*reads));
    *count = 0;
    for (size_t i = 0; reads != NULL && i < n; i++) {
        if (all[i].kind == LC_KIND_READ && all[i].result == LC_RESULT_OK) {
            reads[(*count)++] = &all[i];
        }
    }
    if (reads != NULL) {
        qsort(reads, *count, sizeof(*reads), by_invoke);
    }
    return reads;
}

static bool find_duplicate(const struct lc_history *h, struct vmap *m, const struct lc_op *all,
                           size_t n, char *out, size_t size)
{
    size_t read_count = 0;
    const struct lc_op **reads = sorted_reads(all, n, &read_count);
    const struct vinfo **cands = malloc((m->size + 1) * sizeof(*cands));
    bool found = false;
    size_t cand_count = 0;
    for (size_t i = 0; reads != NULL && cands != NULL && i < m->size; i++) {
        const struct vinfo *vi = &m->slots[i];
        if (vi->value != UINT32_MAX && vi->value != LC_NIL && vi->writes == 1 &&
            vi->reads >= 2 && vi->min_read_complete < vi->max_read_invoke) {
            cands[cand_count++] = vi;
        }
    }
    if (cands != NULL) {
        qsort(cands, cand_count, sizeof(*cands), by_min_read_complete);
    }
    struct top2 t = {0};
    for (size_t i = 0, j = 0; reads != NULL && cands != NULL && i < read_count && !found; i++) {
        const struct lc_op *r2 = reads[i];
        for (; j < cand_count && cands[j]->min_read_complete < r2->invoke_us; j++) {
            top2_offer(&t, cands[j], cands[j]->value, cands[j]->max_read_invoke);
        }
        int k = top2_other(&t, r2->value);
        if (k < 0 || t.score[k] <= r2->complete_us) {
            continue;
        }
        const struct vinfo *vi = t.item[k];
        char w[512];
        char a[512];
        char b[512];
        char c[512];
        snprintf(out, size,
                 "duplicate apply: %s was written once (%s); %s; then %s; then %s: the value "
                 "came back after being overwritten, with no second write (a re-applied "
                 "entry, or a stale read)",
                 lc_history_value(h, vi->value), explain_op(w, sizeof(w), h, vi->last_write),
                 explain_op(a, sizeof(a), h, vi->first_read), explain_op(b, sizeof(b), h, r2),
                 explain_op(c, sizeof(c), h, vi->last_read));
        found = true;
    }
    free(reads);
    free(cands);
    return found;
}

static void describe_stale(const struct lc_history *h, struct vmap *m, const struct lc_op *r,
                           const struct lc_op *w2, char *out, size_t size)
{
    const struct vinfo *vi = vmap_get(m, r->value);
    const struct vinfo *wi = vmap_get(m, w2->value);
    char a[512];
    char b[512];
    char c[600];
    if (vi->writes == 0) {
        snprintf(c, sizeof(c), "the key was nil only initially");
    } else {
        char d[512];
        snprintf(c, sizeof(c), "the value read was last written by %s, which completed before "
                               "that write began",
                 explain_op(d, sizeof(d), h, vi->last_write));
    }
    if (w2->value != LC_NIL && wi->reads == 0) {
        snprintf(out, size,
                 "lost write: %s was acknowledged but no read ever saw it: %s began after it "
                 "completed; %s",
                 explain_op(a, sizeof(a), h, w2), explain_op(b, sizeof(b), h, r), c);
    } else {
        snprintf(out, size, "stale read: %s, but %s completed before the read began; %s",
                 explain_op(b, sizeof(b), h, r), explain_op(a, sizeof(a), h, w2), c);
    }
}

/* Returns 1 = lost write, 2 = stale read, 0 = no match. */
static int find_stale(const struct lc_history *h, struct vmap *m, const struct lc_op *all,
                      size_t n, char *out, size_t size)
{
    size_t read_count = 0;
    const struct lc_op **reads = sorted_reads(all, n, &read_count);
    const struct lc_op **writes = malloc((n + 1) * sizeof(*writes));
    size_t write_count = 0;
    int found = 0;
    for (size_t i = 0; writes != NULL && i < n; i++) {
        if (all[i].kind == LC_KIND_WRITE && all[i].result == LC_RESULT_OK) {
            writes[write_count++] = &all[i];
        }
    }
    if (writes != NULL) {
        qsort(writes, write_count, sizeof(*writes), by_complete);
    }
    struct top2 t = {0};
    for (size_t i = 0, j = 0; reads != NULL && writes != NULL && i < read_count && !found; i++) {
        const struct lc_op *r = reads[i];
        for (; j < write_count && writes[j]->complete_us < r->invoke_us; j++) {
            top2_offer(&t, writes[j], writes[j]->value, writes[j]->invoke_us);
        }
        int k = top2_other(&t, r->value);
        const struct vinfo *vi = vmap_get(m, r->value);
        if (k < 0 || (vi->writes > 0 && (vi->max_write_complete == LC_TIME_INF ||
                                         t.score[k] <= vi->max_write_complete))) {
            continue;
        }
        const struct lc_op *w2 = t.item[k];
        describe_stale(h, m, r, w2, out, size);
        found = w2->value != LC_NIL && vmap_get(m, w2->value)->reads == 0 ? 1 : 2;
    }
    free(reads);
    free(writes);
    return found;
}

enum lc_anomaly explain_violation(const struct lc_history *h, const struct lc_op *all,
                                  size_t all_count, const char *fallback, char *out,
                                  size_t out_size)
{
    TOOL_ASSERT(out != NULL && out_size > 0);
    TOOL_ASSERT(fallback != NULL);
    struct vmap m;
    enum lc_anomaly anomaly = LC_ANOMALY_OTHER;
    if (vmap_build(&m, all, all_count) != 0) {
        snprintf(out, out_size, "not linearizable (out of memory while explaining)");
        return anomaly;
    }
    int stale = 0;
    if (find_nowhere(h, &m, all, all_count, out, out_size)) {
        anomaly = LC_ANOMALY_WRITE_FROM_NOWHERE;
    } else if (find_future(h, &m, all, all_count, out, out_size)) {
        anomaly = LC_ANOMALY_READ_FROM_FUTURE;
    } else if ((stale = find_stale(h, &m, all, all_count, out, out_size)) != 0) {
        anomaly = stale == 1 ? LC_ANOMALY_LOST_WRITE : LC_ANOMALY_STALE_READ;
    } else if (find_duplicate(h, &m, all, all_count, out, out_size)) {
        anomaly = LC_ANOMALY_DUPLICATE_APPLY;
    } else {
        snprintf(out, out_size, "%s", fallback);
    }
    vmap_free(&m);
    return anomaly;
}
