/* SPDX-License-Identifier: MIT */
/* The simulator's single PRNG (splitmix64) and the hashes used for digests and fingerprints. */

/*
 * Design notes
 * - One generator per simulation drives every random choice: scheduler, network, disks
 *   and the engines' seeds. splitmix64 is tiny, passes BigCrush and has no bad seeds, so
 *   every u64 is a valid seed and consecutive seeds give unrelated runs.
 * - rng_below uses a modulo reduction; the bias (n / 2^64) is irrelevant here and the
 *   result is exactly reproducible on every platform.
 * - Digests are 64-bit mixes (not cryptographic): a collision would only hide a
 *   divergence, never invent one.
 */
#include "sim_internal.h"
#include "yggr_assert.h"

void rng_seed(struct sim_rng *rng, uint64_t seed)
{
    YGGR_ASSERT(rng != NULL);
    rng->state = seed ^ 0x9E3779B97F4A7C15ull;
    (void)rng_next(rng);
}

uint64_t rng_next(struct sim_rng *rng)
{
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rng_below(struct sim_rng *rng, uint64_t n)
{
    YGGR_ASSERT(n > 0);
    return rng_next(rng) % n;
}

uint64_t rng_range(struct sim_rng *rng, uint64_t lo, uint64_t hi)
{
    YGGR_ASSERT(lo <= hi);
    YGGR_ASSERT(hi - lo < UINT64_MAX);
    return lo + rng_below(rng, hi - lo + 1);
}

bool rng_chance(struct sim_rng *rng, uint64_t num, uint64_t den)
{
    YGGR_ASSERT(den > 0);
    return rng_below(rng, den) < num;
}

uint64_t rng_mix(uint64_t h, uint64_t v)
{
    uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rng_hash_bytes(uint64_t h, const uint8_t *data, size_t len)
{
    uint64_t f = 0xCBF29CE484222325ull ^ h;
    for (size_t i = 0; i < len; i++) {
        f = (f ^ data[i]) * 0x100000001B3ull;
    }
    return rng_mix(f, len);
}

uint64_t rng_entry_digest(const struct yggr_entry *e)
{
    YGGR_ASSERT(e != NULL);
    YGGR_ASSERT(e->len == 0 || e->data != NULL);
    uint64_t h = rng_mix((uint64_t)e->type, ((uint64_t)e->change << 32) | 1u);
    h = rng_mix(h, e->node);
    h = rng_hash_bytes(h, e->data, e->len);
    return h == 0 ? 1 : h;
}
