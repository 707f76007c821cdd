/* SPDX-License-Identifier: MIT */
/* Per-peer replication progress: probe / replicate / snapshot states and the flow window. */
/*
 * Design notes
 *
 * States (the leader keeps one `struct progress` per tracked peer, voters and learners):
 *
 *     PROBE ──success──▶ REPLICATE ──conflict / stall──▶ PROBE
 *       │                    │
 *       └──next < first──────┴──▶ SNAPSHOT ──done──▶ REPLICATE
 *
 *   PROBE: at most one AppendEntries with entries outstanding (`probe_sent`); `next` does
 *     not move until a response tells where the logs match.
 *   REPLICATE: optimistic pipelining: `next` moves past every entry sent; the window
 *     (`infl`, a FIFO of {end index, bytes}) bounds messages and bytes in flight, and acks
 *     free every record whose end is <= the acknowledged index.
 *   SNAPSHOT: the log the peer needs is compacted; snapshot chunks stream instead.
 *
 * `sent` is a FIFO of the rounds of requests whose response is outstanding. A response
 * that does not carry a round (a reference peer, or reference_wire) is credited with the
 * OLDEST outstanding record: a lower bound, since responses to dropped requests only make
 * us lag (REFERENCE 8.1 #3; a DUPLICATED response would shift the crediting by one
 * record, which a transport that never duplicates, like TCP, rules out). The credit only
 * confirms rounds for reads and leases; replication trusts last_appended alone (sim F11).
 * When the FIFO is full nothing more is pushed.
 *
 * Invariants: match < next in PROBE/REPLICATE; match never decreases (a stale success can
 * neither rewind match nor next: Raft paper 5.3 and REFERENCE 1.9); infl_count <=
 * max_inflight_msgs; the sums of `infl` bytes equal infl_bytes.
 */
#include <string.h>

#include "engine_internal.h"

static void clear_window(struct progress *p)
{
    p->infl_head = 0;
    p->infl_count = 0;
    p->infl_bytes = 0;
}

void progress_reset(struct progress *p, uint64_t next, uint64_t tick)
{
    YGGR_ASSERT(p->id != 0);
    YGGR_ASSERT(next >= 1);
    p->match = 0;
    p->acked_round = 0;
    p->success_round = 0;
    p->recent_active = false;
    p->heard_tick = tick;
    p->sent_head = 0;
    p->sent_count = 0;
    progress_become_probe(p, next, tick);
}

void progress_become_probe(struct progress *p, uint64_t next, uint64_t tick)
{
    YGGR_ASSERT(next > p->match);
    p->state = YGGR_PROGRESS_PROBE;
    p->next = next;
    p->probe_sent = false;
    p->stall_tick = tick;
    p->snap_done_sent = false;
    clear_window(p);
    YGGR_ASSERT(p->next >= 1);
}

void progress_become_replicate(struct progress *p, uint64_t tick)
{
    YGGR_ASSERT(p->state != YGGR_PROGRESS_REPLICATE);
    p->state = YGGR_PROGRESS_REPLICATE;
    p->next = p->match + 1;
    p->probe_sent = false;
    p->stall_tick = tick;
    clear_window(p);
    YGGR_ASSERT(p->next > p->match);
}

void progress_become_snapshot(struct progress *p, struct yggr_log_id snap, uint64_t tick)
{
    YGGR_ASSERT(snap.index > 0);
    p->state = YGGR_PROGRESS_SNAPSHOT;
    p->snap_last = snap;
    p->snap_sent = 0;
    p->snap_acked = 0;
    p->snap_rewind_tick = UINT64_MAX;
    p->snap_done_sent = false;
    p->stall_tick = tick;
    p->probe_sent = false;
    clear_window(p);
    YGGR_ASSERT(p->state == YGGR_PROGRESS_SNAPSHOT);
}

bool progress_window_full(const struct progress *p, const struct yggr_engine_config *cfg)
{
    YGGR_ASSERT(p->state == YGGR_PROGRESS_REPLICATE);
    return p->infl_count >= cfg->max_inflight_msgs || p->infl_bytes >= cfg->max_inflight_bytes;
}

void progress_sent_data(struct progress *p, uint64_t end, uint64_t bytes, uint32_t cap)
{
    YGGR_ASSERT(p->state == YGGR_PROGRESS_REPLICATE);
    YGGR_ASSERT(end >= p->next);
    YGGR_ASSERT(p->infl_count < cap);
    struct inflight *f = &p->infl[(p->infl_head + p->infl_count) % cap];
    f->end = end;
    f->bytes = bytes;
    p->infl_count++;
    p->infl_bytes += bytes;
    p->next = end + 1;
}

void progress_free_upto(struct progress *p, uint64_t index, uint32_t cap)
{
    while (p->infl_count > 0 && p->infl[p->infl_head].end <= index) {
        YGGR_ASSERT(p->infl_bytes >= p->infl[p->infl_head].bytes);
        p->infl_bytes -= p->infl[p->infl_head].bytes;
        p->infl_head = (p->infl_head + 1) % cap;
        p->infl_count--;
    }
    YGGR_ASSERT(p->infl_count > 0 || p->infl_bytes == 0);
}

bool progress_record_success(struct progress *p, uint64_t index, uint64_t tick)
{
    YGGR_ASSERT(p->id != 0);
    if (index <= p->match) {
        return false;
    }
    p->match = index;
    if (p->next <= index) {
        p->next = index + 1;
    }
    p->stall_tick = tick;
    YGGR_ASSERT(p->next > p->match);
    return true;
}

void progress_sent_push(struct progress *p, uint64_t round)
{
    if (p->sent_count == p->sent_cap) {
        return; /* full: stop pushing (older records are lower bounds) */
    }
    struct sent_req *r = &p->sent[(p->sent_head + p->sent_count) % p->sent_cap];
    r->round = round;
    p->sent_count++;
    YGGR_ASSERT(p->sent_count <= p->sent_cap);
}

bool progress_sent_pop(struct progress *p, struct sent_req *out)
{
    if (p->sent_count == 0) {
        return false;
    }
    *out = p->sent[p->sent_head];
    p->sent_head = (p->sent_head + 1) % p->sent_cap;
    p->sent_count--;
    return true;
}

void progress_sent_drop_upto(struct progress *p, uint64_t round)
{
    while (p->sent_count > 0 && p->sent[p->sent_head].round <= round) {
        p->sent_head = (p->sent_head + 1) % p->sent_cap;
        p->sent_count--;
    }
}

/* The largest value reached by a majority of `values` (sorted in place, descending). */
uint64_t progress_quorum_value(uint64_t *values, uint32_t count)
{
    YGGR_ASSERT(count > 0);
    YGGR_ASSERT(count <= YGGR_MAX_MEMBERS);
    for (uint32_t i = 1; i < count; i++) {
        uint64_t v = values[i];
        uint32_t j = i;
        while (j > 0 && values[j - 1] < v) {
            values[j] = values[j - 1];
            j--;
        }
        values[j] = v;
    }
    return values[count / 2];
}
