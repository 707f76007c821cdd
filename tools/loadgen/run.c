/* SPDX-License-Identifier: MIT */
/* loadgen shared run state: the leader hint, leader-change events and the per-second slots
 * that workers fill and the reporter consumes.
 * Leader changes are counted where writes succeed (run_confirm_leader), not where the hint
 * moves: redirect ping-pong during an election would otherwise count as many changes.
 * Invariants: a slot holds one second at a time; a worker flushes seconds in order and never
 * runs LG_SLOTS seconds ahead of the reporter (the reporter wakes every 100 ms). */
#include <string.h>

#include "loadgen.h"

const char *const lg_err_names[LG_ERR_COUNT] = {
    [LG_ERR_ERROR_REPLY] = "error_reply",
    [LG_ERR_TIMEOUT] = "timeout",
    [LG_ERR_CONN_LOST] = "connection_lost",
    [LG_ERR_BAD_REPLY] = "bad_reply",
    [LG_ERR_CORRUPT_VALUE] = "corrupt_value",
    [LG_ERR_REDIRECTS] = "too_many_redirects",
};

void counts_add(struct lg_counts *dst, const struct lg_counts *src)
{
    TOOL_ASSERT(dst != NULL);
    TOOL_ASSERT(src != NULL);
    dst->ok += src->ok;
    dst->reads += src->reads;
    dst->writes += src->writes;
    dst->deletes += src->deletes;
    dst->redirects += src->redirects;
    dst->indeterminate += src->indeterminate;
    dst->connect_failures += src->connect_failures;
    for (int i = 0; i < LG_ERR_COUNT; i++) {
        dst->errors[i] += src->errors[i];
    }
}

uint64_t counts_errors(const struct lg_counts *c)
{
    uint64_t total = 0;
    for (int i = 0; i < LG_ERR_COUNT; i++) {
        total += c->errors[i];
    }
    return total;
}

void run_set_leader(struct lg_run *run, uint32_t from, uint32_t to, bool named)
{
    TOOL_ASSERT(to < run->opt->node_count);
    TOOL_ASSERT(from < run->opt->node_count);
    uint32_t expected = from;
    if (named) {
        /* A redirect names the leader: take it whatever the current hint is. */
        expected = atomic_load_explicit(&run->leader, memory_order_relaxed);
        if (expected == to) {
            return;
        }
    }
    /* Relaxed is enough: the hint is advisory and carries no other data with it. */
    if (atomic_compare_exchange_strong_explicit(&run->leader, &expected, to,
                                                memory_order_relaxed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&run->rediscoveries, 1, memory_order_relaxed);
    }
}

void run_confirm_leader(struct lg_run *run, uint32_t node, uint64_t now_us)
{
    uint32_t seen = atomic_load_explicit(&run->confirmed, memory_order_relaxed);
    if (seen == node) {
        return; /* the hot path: one relaxed load per successful write */
    }
    if (!atomic_compare_exchange_strong_explicit(&run->confirmed, &seen, node,
                                                 memory_order_relaxed, memory_order_relaxed)) {
        return; /* another thread recorded this change */
    }
    if (seen == LG_NODE_NONE) {
        return; /* the first leader found is no change */
    }
    pthread_mutex_lock(&run->lock);
    if (run->event_count < LG_EVENTS_MAX) {
        run->events[run->event_count++] =
            (struct lg_event){.at_us = now_us - run->start_us, .from = seen, .to = node};
    } else {
        run->events_dropped++;
    }
    pthread_mutex_unlock(&run->lock);
}

uint32_t run_leader(const struct lg_run *run)
{
    uint32_t c = atomic_load_explicit(&run->confirmed, memory_order_relaxed);
    return c != LG_NODE_NONE ? c : atomic_load_explicit(&run->leader, memory_order_relaxed);
}

void run_flush_second(struct lg_run *run, struct lg_worker *w, uint64_t span_us)
{
    TOOL_ASSERT(span_us <= 1000000u);
    pthread_mutex_lock(&run->lock);
    struct lg_slot *slot = &run->slots[w->second % LG_SLOTS];
    if (slot->second == UINT64_MAX) {
        slot->second = w->second;
        slot->span_us = 0;
        memset(&slot->counts, 0, sizeof(slot->counts));
        hdr_reset(&slot->hist);
    }
    /* The reporter frees a slot long before a worker wraps around to it again. */
    TOOL_ASSERT(slot->second == w->second);
    counts_add(&slot->counts, &w->interval_counts);
    hdr_merge(&slot->hist, &w->interval);
    if (span_us > slot->span_us) {
        slot->span_us = span_us;
    }
    w->flushed_second = w->second + 1;
    pthread_mutex_unlock(&run->lock);
    memset(&w->interval_counts, 0, sizeof(w->interval_counts));
    hdr_reset(&w->interval);
}

void run_worker_done(struct lg_run *run, struct lg_worker *w)
{
    pthread_mutex_lock(&run->lock);
    w->done = true;
    pthread_mutex_unlock(&run->lock);
}
