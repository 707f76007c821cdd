/* SPDX-License-Identifier: MIT */
/* loadgen internals: the HDR histogram, request encoding, reply parsing (line protocol and
 * RESP, complete and partial), history value ids and command-line validation. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "hdr.h"
#include "loadgen.h"
#include "proto.h"

Test(hdr, every_value_lands_in_a_bucket_within_one_percent)
{
    for (uint64_t v = 0; v < (UINT64_C(1) << 32); v = v < 4096 ? v + 1 : v + v / 97 + 1) {
        size_t i = hdr_index(v);
        cr_assert(lt(sz, i, (size_t)HDR_BUCKETS));
        uint64_t low = hdr_bucket_low(i);
        uint64_t high = hdr_bucket_high(i);
        cr_assert(le(u64, low, v), "v=%llu low=%llu", (unsigned long long)v,
                  (unsigned long long)low);
        cr_assert(ge(u64, high, v), "v=%llu high=%llu", (unsigned long long)v,
                  (unsigned long long)high);
        double width = (double)(high - low);
        cr_assert(width <= (double)v / 128.0 + 1e-9, "bucket of %llu too wide",
                  (unsigned long long)v);
    }
}

Test(hdr, percentiles_of_a_uniform_distribution_are_within_one_percent)
{
    static struct hdr h;
    hdr_reset(&h);
    for (uint64_t v = 1; v <= 100000; v++) {
        hdr_record(&h, v);
    }
    cr_assert(eq(u64, h.count, 100000));
    cr_assert(eq(u64, h.min, 1));
    cr_assert(eq(u64, h.max, 100000));
    const double pcts[] = {50, 90, 99, 99.9};
    for (int i = 0; i < 4; i++) {
        double want = pcts[i] * 1000.0;
        double got = (double)hdr_percentile(&h, pcts[i]);
        cr_assert(got >= want && got <= want * 1.01, "p%g: got %g want %g", pcts[i], got, want);
    }
    cr_assert(eq(u64, hdr_percentile(&h, 100), 100000));
    cr_assert(eq(u64, hdr_percentile(&h, 0), 1));
}

Test(hdr, merge_adds_counts_and_keeps_extremes)
{
    static struct hdr a;
    static struct hdr b;
    hdr_reset(&a);
    hdr_reset(&b);
    hdr_record(&a, 10);
    hdr_record(&b, 5000);
    hdr_record(&b, 7);
    hdr_merge(&a, &b);
    cr_assert(eq(u64, a.count, 3));
    cr_assert(eq(u64, a.min, 7));
    cr_assert(eq(u64, a.max, 5000));
    cr_assert(eq(u64, hdr_percentile(&a, 50), 10));
    cr_assert(eq(u64, hdr_percentile(&a, 100), 5000));
}

Test(hdr, huge_values_are_clamped_not_lost)
{
    static struct hdr h;
    hdr_reset(&h);
    hdr_record(&h, UINT64_C(1) << 40);
    cr_assert(eq(u64, h.count, 1));
    cr_assert(eq(sz, hdr_index(UINT64_C(1) << 40), hdr_index(HDR_VALUE_MAX)));
}

Test(proto, line_requests_are_one_line_each)
{
    char buf[256];
    size_t n = proto_encode(PROTO_KIND_LINE, buf, OP_KIND_WRITE, "k17", 3, "c3-s42-", 7, "abc", 3);
    cr_assert(eq(str, (buf[n] = '\0', buf), "SET k17 c3-s42-abc\n"));
    n = proto_encode(PROTO_KIND_LINE, buf, OP_KIND_READ, "k1", 2, NULL, 0, NULL, 0);
    cr_assert(eq(str, (buf[n] = '\0', buf), "GET k1\n"));
    n = proto_encode(PROTO_KIND_LINE, buf, OP_KIND_DELETE, "k1", 2, NULL, 0, NULL, 0);
    cr_assert(eq(str, (buf[n] = '\0', buf), "DEL k1\n"));
}

Test(proto, resp_requests_are_arrays_of_bulk_strings)
{
    char buf[256];
    size_t n = proto_encode(PROTO_KIND_RESP, buf, OP_KIND_WRITE, "k1", 2, "ab", 2, "cde", 3);
    buf[n] = '\0';
    cr_assert(eq(str, buf, "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\nabcde\r\n"));
    n = proto_encode(PROTO_KIND_RESP, buf, OP_KIND_READ, "k22", 3, NULL, 0, NULL, 0);
    buf[n] = '\0';
    cr_assert(eq(str, buf, "*2\r\n$3\r\nGET\r\n$3\r\nk22\r\n"));
    cr_assert(le(sz, n, proto_request_max(3, 0)));
}

static struct reply parse_ok(enum proto_kind p, const char *text)
{
    struct reply r;
    long n = proto_parse(p, text, strlen(text), &r);
    cr_assert(eq(long, n, (long)strlen(text)), "parsing '%s' consumed %ld", text, n);
    return r;
}

Test(proto, line_replies_are_classified)
{
    cr_assert(eq(int, parse_ok(PROTO_KIND_LINE, "OK\n").kind, REPLY_KIND_OK));
    cr_assert(eq(int, parse_ok(PROTO_KIND_LINE, "<nil>\r\n").kind, REPLY_KIND_NIL));
    struct reply v = parse_ok(PROTO_KIND_LINE, "c1-s2-abc def\n");
    cr_assert(eq(int, v.kind, REPLY_KIND_VALUE));
    cr_assert(eq(sz, v.len, 13));
    struct reply r = parse_ok(PROTO_KIND_LINE, "REDIRECT node:3\n");
    cr_assert(eq(int, r.kind, REPLY_KIND_REDIRECT));
    cr_assert(eq(u32, r.redirect_id, 3));
    struct reply e = parse_ok(PROTO_KIND_LINE, "ERROR leader stepped down; outcome unknown\n");
    cr_assert(eq(int, e.kind, REPLY_KIND_ERROR));
    cr_assert(not(e.definite), "an unknown-outcome error must not count as 'not applied'");
    struct reply p = parse_ok(PROTO_KIND_LINE, "PARSE_ERROR bad command\n");
    cr_assert(eq(int, p.kind, REPLY_KIND_ERROR));
    cr_assert(p.definite);
    cr_assert(parse_ok(PROTO_KIND_LINE, "ERROR too many in-flight proposals; retry later\n")
                  .definite);
}

Test(proto, yggr_kv_outcome_markers_decide)
{
    /* yggr-kv says explicitly whether a failed write may have been applied. */
    cr_assert(parse_ok(PROTO_KIND_LINE, "ERROR no leader known yet (not applied)\n").definite);
    cr_assert(parse_ok(PROTO_KIND_RESP, "-ERR busy (not applied)\r\n").definite);
    cr_assert(not(parse_ok(PROTO_KIND_LINE, "ERROR timed out (outcome unknown)\n").definite));
    cr_assert(not(parse_ok(PROTO_KIND_RESP, "-STEPPEDDOWN stepped down (outcome unknown)\r\n")
                      .definite));
    cr_assert(not(parse_ok(PROTO_KIND_LINE, "ERROR BUSY but outcome unknown\n").definite));
    struct reply r = parse_ok(PROTO_KIND_LINE, "REDIRECT node:0\n");
    cr_assert(eq(int, r.kind, REPLY_KIND_REDIRECT));
    cr_assert(eq(u32, r.redirect_id, 0), "node:0 means no leader known: no usable hint");
}

Test(proto, partial_replies_wait_for_more_bytes)
{
    struct reply r;
    cr_assert(eq(long, proto_parse(PROTO_KIND_LINE, "O", 1, &r), 0));
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, "$5\r\nhel", 8, &r), 0));
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, "+OK\r", 4, &r), 0));
    const char two[] = "+OK\r\n$-1\r\n";
    long n = proto_parse(PROTO_KIND_RESP, two, sizeof(two) - 1, &r);
    cr_assert(eq(long, n, 5));
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, two + n, sizeof(two) - 1 - (size_t)n, &r),
                 5));
    cr_assert(eq(int, r.kind, REPLY_KIND_NIL));
}

Test(proto, resp_replies_are_classified)
{
    struct reply b = parse_ok(PROTO_KIND_RESP, "$5\r\nhello\r\n");
    cr_assert(eq(int, b.kind, REPLY_KIND_VALUE));
    cr_assert(eq(int, memcmp(b.text, "hello", 5), 0));
    cr_assert(eq(i64, parse_ok(PROTO_KIND_RESP, ":1\r\n").integer, 1));
    struct reply r = parse_ok(PROTO_KIND_RESP, "-REDIRECT node:2\r\n");
    cr_assert(eq(int, r.kind, REPLY_KIND_REDIRECT));
    cr_assert(eq(u32, r.redirect_id, 2));
    cr_assert(eq(u32, parse_ok(PROTO_KIND_RESP, "-REDIRECT 7\r\n").redirect_id, 7));
    struct reply m = parse_ok(PROTO_KIND_RESP, "-MOVED 3999 127.0.0.1:6381\r\n");
    cr_assert(eq(int, m.kind, REPLY_KIND_REDIRECT));
    cr_assert(eq(sz, m.redirect_addr_len, strlen("127.0.0.1:6381")));
    cr_assert(not(parse_ok(PROTO_KIND_RESP, "-STEPPEDDOWN outcome unknown\r\n").definite));
    cr_assert(parse_ok(PROTO_KIND_RESP, "-NOLEADER no leader known yet\r\n").definite);
    cr_assert(parse_ok(PROTO_KIND_RESP, "-ERR unknown command 'FOO'\r\n").definite);
}

Test(proto, garbage_is_rejected)
{
    struct reply r;
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, "?what\r\n", 7, &r), -1));
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, "$abc\r\n", 6, &r), -1));
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, "$3\r\nabcXY", 9, &r), -1));
    cr_assert(eq(long, proto_parse(PROTO_KIND_RESP, "*2\r\n", 4, &r), -1));
}

Test(history, value_ids_name_client_and_sequence)
{
    char buf[64];
    size_t n = history_value_id(buf, 3, 42);
    buf[n] = '\0';
    cr_assert(eq(str, buf, "c3-s42"));
    n = history_value_id(buf, 4294967295u, UINT64_MAX);
    buf[n] = '\0';
    cr_assert(eq(str, buf, "c4294967295-s18446744073709551615"));
}

static int parse_args(struct lg_options *opt, int argc, const char **argv)
{
    return options_parse(argc, (char **)argv, opt);
}

Test(options, node_ids_default_to_target_order)
{
    static struct lg_options opt;
    const char *argv[] = {"loadgen", "--targets", "127.0.0.1:8001,127.0.0.1:8002", "--depth", "8",
                          NULL};
    cr_assert(eq(int, parse_args(&opt, 5, argv), 0));
    cr_assert(eq(u32, opt.node_count, 2));
    cr_assert(eq(u32, opt.node_ids[1], 2));
    cr_assert(eq(u32, opt.depth, 8));
    cr_assert(eq(int, opt.protocol, PROTO_KIND_LINE));
}

Test(options, node_map_overrides_ids_and_starts_at_the_first_target)
{
    static struct lg_options opt;
    const char *argv[] = {"loadgen", "--targets", "127.0.0.1:8003", "--node-map",
                          "7=127.0.0.1:8001,9=127.0.0.1:8003", NULL};
    cr_assert(eq(int, parse_args(&opt, 5, argv), 0));
    cr_assert(eq(u32, opt.node_count, 2));
    cr_assert(eq(u32, opt.node_ids[0], 9), "the first target is where connections start");
}

Test(options, bad_combinations_are_usage_errors)
{
    static struct lg_options opt;
    const char *a[] = {"loadgen", "--targets", "127.0.0.1:1", "--duration", "1", "--requests",
                       "5", NULL};
    cr_assert(eq(int, parse_args(&opt, 7, a), -1));
    const char *b[] = {"loadgen", "--targets", "127.0.0.1:1", "--node-map", "1=127.0.0.1:2", NULL};
    cr_assert(eq(int, parse_args(&opt, 5, b), -1), "a target missing from --node-map");
    const char *c[] = {"loadgen", "--targets", "nohost", NULL};
    cr_assert(eq(int, parse_args(&opt, 3, c), -1));
    const char *d[] = {"loadgen", "--targets", "127.0.0.1:1", "--read-ratio", "1.5", NULL};
    cr_assert(eq(int, parse_args(&opt, 5, d), -1));
    const char *e[] = {"loadgen", NULL};
    cr_assert(eq(int, parse_args(&opt, 1, e), -1), "--targets is required");
}
