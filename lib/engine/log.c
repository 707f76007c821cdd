/* SPDX-License-Identifier: MIT */
/* The engine's view of the log: term runs for every stored index, a ring cache of entries. */
/*
 * Design notes
 *
 * The log on storage is [first, last]. The engine never holds it all: it keeps
 *   - a table of TERM RUNS (term, first_index), ascending, covering [first, last], so
 *     term_at(i) is known for every stored index (binary search, O(log runs));
 *   - a power-of-two RING of entry descriptors caching the newest entries
 *     [cache_first, last] (always a suffix of the log), each holding one reference on its
 *     payload buffer.
 * term_at(snap.index) is also known (the snapshot floor), so the AppendEntries consistency
 * check works right above a snapshot (Raft paper 7: "the last included index and term").
 *
 * Invariants (log_check):
 *   1. snap.index <= last, first <= snap.index + 1 and first >= 1.
 *   2. Runs: first_index strictly ascending, terms strictly ascending; when the log is
 *      non-empty the first run starts at or before `first`, the last at or before `last`;
 *      the runs are empty when the log is.
 *   3. Cache: first <= cache_first <= last + 1; ring[i & mask] holds index i for every
 *      cached i; terms agree with the runs.
 *
 * Eviction: the cache drops its oldest entry only to make room, and only when the caller
 * allows it (entries <= evict_upto, which the engine sets to its durable index). A
 * cache full of entries that cannot be evicted refuses appends (the caller turns that
 * into backpressure). Truncation and compaction release the references they drop.
 *
 * Failure modes: none at run time; capacity limits are reported to the caller, misuse is
 * asserted.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "engine_internal.h"

static struct yggr_term_run *run_at(const struct log *log, uint32_t k)
{
    return &log->runs[(log->run_head + k) % log->run_cap];
}

static struct yggr_entry *slot_of(const struct log *log, uint64_t index)
{
    return &log->ring[index & log->ring_mask];
}

static uint64_t cached_count(const struct log *log)
{
    return log->last + 1 - log->cache_first;
}

int log_init(struct log *log, uint32_t run_cap, uint32_t ring_cap)
{
    YGGR_ASSERT(run_cap >= 2);
    YGGR_ASSERT(ring_cap >= 2 && (ring_cap & (ring_cap - 1)) == 0);
    memset(log, 0, sizeof(*log));
    log->runs = calloc(run_cap, sizeof(*log->runs));
    log->ring = calloc(ring_cap, sizeof(*log->ring));
    if (log->runs == NULL || log->ring == NULL) {
        free(log->runs);
        free(log->ring);
        return YGGR_ERR_NOMEM;
    }
    log->run_cap = run_cap;
    log->ring_mask = ring_cap - 1;
    log->first = 1;
    log->last = 0;
    log->cache_first = 1;
    return 0;
}

/* Release cached entries in [from, last] (from >= cache_first). */
static void release_range(struct log *log, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to && i != 0; i++) {
        struct yggr_entry *s = slot_of(log, i);
        YGGR_ASSERT(s->index == i);
        yggr_buf_release(s->buf);
        memset(s, 0, sizeof(*s));
    }
}

void log_deinit(struct log *log)
{
    if (log->ring != NULL) {
        release_range(log, log->cache_first, log->last);
    }
    free(log->runs);
    free(log->ring);
    memset(log, 0, sizeof(*log));
}

void log_reset(struct log *log, uint64_t first, uint64_t last, struct yggr_log_id snap)
{
    YGGR_ASSERT(first >= 1);
    YGGR_ASSERT(snap.index <= last);
    YGGR_ASSERT(first <= snap.index + 1);
    release_range(log, log->cache_first, log->last);
    log->first = first;
    log->last = last;
    log->snap = snap;
    log->run_head = 0;
    log->run_count = 0;
    log->cache_first = last + 1;
}

void log_push_run(struct log *log, uint64_t term, uint64_t first_index)
{
    YGGR_ASSERT(log->run_count < log->run_cap);
    if (log->run_count > 0) {
        const struct yggr_term_run *prev = run_at(log, log->run_count - 1);
        YGGR_ASSERT(prev->term < term);
        YGGR_ASSERT(prev->first_index < first_index);
    }
    struct yggr_term_run *r = run_at(log, log->run_count);
    r->term = term;
    r->first_index = first_index;
    log->run_count++;
}

/* Position of the run containing `index` (index inside [first, last]). */
static uint32_t run_find(const struct log *log, uint64_t index)
{
    YGGR_ASSERT(log->run_count > 0);
    uint32_t lo = 0;
    uint32_t hi = log->run_count - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (run_at(log, mid)->first_index <= index) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    YGGR_ASSERT(run_at(log, lo)->first_index <= index);
    return lo;
}

uint64_t log_term_at(const struct log *log, uint64_t index)
{
    if (index == 0) {
        return 0;
    }
    if (index >= log->first && index <= log->last) {
        return run_at(log, run_find(log, index))->term;
    }
    if (index == log->snap.index) {
        return log->snap.term;
    }
    return 0;
}

uint64_t log_last_term(const struct log *log)
{
    return log_term_at(log, log->last);
}

/* Is term_at(index) known? (Bootstrap entries have term 0, so a 0 from log_term_at
 * alone does not tell.) Index 0 is the sentinel before the first entry, term 0. */
bool log_knows(const struct log *log, uint64_t index)
{
    return index == 0 || (index >= log->first && index <= log->last) ||
           index == log->snap.index;
}

/* Last index of the term-0 prefix (the bootstrap entries) still in the log, else 0. */
uint64_t log_bootstrap_end(const struct log *log)
{
    if (log->last < log->first || log->run_count == 0 || run_at(log, 0)->term != 0) {
        return 0;
    }
    return log->run_count > 1 ? run_at(log, 1)->first_index - 1 : log->last;
}

bool log_is_cached(const struct log *log, uint64_t index)
{
    return index >= log->cache_first && index <= log->last && index != 0;
}

const struct yggr_entry *log_get(const struct log *log, uint64_t index)
{
    if (!log_is_cached(log, index)) {
        return NULL;
    }
    const struct yggr_entry *s = slot_of(log, index);
    YGGR_ASSERT(s->index == index);
    return s;
}

uint32_t log_cached_run(const struct log *log, uint64_t index, uint32_t max,
                        const struct yggr_entry **out)
{
    YGGR_ASSERT(log_is_cached(log, index));
    uint64_t n = log->last - index + 1;
    uint64_t to_wrap = log->ring_mask + 1 - (index & log->ring_mask);
    if (n > to_wrap) {
        n = to_wrap;
    }
    if (n > max) {
        n = max;
    }
    *out = slot_of(log, index);
    YGGR_ASSERT((*out)->index == index);
    return (uint32_t)n;
}

void log_copy(const struct log *log, uint64_t index, uint32_t count, struct yggr_entry *dst)
{
    YGGR_ASSERT(count == 0 || log_is_cached(log, index));
    YGGR_ASSERT(count == 0 || log_is_cached(log, index + count - 1));
    for (uint32_t k = 0; k < count; k++) {
        dst[k] = *slot_of(log, index + k);
    }
}

uint64_t log_room(const struct log *log, uint64_t term, uint64_t evict_upto)
{
    bool new_run = log->run_count == 0 || run_at(log, log->run_count - 1)->term != term;
    if (new_run && log->run_count == log->run_cap) {
        return 0;
    }
    uint64_t cap = log->ring_mask + 1;
    uint64_t room = cap - cached_count(log);
    if (evict_upto >= log->cache_first && log->cache_first <= log->last) {
        uint64_t upto = evict_upto < log->last ? evict_upto : log->last;
        room += upto - log->cache_first + 1;
    }
    return room;
}

bool log_append(struct log *log, const struct yggr_entry *entry, uint64_t evict_upto)
{
    YGGR_ASSERT(entry->index == log->last + 1);
    YGGR_ASSERT(entry->term >= log_last_term(log));
    bool new_run = log->run_count == 0 || run_at(log, log->run_count - 1)->term != entry->term;
    if (new_run && log->run_count == log->run_cap) {
        return false;
    }
    if (cached_count(log) == log->ring_mask + 1) {
        if (log->cache_first > evict_upto) {
            return false;
        }
        release_range(log, log->cache_first, log->cache_first);
        log->cache_first++;
    }
    if (log->last < log->first) {
        log->run_count = 0; /* empty log: stale runs go */
        new_run = true;
    }
    if (new_run) {
        log_push_run(log, entry->term, entry->index);
    }
    struct yggr_entry *s = slot_of(log, entry->index);
    *s = *entry;
    yggr_buf_retain(s->buf);
    log->last = entry->index;
    YGGR_ASSERT(log_is_cached(log, entry->index));
    return true;
}

void log_truncate(struct log *log, uint64_t from)
{
    YGGR_ASSERT(from > log->snap.index);
    YGGR_ASSERT(from >= log->first && from <= log->last);
    uint64_t rel = from > log->cache_first ? from : log->cache_first;
    release_range(log, rel, log->last);
    log->last = from - 1;
    if (log->cache_first > from) {
        log->cache_first = from;
    }
    while (log->run_count > 0 && run_at(log, log->run_count - 1)->first_index >= from) {
        log->run_count--;
    }
    if (log->last < log->first) {
        log->run_count = 0;
    }
    YGGR_ASSERT(log->cache_first <= log->last + 1);
}

void log_compact(struct log *log, uint64_t below)
{
    YGGR_ASSERT(below <= log->snap.index + 1);
    if (below <= log->first) {
        return;
    }
    uint64_t cache_end = below - 1 < log->last ? below - 1 : log->last;
    if (log->cache_first <= cache_end) {
        release_range(log, log->cache_first, cache_end);
        log->cache_first = cache_end + 1;
    }
    log->first = below;
    while (log->run_count >= 2 && run_at(log, 1)->first_index <= below) {
        log->run_head = (log->run_head + 1) % log->run_cap;
        log->run_count--;
    }
    if (log->last < log->first) {
        log->run_count = 0;
    }
    YGGR_ASSERT(log->cache_first >= log->first);
}

void log_warm(struct log *log, const struct yggr_entry *entries, uint32_t count)
{
    YGGR_ASSERT(log->cache_first == log->last + 1);
    uint64_t cap = log->ring_mask + 1;
    uint32_t skip = count > cap ? (uint32_t)(count - cap) : 0;
    for (uint32_t k = skip; k < count; k++) {
        const struct yggr_entry *en = &entries[k];
        YGGR_ASSERT(en->index >= log->first);
        YGGR_ASSERT(en->index == log->last - (count - 1 - k));
        YGGR_ASSERT(en->term == log_term_at(log, en->index));
        struct yggr_entry *s = slot_of(log, en->index);
        *s = *en;
        yggr_buf_retain(s->buf);
    }
    if (count > skip) {
        log->cache_first = entries[skip].index;
    }
}

void log_set_snapshot(struct log *log, struct yggr_log_id snap)
{
    YGGR_ASSERT(snap.index >= log->snap.index);
    YGGR_ASSERT(snap.index <= log->last);
    YGGR_ASSERT(log_term_at(log, snap.index) == snap.term);
    log->snap = snap;
}

uint64_t log_term_first(const struct log *log, uint64_t index)
{
    YGGR_ASSERT(index >= log->first && index <= log->last);
    uint64_t f = run_at(log, run_find(log, index))->first_index;
    return f > log->first ? f : log->first;
}

uint64_t log_term_last(const struct log *log, uint64_t term)
{
    uint64_t found = 0;
    if (log->snap.term == term && log->snap.index > 0) {
        found = log->snap.index;
    }
    if (log->last < log->first) {
        return found;
    }
    for (uint32_t k = log->run_count; k > 0; k--) {
        const struct yggr_term_run *r = run_at(log, k - 1);
        if (r->term == term) {
            return k == log->run_count ? log->last : run_at(log, k)->first_index - 1;
        }
        if (r->term < term) {
            break;
        }
    }
    return found;
}

static int fail(char *why, size_t n, const char *msg, uint64_t a, uint64_t b)
{
    if (why != NULL && n > 0) {
        snprintf(why, n, "log: %s (%llu, %llu)", msg, (unsigned long long)a,
                 (unsigned long long)b);
    }
    return -1;
}

int log_check(const struct log *log, char *why, size_t n)
{
    if (log->snap.index > log->last) {
        return fail(why, n, "snapshot above last index", log->snap.index, log->last);
    }
    if (log->first < 1 || log->first > log->snap.index + 1) {
        return fail(why, n, "first index out of range", log->first, log->snap.index);
    }
    if (log->last < log->first && log->run_count != 0) {
        return fail(why, n, "runs in an empty log", log->run_count, log->last);
    }
    if (log->last >= log->first && (log->run_count == 0 || run_at(log, 0)->first_index > log->first)) {
        return fail(why, n, "runs do not cover the first index", log->first, log->run_count);
    }
    for (uint32_t k = 1; k < log->run_count; k++) {
        const struct yggr_term_run *a = run_at(log, k - 1);
        const struct yggr_term_run *b = run_at(log, k);
        if (a->term >= b->term || a->first_index >= b->first_index || b->first_index > log->last) {
            return fail(why, n, "runs not ascending", a->term, b->term);
        }
    }
    if (log->cache_first < log->first || log->cache_first > log->last + 1) {
        return fail(why, n, "cache outside the log", log->cache_first, log->last);
    }
    if (cached_count(log) > log->ring_mask + 1) {
        return fail(why, n, "cache over capacity", cached_count(log), log->ring_mask + 1);
    }
    for (uint64_t i = log->cache_first; i <= log->last; i++) {
        const struct yggr_entry *s = slot_of(log, i);
        if (s->index != i || s->term != log_term_at(log, i)) {
            return fail(why, n, "cached entry disagrees", i, s->term);
        }
    }
    if (log->snap.index > 0 && log->last >= log->first && log->first > log->snap.index &&
        log_term_at(log, log->first) < log->snap.term) {
        return fail(why, n, "entry term below the snapshot term", log->first, log->snap.term);
    }
    return 0;
}
