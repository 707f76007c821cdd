/* SPDX-License-Identifier: MIT */
/* The simulated state machine: a hash chain over applied commands, with real snapshots. */

/*
 * Design notes
 * - State = (applied index, its term, hash chain over every applied COMMAND's (index,
 *   term, digest), command count, configuration). Two nodes' states compare in O(1).
 * - The configuration is tracked from applied CONFIG entries, so the host knows the
 *   membership to store in its snapshot meta (the engine does not hand it out).
 * - Snapshot bytes: a little-endian header, the configuration, `pad` verification bytes
 *   generated from the hash, and a trailing checksum. Restore parses and verifies all of
 *   it, so a snapshot assembled from wrong, missing or reordered chunks is caught.
 */
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

#define SM_MAGIC 0x59534d31u /* "YSM1" */

void sm_init(struct sm *sm, const struct yggr_membership *base)
{
    YGGR_ASSERT(sm != NULL);
    memset(sm, 0, sizeof(*sm));
    if (base != NULL) {
        sm->config = *base;
    }
}

void sm_apply(struct sm *sm, const struct yggr_entry *e)
{
    YGGR_ASSERT(e->index == sm->applied + 1);
    YGGR_ASSERT(e->term >= sm->applied_term);
    if (e->type == YGGR_ENTRY_COMMAND) {
        sm->hash = rng_mix(rng_mix(sm->hash, e->index), rng_mix(e->term, rng_entry_digest(e)));
        sm->commands++;
    } else if (e->type == YGGR_ENTRY_CONFIG) {
        (void)yggr_membership_apply(&sm->config, (enum yggr_change_type)e->change, e->node);
    }
    sm->applied = e->index;
    sm->applied_term = e->term;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    return p + 8;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint8_t pad_byte(uint64_t hash, uint32_t i)
{
    return (uint8_t)rng_mix(hash, i);
}

/* Header words: magic, applied, term, hash, commands, voters, learners, pad. */
#define SM_HEADER_WORDS 8u

struct yggr_buf *sm_serialise(const struct sm *sm, uint32_t pad)
{
    uint32_t ids = sm->config.voter_count + sm->config.learner_count;
    uint32_t size = (SM_HEADER_WORDS + ids + 1) * 8 + pad;
    struct yggr_buf *buf = yggr_buf_alloc(size);
    YGGR_ASSERT(buf != NULL);
    uint8_t *p = buf->data;
    p = put64(p, SM_MAGIC);
    p = put64(p, sm->applied);
    p = put64(p, sm->applied_term);
    p = put64(p, sm->hash);
    p = put64(p, sm->commands);
    p = put64(p, sm->config.voter_count);
    p = put64(p, sm->config.learner_count);
    p = put64(p, pad);
    for (uint32_t i = 0; i < sm->config.voter_count; i++) {
        p = put64(p, sm->config.voters[i]);
    }
    for (uint32_t i = 0; i < sm->config.learner_count; i++) {
        p = put64(p, sm->config.learners[i]);
    }
    for (uint32_t i = 0; i < pad; i++) {
        *p++ = pad_byte(sm->hash, i);
    }
    p = put64(p, rng_hash_bytes(0, buf->data, (size_t)(p - buf->data)));
    YGGR_ASSERT(p == buf->data + size);
    return buf;
}

bool sm_restore(struct sm *sm, const uint8_t *data, uint64_t len)
{
    if (data == NULL || len < (SM_HEADER_WORDS + 1) * 8 || get64(data) != SM_MAGIC) {
        return false;
    }
    if (get64(data + len - 8) != rng_hash_bytes(0, data, (size_t)len - 8)) {
        return false;
    }
    struct sm s;
    memset(&s, 0, sizeof(s));
    s.applied = get64(data + 8);
    s.applied_term = get64(data + 16);
    s.hash = get64(data + 24);
    s.commands = get64(data + 32);
    uint64_t voters = get64(data + 40);
    uint64_t learners = get64(data + 48);
    uint64_t pad = get64(data + 56);
    if (voters > YGGR_MAX_MEMBERS || learners > YGGR_MAX_MEMBERS ||
        len != (SM_HEADER_WORDS + voters + learners + 1) * 8 + pad) {
        return false;
    }
    const uint8_t *p = data + SM_HEADER_WORDS * 8;
    s.config.voter_count = (uint32_t)voters;
    s.config.learner_count = (uint32_t)learners;
    for (uint64_t i = 0; i < voters; i++, p += 8) {
        s.config.voters[i] = get64(p);
    }
    for (uint64_t i = 0; i < learners; i++, p += 8) {
        s.config.learners[i] = get64(p);
    }
    for (uint32_t i = 0; i < pad; i++) {
        if (p[i] != pad_byte(s.hash, i)) {
            return false;
        }
    }
    *sm = s;
    return true;
}
