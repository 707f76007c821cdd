/* SPDX-License-Identifier: MIT */
/* lincheck: planted anomalies are flagged and named; valid histories (concurrent overlaps,
 * indeterminate writes that did or did not happen) pass; a generated 100,000-operation
 * history checks quickly (the time is printed, not asserted). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lincheck.h"

static struct lc_history h;

static void setup(void)
{
    cr_assert(eq(int, lc_history_init(&h), 0));
}

static void teardown(void)
{
    lc_history_deinit(&h);
}

TestSuite(lincheck, .init = setup, .fini = teardown);

static const char *js(char *buf, size_t size, const char *s)
{
    if (s == NULL) {
        return "null";
    }
    snprintf(buf, size, "\"%s\"", s);
    return buf;
}

/* One history line; complete == 0 with result "unknown" leaves complete_us out. */
static void add(const char *op, const char *key, const char *value, unsigned long long invoke,
                unsigned long long complete, const char *result, const char *read_value)
{
    char line[512];
    char v[128];
    char r[128];
    char c[64] = "";
    if (complete > 0) {
        snprintf(c, sizeof(c), ",\"complete_us\":%llu", complete);
    }
    snprintf(line, sizeof(line),
             "{\"client\":1,\"op\":\"%s\",\"key\":\"%s\",\"value\":%s,\"invoke_us\":%llu%s,"
             "\"result\":\"%s\",\"read_value\":%s}",
             op, key, js(v, sizeof(v), value), invoke, c, result, js(r, sizeof(r), read_value));
    char err[256];
    int rc = lc_history_add_line(&h, line, strlen(line), (uint32_t)h.count + 1, err, sizeof(err));
    cr_assert(eq(int, rc, 0), "%s: %s", line, err);
}

static struct lc_report report;

static enum lc_verdict check(void)
{
    struct lc_options opt = {.max_steps_per_key = 1000000};
    enum lc_verdict v = lc_check(&h, &opt, &report);
    if (v != LC_VERDICT_OK) {
        cr_log_info("%s: %s", lc_anomaly_name(report.first.anomaly), report.first.explanation);
    }
    return v;
}

static void expect_anomaly(enum lc_anomaly want)
{
    cr_assert(eq(int, check(), LC_VERDICT_VIOLATION));
    cr_assert(eq(str, (char *)lc_anomaly_name(report.first.anomaly), (char *)lc_anomaly_name(want)),
              "explanation: %s", report.first.explanation);
}

Test(lincheck, sequential_history_passes)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("read", "k1", NULL, 20, 30, "ok", "a");
    add("delete", "k1", NULL, 40, 50, "ok", NULL);
    add("read", "k1", NULL, 60, 70, "ok", NULL);
    add("read", "k1", NULL, 80, 90, "ok", "<nil>");
    cr_assert(eq(int, check(), LC_VERDICT_OK));
    cr_assert(eq(sz, report.keys, 1));
}

Test(lincheck, concurrent_reads_may_see_old_then_new)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("write", "k1", "b", 20, 40, "ok", NULL);
    add("read", "k1", NULL, 25, 30, "ok", "a");
    add("read", "k1", NULL, 26, 31, "ok", "b");
    add("read", "k1", NULL, 21, 50, "ok", "a");
    cr_assert(eq(int, check(), LC_VERDICT_OK));
}

Test(lincheck, indeterminate_write_that_happened_passes)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("write", "k1", "b", 20, 0, "unknown", NULL);
    add("read", "k1", NULL, 30, 40, "ok", "a");
    add("read", "k1", NULL, 100, 110, "ok", "b");
    add("read", "k1", NULL, 120, 130, "ok", "b");
    cr_assert(eq(int, check(), LC_VERDICT_OK));
}

Test(lincheck, indeterminate_write_that_never_happened_passes)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("write", "k1", "b", 20, 25, "unknown", NULL);
    add("read", "k1", NULL, 100, 110, "ok", "a");
    add("delete", "k1", NULL, 200, 0, "unknown", NULL);
    add("read", "k1", NULL, 300, 310, "ok", "a");
    add("write", "k1", "c", 400, 410, "fail", NULL);
    add("read", "k1", NULL, 500, 510, "ok", "a");
    cr_assert(eq(int, check(), LC_VERDICT_OK));
}

Test(lincheck, indeterminate_delete_may_land_late)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("delete", "k1", NULL, 20, 0, "unknown", NULL);
    add("read", "k1", NULL, 30, 40, "ok", "a");
    add("read", "k1", NULL, 50, 60, "ok", NULL);
    cr_assert(eq(int, check(), LC_VERDICT_OK));
}

Test(lincheck, stale_read_is_flagged)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("write", "k1", "b", 20, 30, "ok", NULL);
    add("read", "k1", NULL, 40, 50, "ok", "b");
    add("read", "k1", NULL, 60, 70, "ok", "a");
    expect_anomaly(LC_ANOMALY_STALE_READ);
    cr_assert(not(eq(ptr, strstr(report.first.explanation, "[60, 70]"), NULL)),
              "the explanation names the stale read: %s", report.first.explanation);
}

Test(lincheck, stale_nil_read_after_a_completed_write_is_flagged)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("read", "k1", NULL, 20, 30, "ok", NULL);
    add("read", "k1", NULL, 40, 50, "ok", "a");
    expect_anomaly(LC_ANOMALY_STALE_READ);
}

Test(lincheck, acknowledged_write_never_seen_is_a_lost_write)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("read", "k1", NULL, 20, 30, "ok", NULL);
    expect_anomaly(LC_ANOMALY_LOST_WRITE);
}

Test(lincheck, lost_write_is_flagged)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("write", "k1", "b", 20, 30, "ok", NULL);
    add("read", "k1", NULL, 40, 50, "ok", "a");
    add("read", "k1", NULL, 60, 70, "ok", "a");
    expect_anomaly(LC_ANOMALY_LOST_WRITE);
}

Test(lincheck, write_from_nowhere_is_flagged)
{
    add("write", "k1", "a", 0, 10, "ok", NULL);
    add("read", "k1", NULL, 20, 30, "ok", "zzz");
    expect_anomaly(LC_ANOMALY_WRITE_FROM_NOWHERE);
}

Test(lincheck, reading_a_failed_write_is_a_write_from_nowhere)
{
    add("write", "k1", "a", 0, 10, "fail", NULL);
    add("read", "k1", NULL, 20, 30, "ok", "a");
    expect_anomaly(LC_ANOMALY_WRITE_FROM_NOWHERE);
    cr_assert(not(eq(ptr, strstr(report.first.explanation, "failed"), NULL)));
}

Test(lincheck, duplicate_apply_is_flagged)
{
    /* v is written once; u's write overlaps the reads, so no two-op stale proof exists. */
    add("write", "k1", "v", 0, 10, "ok", NULL);
    add("write", "k1", "u", 5, 30, "ok", NULL);
    add("read", "k1", NULL, 11, 12, "ok", "v");
    add("read", "k1", NULL, 13, 14, "ok", "u");
    add("read", "k1", NULL, 15, 16, "ok", "v");
    expect_anomaly(LC_ANOMALY_DUPLICATE_APPLY);
}

Test(lincheck, read_from_the_future_is_flagged)
{
    add("read", "k1", NULL, 0, 10, "ok", "a");
    add("write", "k1", "a", 20, 30, "ok", NULL);
    expect_anomaly(LC_ANOMALY_READ_FROM_FUTURE);
    lc_history_deinit(&h);
    setup();
    add("read", "k1", NULL, 0, 5, "ok", "b");
    add("write", "k1", "b", 10, 0, "unknown", NULL);
    expect_anomaly(LC_ANOMALY_READ_FROM_FUTURE);
}

Test(lincheck, the_bad_key_is_named_among_many_good_ones)
{
    char key[16];
    char val[16];
    for (int k = 0; k < 50; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(val, sizeof(val), "v%d", k);
        add("write", key, val, 0, 10, "ok", NULL);
        add("read", key, NULL, 20, 30, "ok", k == 37 ? NULL : val);
    }
    cr_assert(eq(int, check(), LC_VERDICT_VIOLATION));
    cr_assert(eq(str, (char *)lc_history_key(&h, report.first.key), "k37"));
}

Test(lincheck, a_spent_budget_is_undecided_not_linearizable)
{
    for (int i = 0; i < 40; i++) {
        char v[16];
        snprintf(v, sizeof(v), "w%d", i);
        add("write", "k1", v, (unsigned long long)i, 1000, "ok", NULL);
    }
    add("read", "k1", NULL, 1001, 1002, "ok", "w0");
    struct lc_options opt = {.max_steps_per_key = 5, .search_only = true};
    cr_assert(eq(int, lc_check(&h, &opt, &report), LC_VERDICT_UNDECIDED));
    cr_assert(eq(sz, report.keys_undecided, 1));
}

Test(lincheck, malformed_lines_are_rejected_with_a_reason)
{
    char err[256];
    const char *bad[] = {
        "{\"op\":\"read\"",
        "{\"op\":\"frobnicate\",\"key\":\"k\",\"invoke_us\":1,\"complete_us\":2,\"result\":\"ok\"}",
        ("{\"op\":\"write\",\"key\":\"k\",\"value\":\"a\",\"invoke_us\":5,\"complete_us\":2,"
         "\"result\":\"ok\"}"),
        "{\"op\":\"read\",\"key\":\"k\",\"invoke_us\":1,\"complete_us\":2,\"result\":\"ok\"}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_assert(eq(int, lc_history_add_line(&h, bad[i], strlen(bad[i]), 1, err, sizeof(err)), -1),
                  "accepted: %s", bad[i]);
        cr_assert(gt(sz, strlen(err), 0));
    }
    cr_assert(eq(int, lc_history_add_line(&h, "  \n", 3, 1, err, sizeof(err)), 0));
    cr_assert(eq(sz, h.count, 0));
}

/* A linearizable history: ops linearize at strictly increasing points lin = 10 i, invoked up
 * to `spread` us before and completed up to `spread` us after it. 50% reads, `deletes`% deletes,
 * 5% indeterminate writes (3 in 5 applied), the rest ok writes. */
static void generate(size_t n, unsigned keys, unsigned spread, uint64_t seed, unsigned deletes)
{
    static char state[1024][32];
    memset(state, 0, sizeof(state));
    cr_assert(le(u32, keys, 1024));
    for (size_t i = 0; i < n; i++) {
        uint64_t r = seed += 0x9E3779B97F4A7C15ull;
        r = (r ^ (r >> 31)) * 0xBF58476D1CE4E5B9ull;
        r ^= r >> 29;
        unsigned long long lin = 1000000 + 10 * (unsigned long long)i;
        unsigned long long inv = lin - (r >> 8) % spread;
        unsigned long long comp = lin + (r >> 20) % spread;
        char key[16];
        char val[32];
        unsigned k = (unsigned)((r >> 40) % keys);
        unsigned kind = (unsigned)(r % 100);
        snprintf(key, sizeof(key), "k%u", k);
        snprintf(val, sizeof(val), "c%u-s%zu", (unsigned)(r % 64), i);
        if (kind < 50) {
            add("read", key, NULL, inv, comp, "ok", state[k][0] ? state[k] : NULL);
        } else if (kind < 50 + deletes) {
            add("delete", key, NULL, inv, comp, "ok", NULL);
            state[k][0] = '\0';
        } else if (kind < 55 + deletes) {
            add("write", key, val, inv, comp, "unknown", NULL);
            if (kind < 53 + deletes) {
                snprintf(state[k], sizeof(state[k]), "%s", val);
            }
        } else {
            add("write", key, val, inv, comp, "ok", NULL);
            snprintf(state[k], sizeof(state[k]), "%s", val);
        }
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(lincheck, generated_100k_operation_history_checks_quickly)
{
    /* With deletes, nil is written many times: every key goes through the WGL search. */
    generate(100000, 10, 300, 7, 5);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert(eq(int, check(), LC_VERDICT_OK));
    double secs = seconds_since(&t0);
    fprintf(stderr, "lincheck: 100000 ops on 10 keys with deletes (WGL search) checked in %.3f "
                    "s, %llu steps\n",
            secs, (unsigned long long)report.steps);
    cr_assert(eq(sz, report.keys, 10));
    cr_assert(eq(sz, report.keys_polynomial, 0));
}

Test(lincheck, generated_100k_operations_on_one_hot_key_check_quickly)
{
    /* ~60 operations in flight on one key at all times: distinct values, so the zone check
     * decides it (the WGL search alone would run out of budget here). */
    generate(100000, 1, 300, 9, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert(eq(int, check(), LC_VERDICT_OK));
    fprintf(stderr, "lincheck: 100000 ops on 1 key (distinct values, zone check) checked in "
                    "%.3f s\n",
            seconds_since(&t0));
    cr_assert(eq(sz, report.keys_polynomial, 1));
}

Test(lincheck, one_planted_lost_write_in_100k_operations_is_found)
{
    generate(100000, 10, 300, 11, 5);
    /* Far after everything: "final" was acknowledged, yet the next read sees nil. */
    add("write", "k3", "final", 9000000, 9000010, "ok", NULL);
    add("read", "k3", NULL, 9000100, 9000110, "ok", NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert(eq(int, check(), LC_VERDICT_VIOLATION));
    fprintf(stderr, "lincheck: violation in 100000 ops found in %.3f s\n", seconds_since(&t0));
    cr_assert(eq(str, (char *)lc_history_key(&h, report.first.key), "k3"));
    cr_assert(eq(int, report.first.anomaly, LC_ANOMALY_LOST_WRITE));
}

/* Differential test: on random small histories with distinct write values, the polynomial
 * zone check (gk.c) and the exhaustive WGL search (wgl.c) must agree. Times come from a tiny
 * range so ties (touching intervals) are common. Half the histories are linearizable by
 * construction, half have random read results (mostly violations). */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t random_history(uint64_t *seed, struct lc_op *ops, bool valid)
{
    size_t n = 2 + next_random(seed) % 9;
    uint32_t state = LC_NIL;
    uint32_t writes = 0;
    for (size_t i = 0; i < n; i++) {
        struct lc_op *op = &ops[i];
        memset(op, 0, sizeof(*op));
        uint64_t lin = 2 * i + 1;
        op->invoke_us = lin - next_random(seed) % (lin + 1) / 2 * (next_random(seed) % 3);
        op->complete_us = lin + next_random(seed) % 6;
        op->result = LC_RESULT_OK;
        op->line = (uint32_t)i + 1;
        if (next_random(seed) % 2 == 0) {
            op->kind = LC_KIND_WRITE;
            op->value = ++writes; /* distinct, non-nil */
            state = op->value;
        } else {
            op->kind = LC_KIND_READ;
            op->value = valid ? state : (uint32_t)(next_random(seed) % (writes + 1));
        }
    }
    return n;
}

static int by_invoke_time(const void *a, const void *b)
{
    const struct lc_op *x = a;
    const struct lc_op *y = b;
    return x->invoke_us < y->invoke_us ? -1 : x->invoke_us > y->invoke_us;
}

Test(lincheck, zone_check_agrees_with_the_search_on_random_histories)
{
    uint64_t seed = 2024;
    struct lc_op ops[16];
    int verdicts[3] = {0, 0, 0};
    for (int round = 0; round < 20000; round++) {
        size_t n = random_history(&seed, ops, round % 2 == 0);
        qsort(ops, n, sizeof(ops[0]), by_invoke_time);
        uint32_t conflict[2];
        uint64_t steps = 0;
        struct wgl_stuck stuck;
        enum lc_verdict gk = gk_check(ops, n, conflict);
        enum lc_verdict wgl = wgl_check(ops, n, 10000000, &steps, &stuck);
        cr_assert(not(eq(int, wgl, LC_VERDICT_UNDECIDED)));
        if (gk != wgl) {
            for (size_t i = 0; i < n; i++) {
                cr_log_error("%s value %u [%llu, %llu]", ops[i].kind ? "write" : "read",
                             ops[i].value, (unsigned long long)ops[i].invoke_us,
                             (unsigned long long)ops[i].complete_us);
            }
        }
        cr_assert(eq(int, gk, wgl), "round %d: zones say %d, search says %d", round, gk, wgl);
        verdicts[wgl]++;
    }
    cr_log_info("agreed on %d linearizable and %d violating histories", verdicts[0], verdicts[1]);
    cr_assert(gt(int, verdicts[0], 5000));
    cr_assert(gt(int, verdicts[1], 2000));
}
