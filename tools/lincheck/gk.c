/* SPDX-License-Identifier: MIT */
/* Polynomial check for keys whose writes all have distinct values (what loadgen writes):
 * Gibbons and Korach's result that a register history with known read-to-write mapping is
 * decidable in polynomial time, in the zone form of Golab, Li and Shah ("Analyzing
 * consistency properties for fun and profit", PODC 2011):
 *   cluster(v) = the write of v and the reads returning v; f = min finish, s = max start;
 *   f < s: forward zone [f, s] (v must be current throughout); else backward zone [s, f].
 *   Linearizable iff no read finishes before its write starts, no two forward zones overlap,
 *   and no backward zone lies inside a forward zone.
 * The initial nil is a virtual write before everything. Keys with deletes (nil written more
 * than once) or repeated values are left to the WGL search (gk_check answers UNDECIDED).
 * Tests cross-check this against the search on random histories. O(n log n). */
#include <stdlib.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

struct zone {
    int64_t lo;
    int64_t hi;
    uint32_t value;
    bool forward;
};

static int by_value(const void *a, const void *b)
{
    const struct lc_op *x = *(const struct lc_op *const *)a;
    const struct lc_op *y = *(const struct lc_op *const *)b;
    return x->value < y->value ? -1 : x->value > y->value;
}

static int by_lo(const void *a, const void *b)
{
    const struct zone *x = a;
    const struct zone *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Index of the write of `value` among writes sorted by value, or count when absent. */
static size_t find_write(const struct lc_op **writes, size_t count, uint32_t value)
{
    size_t lo = 0;
    size_t hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (writes[mid]->value < value) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < count && writes[lo]->value == value ? lo : count;
}

/* Writes sorted by value; NULL when the key does not qualify (or out of memory). */
static const struct lc_op **unique_writes(const struct lc_op *ops, size_t n, size_t *count)
{
    const struct lc_op **writes = malloc((n + 1) * sizeof(*writes));
    *count = 0;
    for (size_t i = 0; writes != NULL && i < n; i++) {
        if (ops[i].kind != LC_KIND_WRITE) {
            continue;
        }
        if (ops[i].value == LC_NIL || ops[i].complete_us == LC_TIME_INF) {
            free(writes);
            return NULL;
        }
        writes[(*count)++] = &ops[i];
    }
    if (writes == NULL) {
        return NULL;
    }
    qsort(writes, *count, sizeof(*writes), by_value);
    for (size_t i = 1; i < *count; i++) {
        if (writes[i]->value == writes[i - 1]->value) {
            free(writes);
            return NULL;
        }
    }
    return writes;
}

/* Cluster bounds: f = min finish, s = max start, over the write (or the virtual initial nil
 * write at -1 for cluster `count`) and its reads. false: a read has no write, or finishes
 * before its write starts (then the key is not linearizable). */
static bool cluster_bounds(const struct lc_op *ops, size_t n, const struct lc_op **writes,
                           size_t count, int64_t *f, int64_t *s, bool *nil_read)
{
    for (size_t i = 0; i < count; i++) {
        f[i] = (int64_t)writes[i]->complete_us;
        s[i] = (int64_t)writes[i]->invoke_us;
    }
    f[count] = -1;
    s[count] = -1;
    *nil_read = false;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != LC_KIND_READ) {
            continue;
        }
        size_t c = ops[i].value == LC_NIL ? count : find_write(writes, count, ops[i].value);
        if (c == count && ops[i].value != LC_NIL) {
            return false;
        }
        if (c < count && ops[i].complete_us < writes[c]->invoke_us) {
            return false;
        }
        *nil_read = *nil_read || c == count;
        f[c] = (int64_t)ops[i].complete_us < f[c] ? (int64_t)ops[i].complete_us : f[c];
        s[c] = (int64_t)ops[i].invoke_us > s[c] ? (int64_t)ops[i].invoke_us : s[c];
    }
    return true;
}

/* Conflicts among sorted forward zones and against backward zones. */
static bool zones_conflict(struct zone *fwd, size_t nf, const struct zone *back, size_t nb,
                           uint32_t conflict[2])
{
    qsort(fwd, nf, sizeof(*fwd), by_lo);
    int64_t *prefix_hi = malloc((nf + 1) * sizeof(int64_t));
    size_t *prefix_at = malloc((nf + 1) * sizeof(size_t));
    TOOL_ASSERT(prefix_hi != NULL && prefix_at != NULL);
    bool found = false;
    for (size_t i = 0; i < nf && !found; i++) {
        /* Sorted by lo: zone i overlaps an earlier one iff it starts before their max end. */
        if (i > 0 && fwd[i].lo < prefix_hi[i - 1]) {
            conflict[0] = fwd[prefix_at[i - 1]].value;
            conflict[1] = fwd[i].value;
            found = true;
        }
        bool take = i == 0 || fwd[i].hi > prefix_hi[i - 1];
        prefix_hi[i] = take ? fwd[i].hi : prefix_hi[i - 1];
        prefix_at[i] = take ? i : prefix_at[i - 1];
    }
    for (size_t b = 0; b < nb && !found; b++) {
        /* Forward zones with lo < back.lo: the one reaching furthest must not pass back.hi. */
        size_t lo = 0;
        size_t hi = nf;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (fwd[mid].lo < back[b].lo) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo > 0 && prefix_hi[lo - 1] > back[b].hi) {
            conflict[0] = fwd[prefix_at[lo - 1]].value;
            conflict[1] = back[b].value;
            found = true;
        }
    }
    free(prefix_hi);
    free(prefix_at);
    return found;
}

enum lc_verdict gk_check(const struct lc_op *ops, size_t n, uint32_t conflict[2])
{
    TOOL_ASSERT(conflict != NULL);
    conflict[0] = UINT32_MAX;
    conflict[1] = UINT32_MAX;
    size_t count = 0;
    const struct lc_op **writes = unique_writes(ops, n, &count);
    if (writes == NULL) {
        return LC_VERDICT_UNDECIDED;
    }
    int64_t *f = malloc((count + 1) * sizeof(int64_t));
    int64_t *s = malloc((count + 1) * sizeof(int64_t));
    struct zone *fwd = malloc((count + 1) * sizeof(*fwd));
    struct zone *back = malloc((count + 1) * sizeof(*back));
    enum lc_verdict verdict = LC_VERDICT_UNDECIDED;
    bool nil_read = false;
    if (f == NULL || s == NULL || fwd == NULL || back == NULL) {
        goto out;
    }
    verdict = LC_VERDICT_VIOLATION;
    if (!cluster_bounds(ops, n, writes, count, f, s, &nil_read)) {
        goto out;
    }
    size_t nf = 0;
    size_t nb = 0;
    for (size_t c = 0; c <= count; c++) {
        if (c == count && !nil_read) {
            break;
        }
        uint32_t value = c < count ? writes[c]->value : LC_NIL;
        if (f[c] < s[c]) {
            fwd[nf++] = (struct zone){f[c], s[c], value, true};
        } else {
            back[nb++] = (struct zone){s[c], f[c], value, false};
        }
    }
    if (!zones_conflict(fwd, nf, back, nb, conflict)) {
        verdict = LC_VERDICT_OK;
    }
out:
    free(writes);
    free(f);
    free(s);
    free(fwd);
    free(back);
    return verdict;
}
