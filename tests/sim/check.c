/* SPDX-License-Identifier: MIT */
/* Raft safety invariants over cumulative, cluster-wide histories (engine independent). */

/*
 * Design notes
 *
 * The checker keeps histories that only grow, so each check is incremental and a
 * violation is caught at the step that causes it, even on a node that later crashes:
 *
 *   leaders[term]      first leader seen in a term           -> Election Safety
 *   lm[index]          every (term, digest, prev term) ever   -> Log Matching
 *                      written to any node's log
 *   commits[index]     the committed entry, the state hash   -> State Machine Safety,
 *                      after applying it, a term bound,         Leader Completeness,
 *                      acknowledged or not                      no lost acknowledged write
 *   acks, max_acked    acknowledged writes                   -> linearizable reads
 *
 * Log Matching as a per-(index, term) property: Raft guarantees that an (index, term)
 * pair names one entry for all time and that its predecessor has one term. If every
 * (index, term) ever written anywhere has one digest and one predecessor term, then any
 * two logs that agree on (i, t) agree on every earlier entry (induction on i). This is
 * the pairwise "logs agree up to the last common (index, term)" property, checked in
 * O(1) per written entry instead of O(n^2 * log) per step, and it also covers entries
 * that were later truncated or lost in a crash.
 *
 * Leader Completeness with a sound term bound: an entry is known to be committed when a
 * node reports commit >= i. The leader that committed it had a term <= the reporting
 * node's current term, so every leader elected in a term above that bound must hold the
 * entry (or a snapshot covering it). Stale leaders of lower terms are exempt, as in Raft.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

void check_init(struct check *c)
{
    YGGR_ASSERT(c != NULL);
    memset(c, 0, sizeof(*c));
}

void check_deinit(struct check *c)
{
    for (uint64_t i = 0; i < c->lm_cap; i++) {
        free(c->lm[i].recs);
    }
    free(c->lm);
    free(c->leaders);
    free(c->commits);
    free(c->acks);
    memset(c, 0, sizeof(*c));
}

bool check_fail(struct check *c, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof(c->why), fmt, ap);
        va_end(ap);
        c->failed = true;
    }
    return false;
}

/* Grow a zero-filled array so that `index` is valid. */
static void *grow(void *arr, uint64_t *cap, uint64_t index, size_t size)
{
    if (index < *cap) {
        return arr;
    }
    uint64_t n = *cap < 64 ? 64 : *cap;
    while (n <= index) {
        n *= 2;
    }
    uint8_t *p = realloc(arr, n * size);
    YGGR_ASSERT(p != NULL);
    memset(p + *cap * size, 0, (n - *cap) * size);
    *cap = n;
    return p;
}

bool check_leader(struct check *c, uint64_t term, uint64_t id)
{
    YGGR_ASSERT(id != 0);
    if (term == 0) {
        return check_fail(c, "election safety: node %llu leads in term 0",
                          (unsigned long long)id);
    }
    c->leaders = grow(c->leaders, &c->leaders_cap, term, sizeof(c->leaders[0]));
    if (c->leaders[term] == 0) {
        c->leaders[term] = id;
        c->elections++;
        return true;
    }
    if (c->leaders[term] != id) {
        return check_fail(c, "election safety: two leaders in term %llu: n%llu and n%llu",
                          (unsigned long long)term, (unsigned long long)c->leaders[term],
                          (unsigned long long)id);
    }
    return true;
}

bool check_log_entry(struct check *c, uint64_t node, const struct yggr_entry *e,
                     uint64_t prev_term)
{
    YGGR_ASSERT(e->index >= 1);
    c->lm = grow(c->lm, &c->lm_cap, e->index, sizeof(c->lm[0]));
    struct lm_slot *slot = &c->lm[e->index];
    uint64_t digest = rng_entry_digest(e);
    for (uint32_t i = 0; i < slot->count; i++) {
        struct lm_rec *r = &slot->recs[i];
        if (r->term != e->term) {
            continue;
        }
        if (r->digest != digest) {
            return check_fail(c, "log matching: n%llu holds a different entry at (%llu, %llu)",
                              (unsigned long long)node, (unsigned long long)e->index,
                              (unsigned long long)e->term);
        }
        if (r->prev_term == UINT64_MAX) {
            r->prev_term = prev_term;
        } else if (prev_term != UINT64_MAX && prev_term != r->prev_term) {
            return check_fail(c,
                              "log matching: n%llu has (%llu, %llu) after term %llu, "
                              "another log after term %llu",
                              (unsigned long long)node, (unsigned long long)e->index,
                              (unsigned long long)e->term, (unsigned long long)prev_term,
                              (unsigned long long)r->prev_term);
        }
        return true;
    }
    if (slot->count == slot->cap) {
        slot->cap = slot->cap == 0 ? 2 : slot->cap * 2;
        slot->recs = realloc(slot->recs, slot->cap * sizeof(slot->recs[0]));
        YGGR_ASSERT(slot->recs != NULL);
    }
    slot->recs[slot->count++] = (struct lm_rec){e->term, digest, prev_term};
    return true;
}

const struct commit_rec *check_committed(const struct check *c, uint64_t index)
{
    if (index >= c->commits_cap || !c->commits[index].committed) {
        return NULL;
    }
    return &c->commits[index];
}

bool check_commit(struct check *c, uint64_t node, uint64_t index, uint64_t term,
                  uint64_t digest, uint64_t term_bound)
{
    YGGR_ASSERT(index >= 1);
    c->commits = grow(c->commits, &c->commits_cap, index, sizeof(c->commits[0]));
    struct commit_rec *r = &c->commits[index];
    if (!r->committed) {
        r->committed = true;
        r->term = term;
        r->digest = digest;
        r->term_bound = term_bound;
        c->new_commits++;
        if (index > c->max_commit) {
            c->max_commit = index;
        }
        return true;
    }
    if (r->term != term || r->digest != digest) {
        return check_fail(c,
                          "state machine safety: n%llu committed (%llu, %llu) but (%llu, "
                          "%llu) was committed there before%s",
                          (unsigned long long)node, (unsigned long long)index,
                          (unsigned long long)term, (unsigned long long)index,
                          (unsigned long long)r->term,
                          r->acked ? " (an acknowledged write is lost)" : "");
    }
    if (term_bound < r->term_bound) {
        r->term_bound = term_bound;
    }
    return true;
}

bool check_apply(struct check *c, uint64_t node, uint64_t index, uint64_t term,
                 uint64_t digest, uint64_t state)
{
    const struct commit_rec *known = check_committed(c, index);
    if (known == NULL) {
        return check_fail(c, "apply: n%llu applied index %llu before anyone committed it",
                          (unsigned long long)node, (unsigned long long)index);
    }
    struct commit_rec *r = &c->commits[index];
    if (r->term != term || r->digest != digest) {
        return check_fail(c,
                          "state machine safety: n%llu applied (%llu, %llu) but (%llu, %llu) "
                          "is committed there%s",
                          (unsigned long long)node, (unsigned long long)index,
                          (unsigned long long)term, (unsigned long long)index,
                          (unsigned long long)r->term,
                          r->acked ? " (an acknowledged write is lost)" : "");
    }
    return check_restore(c, node, index, state);
}

bool check_restore(struct check *c, uint64_t node, uint64_t index, uint64_t state)
{
    if (index == 0) {
        return true;
    }
    c->commits = grow(c->commits, &c->commits_cap, index, sizeof(c->commits[0]));
    struct commit_rec *r = &c->commits[index];
    if (!r->has_state) {
        r->state = state;
        r->has_state = true;
        return true;
    }
    if (r->state != state) {
        return check_fail(c, "state machine safety: n%llu state at index %llu differs from "
                             "another node's state at that index",
                          (unsigned long long)node, (unsigned long long)index);
    }
    return true;
}

bool check_ack(struct check *c, uint64_t node, uint64_t index, uint64_t term,
               uint64_t digest, uint64_t step)
{
    const struct commit_rec *r = check_committed(c, index);
    if (r == NULL || r->term != term || r->digest != digest) {
        return check_fail(c, "ack: n%llu acknowledged (%llu, %llu) which is not committed",
                          (unsigned long long)node, (unsigned long long)index,
                          (unsigned long long)term);
    }
    c->commits[index].acked = true;
    c->acks = grow(c->acks, &c->ack_cap, c->ack_count, sizeof(c->acks[0]));
    c->acks[c->ack_count++] = (struct ack_rec){index, term, digest, step};
    if (index > c->max_acked) {
        c->max_acked = index;
    }
    return true;
}

bool check_read_ready(struct check *c, uint64_t node, uint64_t id, uint64_t bound,
                      uint64_t read_index)
{
    if (read_index < bound) {
        return check_fail(c,
                          "linearizability: read %llu on n%llu got read index %llu but index "
                          "%llu was acknowledged before the read was issued (stale read)",
                          (unsigned long long)id, (unsigned long long)node,
                          (unsigned long long)read_index, (unsigned long long)bound);
    }
    return true;
}

bool check_read_serve(struct check *c, uint64_t node, uint64_t id, uint64_t bound,
                      uint64_t applied, uint64_t state)
{
    if (applied < bound) {
        return check_fail(c,
                          "linearizability: read %llu served by n%llu at applied index %llu "
                          "misses acknowledged index %llu (stale read)",
                          (unsigned long long)id, (unsigned long long)node,
                          (unsigned long long)applied, (unsigned long long)bound);
    }
    const struct commit_rec *r = applied == 0 ? NULL : check_committed(c, applied);
    if (applied > 0 && (r == NULL || !r->has_state || r->state != state)) {
        return check_fail(c, "linearizability: read %llu served by n%llu from a state at "
                             "index %llu that is not the committed state",
                          (unsigned long long)id, (unsigned long long)node,
                          (unsigned long long)applied);
    }
    return true;
}

bool check_leader_entry(struct check *c, uint64_t node, uint64_t term, const struct slog *log,
                        const struct ssnap *snap, uint64_t index)
{
    const struct commit_rec *r = check_committed(c, index);
    if (r == NULL || r->term_bound >= term) {
        return true;
    }
    const struct yggr_entry *e = slog_at(log, index);
    if (e != NULL && e->term == r->term && rng_entry_digest(e) == r->digest) {
        return true;
    }
    if (e == NULL && snap != NULL && snap->present && index <= snap->meta.last.index) {
        if (index < snap->meta.last.index || snap->meta.last.term == r->term) {
            return true;
        }
    }
    return check_fail(c,
                      "leader completeness: n%llu leads term %llu without committed entry "
                      "(%llu, %llu)%s",
                      (unsigned long long)node, (unsigned long long)term,
                      (unsigned long long)index, (unsigned long long)r->term,
                      r->acked ? " (an acknowledged write is lost)" : "");
}

bool check_leader_log(struct check *c, uint64_t node, uint64_t term, const struct slog *log,
                      const struct ssnap *snap)
{
    for (uint64_t i = 1; i <= c->max_commit; i++) {
        if (!check_leader_entry(c, node, term, log, snap, i)) {
            return false;
        }
    }
    return true;
}
