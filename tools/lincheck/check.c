/* SPDX-License-Identifier: MIT */
/* lincheck driver: partition the history per key (registers are independent, so the history
 * is linearizable iff every key's sub-history is), prune what cannot matter, search each key
 * and explain the first violation.
 * Keys whose writes all have distinct values (loadgen's unique values, no deletes) are
 * decided in O(n log n) by gk.c; the others by the memoized WGL search in wgl.c.
 * Pruning (each step keeps linearizability unchanged):
 *  - failed ops and unanswered reads never took effect: dropped;
 *  - an unknown write whose value no read returned can be taken as never applied: dropped
 *    (if it applied, no read saw it, so removing it leaves every read's view intact);
 *  - an unknown write of a value written once and read: it must have applied before the
 *    first read of it returned, so that read's completion becomes its completion;
 *  - every other unknown write is optional, with completion +infinity. */
#include <stdlib.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

const char *lc_anomaly_name(enum lc_anomaly a)
{
    switch (a) {
    case LC_ANOMALY_NONE:
        return "none";
    case LC_ANOMALY_WRITE_FROM_NOWHERE:
        return "write from nowhere";
    case LC_ANOMALY_READ_FROM_FUTURE:
        return "read from the future";
    case LC_ANOMALY_DUPLICATE_APPLY:
        return "duplicate apply";
    case LC_ANOMALY_LOST_WRITE:
        return "lost write";
    case LC_ANOMALY_STALE_READ:
        return "stale read";
    case LC_ANOMALY_OTHER:
        return "not linearizable";
    }
    TOOL_UNREACHABLE();
}

static int compare_ops(const void *a, const void *b)
{
    const struct lc_op *x = a;
    const struct lc_op *y = b;
    if (x->invoke_us != y->invoke_us) {
        return x->invoke_us < y->invoke_us ? -1 : 1;
    }
    if (x->complete_us != y->complete_us) {
        return x->complete_us < y->complete_us ? -1 : 1;
    }
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Copy the ops the search needs from all[] into out[]; returns how many. */
static size_t prune(struct vmap *m, const struct lc_op *all, size_t n, struct lc_op *out)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        struct lc_op op = all[i];
        if (op.result == LC_RESULT_FAIL ||
            (op.kind == LC_KIND_READ && op.result != LC_RESULT_OK)) {
            continue;
        }
        if (op.kind == LC_KIND_WRITE && op.result == LC_RESULT_UNKNOWN) {
            const struct vinfo *vi = vmap_get(m, op.value);
            if (op.value != LC_NIL && vi->reads == 0) {
                continue;
            }
            op.complete_us = LC_TIME_INF;
            if (op.value != LC_NIL && vi->writes == 1 && vi->min_read_complete >= op.invoke_us) {
                op.complete_us = vi->min_read_complete;
            }
        }
        out[kept++] = op;
    }
    qsort(out, kept, sizeof(*out), compare_ops);
    return kept;
}

/* What the search found, for violations no pattern in explain.c matches. */
static void search_fallback(const struct lc_history *h, const struct lc_op *ops, size_t n,
                            bool polynomial, const uint32_t conflict[2],
                            const struct wgl_stuck *stuck, char *out, size_t size)
{
    char op[512];
    if (polynomial && conflict[0] != UINT32_MAX) {
        snprintf(out, size,
                 "no order of the writes explains the reads: %.60s and %.60s each had to be "
                 "the current value over a span of time (from the first return to the last "
                 "invocation among its write and reads), and those spans cannot be ordered",
                 lc_history_value(h, conflict[0]), lc_history_value(h, conflict[1]));
    } else if (polynomial) {
        snprintf(out, size, "a read returned a value that no write of this key wrote before it");
    } else {
        snprintf(out, size,
                 "no linearization exists: the search placed at most %zu of %zu operations "
                 "(register = %.60s there) and then could not place this one before it "
                 "returned: %s",
                 stuck->depth, n, lc_history_value(h, stuck->state),
                 n > 0 ? explain_op(op, sizeof(op), h, &ops[stuck->blocked]) : "-");
    }
}

static void check_key(const struct lc_history *h, const struct lc_options *opt,
                      const struct lc_op *all, size_t n, struct lc_op *scratch,
                      struct lc_key_result *res, size_t *pruned)
{
    struct vmap m;
    struct wgl_stuck stuck;
    uint32_t conflict[2];
    memset(res, 0, sizeof(*res));
    memset(&stuck, 0, sizeof(stuck));
    res->key = all[0].key;
    if (vmap_build(&m, all, n) != 0) {
        res->verdict = LC_VERDICT_UNDECIDED;
        snprintf(res->explanation, sizeof(res->explanation), "out of memory");
        return;
    }
    size_t kept = prune(&m, all, n, scratch);
    vmap_free(&m);
    *pruned += n - kept;
    res->op_count = kept;
    res->verdict = opt->search_only ? LC_VERDICT_UNDECIDED : gk_check(scratch, kept, conflict);
    res->polynomial = res->verdict != LC_VERDICT_UNDECIDED;
    if (!res->polynomial) {
        res->verdict = wgl_check(scratch, kept, opt->max_steps_per_key, &res->steps, &stuck);
    }
    if (res->verdict == LC_VERDICT_VIOLATION) {
        char fallback[1024];
        search_fallback(h, scratch, kept, res->polynomial, conflict, &stuck, fallback,
                        sizeof(fallback));
        res->anomaly = explain_violation(h, all, n, fallback, res->explanation,
                                         sizeof(res->explanation));
    } else if (res->verdict == LC_VERDICT_UNDECIDED) {
        snprintf(res->explanation, sizeof(res->explanation),
                 "undecided: %zu operations needed more than %llu search steps (raise --budget, "
                 "or record fewer operations per key: more --keys or a shorter run)",
                 kept, (unsigned long long)opt->max_steps_per_key);
    }
}

/* Sort a copy of the ops by key (stable by line) so each key's ops are contiguous. */
static struct lc_op *group_by_key(const struct lc_history *h, size_t **starts)
{
    size_t keys = h->keys.count;
    struct lc_op *sorted = malloc((h->count + 1) * sizeof(*sorted));
    *starts = calloc(keys + 2, sizeof(size_t));
    if (sorted == NULL || *starts == NULL) {
        free(sorted);
        free(*starts);
        *starts = NULL;
        return NULL;
    }
    size_t *s = *starts;
    for (size_t i = 0; i < h->count; i++) {
        s[h->ops[i].key + 1]++;
    }
    for (size_t k = 0; k < keys; k++) {
        s[k + 1] += s[k];
    }
    size_t *fill = calloc(keys + 1, sizeof(size_t));
    TOOL_ASSERT(fill != NULL);
    memcpy(fill, s, keys * sizeof(size_t));
    for (size_t i = 0; i < h->count; i++) {
        sorted[fill[h->ops[i].key]++] = h->ops[i];
    }
    free(fill);
    return sorted;
}

static void note_result(struct lc_report *report, const struct lc_key_result *res)
{
    if (res->verdict == LC_VERDICT_VIOLATION) {
        if (report->keys_violating++ == 0) {
            report->first = *res;
        }
        report->verdict = LC_VERDICT_VIOLATION;
    } else if (res->verdict == LC_VERDICT_UNDECIDED) {
        if (report->keys_undecided++ == 0 && report->keys_violating == 0) {
            report->first = *res;
        }
        if (report->verdict == LC_VERDICT_OK) {
            report->verdict = LC_VERDICT_UNDECIDED;
        }
    }
}

enum lc_verdict lc_check(const struct lc_history *h, const struct lc_options *opt,
                         struct lc_report *report)
{
    TOOL_ASSERT(h != NULL && opt != NULL && report != NULL);
    TOOL_ASSERT(opt->max_steps_per_key > 0);
    memset(report, 0, sizeof(*report));
    report->verdict = LC_VERDICT_OK;
    size_t *starts = NULL;
    struct lc_op *sorted = group_by_key(h, &starts);
    struct lc_op *scratch = malloc((h->count + 1) * sizeof(*scratch));
    static struct lc_key_result res;
    if (sorted == NULL || scratch == NULL) {
        tool_die(2, "out of memory for %zu operations", h->count);
    }
    for (size_t k = 0; k < h->keys.count; k++) {
        size_t n = starts[k + 1] - starts[k];
        if (n == 0) {
            continue;
        }
        check_key(h, opt, sorted + starts[k], n, scratch, &res, &report->ops_pruned);
        report->keys++;
        report->ops_searched += res.op_count;
        report->steps += res.steps;
        report->keys_polynomial += res.polynomial ? 1u : 0u;
        note_result(report, &res);
        if (res.verdict != LC_VERDICT_OK && opt->on_key != NULL) {
            opt->on_key(opt->ctx, h, &res);
        }
        if (res.verdict == LC_VERDICT_VIOLATION && !opt->all_keys) {
            break;
        }
    }
    free(sorted);
    free(scratch);
    free(starts);
    return report->verdict;
}
