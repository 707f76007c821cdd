/* SPDX-License-Identifier: MIT */
/* HDR-style latency histogram: log-linear buckets over microseconds, 128 linear sub-buckets
 * per power of two, so any recorded value is reported within 1/128 (< 1%) of its true value.
 * Fixed size (no allocation); recording is O(1). */
#ifndef YGGR_TOOLS_LOADGEN_HDR_H
#define YGGR_TOOLS_LOADGEN_HDR_H

#include <stddef.h>
#include <stdint.h>

#define HDR_SUB_BITS  7
#define HDR_SUB_COUNT (1u << HDR_SUB_BITS)
/* Largest trackable value: 2^33 - 1 us (about 2.4 hours); larger values are clamped. */
#define HDR_MAX_BITS  33
#define HDR_BUCKETS   ((HDR_MAX_BITS - HDR_SUB_BITS + 1) * HDR_SUB_COUNT)
#define HDR_VALUE_MAX ((UINT64_C(1) << HDR_MAX_BITS) - 1)

struct hdr {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
    uint64_t counts[HDR_BUCKETS];
};

void hdr_reset(struct hdr *h);
void hdr_record(struct hdr *h, uint64_t value_us);
/* dst += src. */
void hdr_merge(struct hdr *dst, const struct hdr *src);
/* Value at percentile pct in [0, 100]: the highest value equivalent to the bucket holding the
 * ceil(pct% * count)-th smallest sample, capped by the exact max. 0 when empty. */
uint64_t hdr_percentile(const struct hdr *h, double pct);
double hdr_mean(const struct hdr *h);

/* Bucket geometry (exposed for tests and plots). */
size_t hdr_index(uint64_t value_us);
uint64_t hdr_bucket_low(size_t index);
uint64_t hdr_bucket_high(size_t index);

#endif /* YGGR_TOOLS_LOADGEN_HDR_H */
