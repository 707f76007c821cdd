/* SPDX-License-Identifier: MIT */
/* Invalid messages: deliver a corrupted copy of an in-flight message; the engine must drop it. */

/*
 * Design notes
 * - Raft's fault model is crash-stop with an unreliable but not malicious network, so a
 *   corruption here must be INVALID by the wire rules (REFERENCE 2.3), never a plausible
 *   valid message: a leader id that is not the sender, entries that are not contiguous
 *   after prev or carry a term above the message's, a command at term 0, a CONFIG entry
 *   naming node 0, a snapshot at index 0, a configuration with a node in both sets.
 * - The engine must drop such input and count it (messages_dropped), never assert and
 *   never act on it; the invariants run as after any step, and a delivery that the
 *   engine did not count as dropped is a violation.
 * - The original message stays in flight untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

#define U(v) ((unsigned long long)(v))

/* Corrupt `m` (a deep copy whose entries live in `entries`); false if no corruption
 * applies to this message type. */
static bool corrupt(struct sim *sim, struct yggr_msg *m, struct yggr_entry *entries,
                    struct yggr_membership *config)
{
    uint64_t pick = rng_below(&sim->rng, 4);
    switch (m->type) {
    case YGGR_MSG_APPEND_REQUEST: {
        struct yggr_msg_append_request *a = &m->as.append;
        if (pick == 0 || a->entry_count == 0) {
            a->leader_id = m->from + 100; /* not the sender */
        } else if (pick == 1) {
            entries[a->entry_count - 1].index += 2; /* gap after prev */
        } else if (pick == 2) {
            entries[0].term = m->term + 1; /* from the future */
        } else {
            entries[0].term = 0; /* term 0 is for bootstrap CONFIG entries only */
            entries[0].type = YGGR_ENTRY_COMMAND;
        }
        return true;
    }
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        m->as.vote_request.candidate_id = m->from + 100;
        return true;
    case YGGR_MSG_SNAPSHOT_REQUEST:
        if (pick < 2) {
            m->as.snapshot.last.index = 0;
        } else if (config->voter_count > 0) {
            config->learners[0] = config->voters[0]; /* in both sets */
            config->learner_count = config->learner_count == 0 ? 1 : config->learner_count;
        } else {
            m->as.snapshot.leader_id = m->from + 100;
        }
        return true;
    case YGGR_MSG_TIMEOUT_NOW:
        m->as.timeout_now.leader_id = m->from + 100;
        return true;
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_RESPONSE:
    case YGGR_MSG_APPEND_RESPONSE:
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        return false;
    }
    YGGR_UNREACHABLE();
}

bool garbage_deliver(struct sim *sim, uint32_t i)
{
    YGGR_ASSERT(i < sim->net.count);
    const struct flight *src = &sim->net.q[i];
    uint64_t to = src->msg.to;
    if (to > sim->id_count || !sim->nodes[to].alive || net_blocked(&sim->net, src->msg.from, to)) {
        return false;
    }
    struct yggr_msg m = src->msg;
    uint32_t count = m.type == YGGR_MSG_APPEND_REQUEST ? m.as.append.entry_count : 0;
    struct yggr_entry *entries = count > 0 ? malloc(count * sizeof(entries[0])) : NULL;
    for (uint32_t k = 0; k < count; k++) {
        entries[k] = src->entries[k]; /* borrowed payloads: the original keeps them alive */
    }
    struct yggr_membership config = src->config;
    if (m.type == YGGR_MSG_APPEND_REQUEST) {
        m.as.append.entries = entries;
    } else if (m.type == YGGR_MSG_SNAPSHOT_REQUEST && m.as.snapshot.config != NULL) {
        m.as.snapshot.config = &config;
    }
    bool done = corrupt(sim, &m, entries, &config);
    if (done) {
        struct sim_node *n = &sim->nodes[to];
        struct yggr_engine_metrics before, after;
        yggr_engine_metrics(n->engine, &before);
        trace_msg(&sim->trace, sim->now_step, TR_GARBAGE, to, &m, 0);
        struct yggr_event ev = {.type = YGGR_EVENT_RECEIVE};
        ev.as.receive = m;
        node_step(sim, n, &ev);
        yggr_engine_metrics(n->engine, &after);
        if (!sim->check.failed && after.messages_dropped == before.messages_dropped) {
            sim_violate(sim, "input validation: n%llu accepted an invalid %s copy from n%llu",
                        U(to), m.type == YGGR_MSG_APPEND_REQUEST ? "AppendEntries" : "message",
                        U(m.from));
        }
    }
    free(entries);
    return done;
}
