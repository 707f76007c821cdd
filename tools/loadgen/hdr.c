/* SPDX-License-Identifier: MIT */
/* HDR-style log-linear latency histogram.
 * Geometry: values below 256 have their own bucket. A value v with highest set bit m >= 8
 * falls in group g = m - 7 and bucket g * 128 + (v >> g): 128 buckets per power of two, each
 * 2^g wide, so the relative width is at most 2^g / (128 * 2^g) = 1/128.
 * Invariant: sum(counts) == count; min <= every recorded value <= max. */
#include "hdr.h"

#include <string.h>

#include "common/tool.h"

void hdr_reset(struct hdr *h)
{
    TOOL_ASSERT(h != NULL);
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

size_t hdr_index(uint64_t value_us)
{
    uint64_t v = value_us > HDR_VALUE_MAX ? HDR_VALUE_MAX : value_us;
    if (v < 2 * HDR_SUB_COUNT) {
        return (size_t)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned g = msb - HDR_SUB_BITS;
    size_t index = (size_t)g * HDR_SUB_COUNT + (size_t)(v >> g);
    TOOL_ASSERT(index < HDR_BUCKETS);
    return index;
}

static unsigned bucket_group(size_t index)
{
    return index < 2 * HDR_SUB_COUNT ? 0u : (unsigned)(index / HDR_SUB_COUNT) - 1u;
}

uint64_t hdr_bucket_low(size_t index)
{
    TOOL_ASSERT(index < HDR_BUCKETS);
    unsigned g = bucket_group(index);
    return (uint64_t)(index - (size_t)g * HDR_SUB_COUNT) << g;
}

uint64_t hdr_bucket_high(size_t index)
{
    unsigned g = bucket_group(index);
    return hdr_bucket_low(index) + (UINT64_C(1) << g) - 1;
}

void hdr_record(struct hdr *h, uint64_t value_us)
{
    h->counts[hdr_index(value_us)]++;
    h->count++;
    h->sum += value_us;
    if (value_us < h->min) {
        h->min = value_us;
    }
    if (value_us > h->max) {
        h->max = value_us;
    }
}

void hdr_merge(struct hdr *dst, const struct hdr *src)
{
    TOOL_ASSERT(dst != NULL);
    TOOL_ASSERT(src != NULL);
    if (src->count == 0) {
        return;
    }
    for (size_t i = 0; i < HDR_BUCKETS; i++) {
        dst->counts[i] += src->counts[i];
    }
    dst->count += src->count;
    dst->sum += src->sum;
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
}

uint64_t hdr_percentile(const struct hdr *h, double pct)
{
    TOOL_ASSERT(h != NULL);
    TOOL_ASSERT(pct >= 0.0 && pct <= 100.0);
    if (h->count == 0) {
        return 0;
    }
    double want = pct / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want || rank == 0) {
        rank++;
    }
    if (rank > h->count) {
        rank = h->count;
    }
    uint64_t seen = 0;
    for (size_t i = 0; i < HDR_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t high = hdr_bucket_high(i);
            uint64_t v = high < h->max ? high : h->max;
            return v > h->min ? v : h->min;
        }
    }
    return h->max;
}

double hdr_mean(const struct hdr *h)
{
    TOOL_ASSERT(h != NULL);
    return h->count == 0 ? 0.0 : (double)h->sum / (double)h->count;
}
