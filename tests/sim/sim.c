/* SPDX-License-Identifier: MIT */
/* The simulated cluster: creation, client requests, delivery, checks across nodes, the API. */

/*
 * Design notes
 * - struct sim owns everything: the PRNG, N + spare nodes (ids 1..id_count), the
 *   network, the checker histories and the trace. Nothing is global, so many
 *   simulations can run one after another in one process (the CLI runs thousands).
 * - sim_step = one scheduler action (sched.c) + the cross-node checks below. The
 *   per-node checks run inside node_step after every engine step (node.c).
 * - Liveness: after heal_at every fault stops and the cluster must converge (one
 *   leader; every live member of its committed configuration has applied the leader's
 *   commit, which covers its whole log) within converge_steps.
 * - Violations are sticky: the first one is kept with its step; the run stops there.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

#define U(v) ((unsigned long long)(v))

void sim_options_init(struct sim_options *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->node_count = 3;
    o->spare_count = 2;
    o->steps = 2000;
    o->features = SIM_FEATURES_BASIC;
}

bool sim_violate(struct sim *sim, const char *fmt, ...)
{
    if (!sim->check.failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sim->check.why, sizeof(sim->check.why), fmt, ap);
        va_end(ap);
        sim->check.failed = true;
    }
    if (sim->violation_step == 0) {
        sim->violation_step = sim->now_step;
    }
    return false;
}

void sim_note(struct sim *sim, enum trace_kind kind, uint64_t node, uint64_t peer,
              uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
    struct trace_rec r = {.step = sim->now_step, .kind = (uint16_t)kind};
    r.node = (uint8_t)node;
    r.peer = (uint8_t)peer;
    if (kind == TR_ROLE || kind == TR_PARTITION) {
        r.x = (uint32_t)a0; /* role / partition kind */
        r.a[0] = a1;
        r.a[1] = a2;
        r.a[2] = a3;
    } else {
        r.a[0] = a0;
        r.a[1] = a1;
        r.a[2] = a2;
        r.a[3] = a3;
    }
    trace_add(&sim->trace, &r);
}

/* ---- creation ----------------------------------------------------------------------- */

static bool options_valid(const struct sim_options *o)
{
    if (o->node_count < 1 || o->node_count > SIM_MAX_NODES) {
        fprintf(stderr, "yggr-sim: --nodes must be 1..%d\n", SIM_MAX_NODES);
        return false;
    }
    if (o->spare_count > SIM_MAX_SPARES) {
        fprintf(stderr, "yggr-sim: at most %d spare nodes\n", SIM_MAX_SPARES);
        return false;
    }
    if (o->heal_at > o->steps) {
        fprintf(stderr, "yggr-sim: --heal-at must not exceed --steps\n");
        return false;
    }
    return true;
}

struct sim *sim_create(const struct sim_options *options)
{
    if (!options_valid(options)) {
        return NULL;
    }
    struct sim *sim = calloc(1, sizeof(*sim));
    YGGR_ASSERT(sim != NULL);
    sim->opt = *options;
    if (sim->opt.converge_steps == 0) {
        sim->opt.converge_steps = 20000;
    }
    rng_seed(&sim->rng, options->seed);
    trace_init(&sim->trace, options->trace_out);
    check_init(&sim->check);
    net_init(&sim->net);
    uint32_t f = options->features;
    sim->pre_vote = (f & SIM_F_PREVOTE) != 0;
    sim->check_quorum = (f & SIM_F_CHECK_QUORUM) != 0;
    if (f & SIM_F_VARY) {
        sim->pre_vote = rng_chance(&sim->rng, 1, 2);
        sim->check_quorum = rng_chance(&sim->rng, 1, 2);
    }
    if (f & SIM_F_LEASE) {
        sim->pre_vote = true;
        sim->check_quorum = true;
    }
    sim->clock_skew = (f & SIM_F_LEASE) ? 2 : rng_range(&sim->rng, 2, 8);
    if ((f & SIM_F_DRIFT) && !(f & SIM_F_LEASE)) {
        sim->clock_skew = 64; /* several election timeouts: only safety may not suffer */
    }
    if (options->clock_skew != 0) {
        sim->clock_skew = options->clock_skew;
    }
    sim->id_count = options->node_count + options->spare_count;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        sim->nodes[id].id = id;
    }
    for (uint32_t id = 1; id <= options->node_count; id++) {
        sim->founders.voters[sim->founders.voter_count++] = id;
    }
    for (uint32_t id = 1; id <= options->node_count && !sim->check.failed; id++) {
        node_start(sim, id);
    }
    return sim;
}

void sim_destroy(struct sim *sim)
{
    if (sim == NULL) {
        return;
    }
    for (uint32_t id = 1; id < SIM_MAX_IDS; id++) {
        node_destroy(&sim->nodes[id]);
    }
    net_deinit(&sim->net);
    check_deinit(&sim->check);
    free(sim);
}

/* ---- network and time --------------------------------------------------------------- */

void sim_deliver(struct sim *sim, uint32_t i)
{
    struct flight f;
    net_take(&sim->net, i, &f);
    uint64_t to = f.msg.to;
    uint32_t lost = 0;
    if (to > sim->id_count || !sim->nodes[to].exists) {
        lost = 3;
    } else if (!sim->nodes[to].alive) {
        lost = 2;
    } else if (net_blocked(&sim->net, f.msg.from, to)) {
        lost = 1;
    }
    if (lost != 0) {
        trace_msg(&sim->trace, sim->now_step, TR_LOST, to, &f.msg, lost);
    } else {
        trace_msg(&sim->trace, sim->now_step, TR_RECV, to, &f.msg, 0);
        sim->stats.messages++;
        struct yggr_event ev = {.type = YGGR_EVENT_RECEIVE};
        ev.as.receive = f.msg;
        node_step(sim, &sim->nodes[to], &ev);
    }
    net_flight_release(&f);
}

void sim_tick(struct sim *sim, uint64_t id)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    n->clock++;
    sim_note(sim, TR_TICK, id, 0, n->clock, 0, 0, 0);
    struct yggr_event ev = {.type = YGGR_EVENT_TICK};
    node_step(sim, n, &ev);
}

/* ---- client and admin requests ------------------------------------------------------ */

/* The result of an accepted PROPOSE must name the entries the step appended. */
static bool props_verify(struct sim *sim, struct sim_node *n, const struct yggr_result *r,
                         const struct yggr_entry *entries)
{
    for (uint32_t k = 0; k < r->count; k++) {
        const struct yggr_entry *e = slog_at(&n->store.written.log, r->index + k);
        struct yggr_entry want = entries[k];
        want.index = r->index + k;
        want.term = r->term;
        if (e == NULL || e->term != r->term || rng_entry_digest(e) != rng_entry_digest(&want)) {
            return sim_violate(sim, "propose: n%llu answered (%llu,%llu) for command %u but "
                               "its log holds %s there", U(n->id), U(r->index + k),
                               U(r->term), k, e == NULL ? "nothing" : "another entry");
        }
    }
    return true;
}

static void props_record(struct sim_node *n, const struct yggr_result *r,
                         const struct yggr_entry *entries)
{
    while (n->prop_count > 0 && n->props[n->prop_count - 1].index >= r->index) {
        n->prop_count--; /* overwritten in this node's log: those failed */
    }
    if (n->prop_count + r->count > n->prop_cap) {
        n->prop_cap = (n->prop_count + r->count) * 2 + 16;
        n->props = realloc(n->props, n->prop_cap * sizeof(n->props[0]));
        YGGR_ASSERT(n->props != NULL);
    }
    for (uint32_t k = 0; k < r->count; k++) {
        struct yggr_entry e = entries[k];
        e.index = r->index + k;
        e.term = r->term;
        n->props[n->prop_count++] =
            (struct proposal){r->index + k, r->term, rng_entry_digest(&e)};
    }
}

int sim_propose(struct sim *sim, uint64_t id, uint32_t count, uint32_t size)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    YGGR_ASSERT(count >= 1 && count <= 64);
    YGGR_ASSERT(size >= 8);
    struct yggr_entry entries[64];
    memset(entries, 0, sizeof(entries));
    for (uint32_t k = 0; k < count; k++) {
        struct yggr_buf *b = yggr_buf_alloc(size);
        YGGR_ASSERT(b != NULL);
        uint64_t tag = ++sim->next_command;
        for (uint32_t j = 0; j < size; j++) {
            uint64_t byte = j < 8 ? tag >> (8 * j) : rng_next(&sim->rng);
            b->data[j] = (uint8_t)byte;
        }
        entries[k] = (struct yggr_entry){.type = YGGR_ENTRY_COMMAND, .buf = b,
                                         .data = b->data, .len = size};
    }
    struct yggr_event ev = {.type = YGGR_EVENT_PROPOSE};
    ev.as.propose.entries = entries;
    ev.as.propose.count = count;
    node_step(sim, n, &ev);
    const struct yggr_actions *a = &sim->actions;
    int err = (a->flags & YGGR_ACT_RESULT) ? a->result.err : YGGR_ERR_INVALID;
    if (err == 0 && (a->result.count == 0 || a->result.count > count)) {
        sim_violate(sim, "propose: n%llu accepted %u of %u commands", U(id), a->result.count,
                    count);
    } else if (err == 0 && !sim->check.failed && props_verify(sim, n, &a->result, entries)) {
        props_record(n, &a->result, entries);
    }
    sim_note(sim, TR_PROPOSE, id, 0, count, (uint64_t)(int64_t)err,
             err == 0 ? a->result.index : 0, err == 0 ? a->result.term : 0);
    for (uint32_t k = 0; k < count; k++) {
        yggr_buf_release(entries[k].buf);
    }
    return err;
}

static int result_of(const struct sim *sim)
{
    return (sim->actions.flags & YGGR_ACT_RESULT) ? sim->actions.result.err : YGGR_ERR_INVALID;
}

int sim_change(struct sim *sim, uint64_t id, enum yggr_change_type type, uint64_t node)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    struct yggr_event ev = {.type = YGGR_EVENT_CHANGE};
    ev.as.change.type = type;
    ev.as.change.node = node;
    node_step(sim, n, &ev);
    int err = result_of(sim);
    sim_note(sim, TR_CHANGE, id, node, (uint64_t)type, (uint64_t)(int64_t)err,
             err == 0 ? sim->actions.result.index : 0, 0);
    const struct yggr_entry *e =
        err == 0 ? slog_at(&n->store.written.log, sim->actions.result.index) : NULL;
    if (err == 0 && !sim->check.failed &&
        (e == NULL || e->type != YGGR_ENTRY_CONFIG || e->change != (uint8_t)type ||
         e->node != node || e->term != n->term)) {
        sim_violate(sim, "change: n%llu answered index %llu for %s n%llu but its log holds "
                    "no such CONFIG entry there", U(id), U(sim->actions.result.index),
                    type == YGGR_CHANGE_ADD_VOTER ? "add-voter" :
                    type == YGGR_CHANGE_REMOVE_VOTER ? "remove-voter" :
                    type == YGGR_CHANGE_ADD_LEARNER ? "add-learner" : "promote-learner",
                    U(node));
    }
    return err;
}

int sim_transfer(struct sim *sim, uint64_t id, uint64_t target)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    struct yggr_event ev = {.type = YGGR_EVENT_TRANSFER};
    ev.as.transfer.target = target;
    node_step(sim, n, &ev);
    int err = result_of(sim);
    if (err == 0) {
        sim->stats.transfers++;
    }
    sim_note(sim, TR_TRANSFER, id, target, 0, (uint64_t)(int64_t)err, 0, 0);
    return err;
}

int sim_read(struct sim *sim, uint64_t id)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    const uint32_t max = (uint32_t)(sizeof(n->reads) / sizeof(n->reads[0]));
    if (n->read_count == max) {
        return YGGR_ERR_BUSY;
    }
    struct read_req *q = &n->reads[n->read_count++];
    *q = (struct read_req){.id = ++sim->next_read, .issued = sim->now_step,
                           .bound = sim->check.max_acked};
    uint64_t rid = q->id;
    uint64_t bound = q->bound;
    struct yggr_event ev = {.type = YGGR_EVENT_READ};
    ev.as.read.id = rid;
    node_step(sim, n, &ev);
    int err = (sim->actions.flags & YGGR_ACT_RESULT) ? sim->actions.result.err : 0;
    if (err != 0) {
        for (uint32_t k = 0; k < n->read_count; k++) {
            if (n->reads[k].id == rid) {
                n->reads[k] = n->reads[--n->read_count];
                break;
            }
        }
    }
    sim_note(sim, TR_READ, id, 0, rid, bound, (uint64_t)(int64_t)err, 0);
    return err;
}

bool sim_snapshot(struct sim *sim, uint64_t id)
{
    struct sim_node *n = &sim->nodes[id];
    YGGR_ASSERT(n->alive);
    struct store *s = &n->store;
    uint64_t floor = s->written.snap.present ? s->written.snap.meta.last.index : 0;
    if (n->sm.applied <= floor || s->partial.present) {
        return false;
    }
    if (store_snapshot_pending(s)) {
        return false; /* an installed snapshot is still being written */
    }
    struct ssnap snap = {.present = true};
    snap.bytes = sm_serialise(&n->sm, (uint32_t)rng_range(&sim->rng, 0, 300));
    snap.meta.last = (struct yggr_log_id){n->sm.applied, n->sm.applied_term};
    snap.meta.size = snap.bytes->size;
    snap.meta.config = n->sm.config;
    /* Written and synced before the engine hears of it (engine.h: SNAPSHOT_TAKEN). */
    ssnap_copy(&s->durable.snap, &snap);
    ssnap_copy(&s->written.snap, &snap);
    ssnap_release(&snap);
    sim->stats.snapshots++;
    sim_note(sim, TR_SNAPSHOT, id, 0, n->sm.applied, n->sm.applied_term,
             s->written.snap.meta.size, 0);
    struct yggr_event ev = {.type = YGGR_EVENT_SNAPSHOT_TAKEN};
    ev.as.snapshot_taken.last = s->written.snap.meta.last;
    ev.as.snapshot_taken.size = s->written.snap.meta.size;
    node_step(sim, n, &ev);
    return true;
}

/* ---- checks across nodes ------------------------------------------------------------ */

void sim_check(struct sim *sim)
{
    struct check *c = &sim->check;
    for (uint32_t id = 1; id <= sim->id_count && !c->failed; id++) {
        const struct sim_node *n = &sim->nodes[id];
        if (!n->alive) {
            continue;
        }
        if (n->role == YGGR_ROLE_LEADER) {
            for (uint64_t i = sim->checked_commit + 1; i <= c->max_commit; i++) {
                if (!check_leader_entry(c, id, n->term, &n->store.written.log,
                                        &n->store.written.snap, i)) {
                    sim_violate(sim, "%s", c->why);
                    return;
                }
            }
        }
        if (n->config_count >= 2 && n->config_idx[n->config_count - 2] > c->max_commit) {
            sim_violate(sim, "membership: n%llu log holds two uncommitted config changes "
                        "(%llu and %llu, highest commit %llu)", U(id),
                        U(n->config_idx[n->config_count - 2]),
                        U(n->config_idx[n->config_count - 1]), U(c->max_commit));
            return;
        }
    }
    sim->checked_commit = c->max_commit;
    sim->stats.elections = c->elections;
    sim->stats.commits = c->new_commits;
}

uint64_t sim_leader(const struct sim *sim)
{
    uint64_t best = 0;
    uint64_t term = 0;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        const struct sim_node *n = &sim->nodes[id];
        if (n->alive && n->role == YGGR_ROLE_LEADER && n->term >= term) {
            best = id;
            term = n->term;
        }
    }
    return best;
}

bool sim_converged(const struct sim *sim)
{
    uint64_t lid = sim_leader(sim);
    if (lid == 0) {
        return false;
    }
    const struct sim_node *l = &sim->nodes[lid];
    if (l->commit != l->last_index || l->applied != l->commit) {
        return false;
    }
    struct yggr_membership m;
    yggr_engine_config_committed(l->engine, &m);
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        const struct sim_node *n = &sim->nodes[id];
        bool member = yggr_membership_is_voter(&m, id) || yggr_membership_is_learner(&m, id);
        if (!member || !n->alive) {
            continue;
        }
        if (n->applied != l->commit || n->term != l->term || n->leader != lid) {
            return false;
        }
    }
    return true;
}

void sim_heal(struct sim *sim)
{
    net_heal(&sim->net);
    sim->healed = true;
    /* Clock drift is a fault too: with 4x faster clocks a follower sees the leader's
     * heartbeats farther apart than its election timeout and campaigns forever. */
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        sim->nodes[id].clock_rate = 1;
    }
    sim_note(sim, TR_HEAL, 0, 0, 0, 0, 0, 0);
    for (uint32_t id = 1; id <= sim->id_count && !sim->check.failed; id++) {
        struct sim_node *n = &sim->nodes[id];
        if (n->exists && !n->alive) {
            node_start(sim, id);
        }
    }
}

/* ---- running ------------------------------------------------------------------------ */

bool sim_step(struct sim *sim)
{
    if (sim->check.failed) {
        return false;
    }
    sim->step++;
    sim->now_step = sim->step;
    sim->stats.steps = sim->step;
    if (sim->opt.heal_at != 0 && sim->step == sim->opt.heal_at) {
        sim_heal(sim);
    }
    if (!sim->check.failed) {
        sched_step(sim);
    }
    if (!sim->check.failed) {
        sim_check(sim);
    }
    if (sim->net.count > sim->stats.peak_inflight) {
        sim->stats.peak_inflight = sim->net.count;
    }
    return !sim->check.failed;
}

/* "n1 F t8 a100 c100 L3 voter, ..." for a liveness report. */
static void describe_nodes(const struct sim *sim, char *buf, size_t size)
{
    static const char roles[] = "FPCL";
    struct yggr_membership m;
    memset(&m, 0, sizeof(m));
    uint64_t lid = sim_leader(sim);
    if (lid != 0) {
        yggr_engine_config_committed(sim->nodes[lid].engine, &m);
    }
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t id = 1; id <= sim->id_count && used < size; id++) {
        const struct sim_node *n = &sim->nodes[id];
        if (!n->exists) {
            continue;
        }
        const char *kind = yggr_membership_is_voter(&m, id)     ? "voter"
                           : yggr_membership_is_learner(&m, id) ? "learner"
                                                                : "-";
        int k = snprintf(buf + used, size - used, "%sn%u %c t%llu a%llu c%llu L%llu %s",
                         used ? ", " : "", id, n->alive ? roles[n->role] : 'X', U(n->term),
                         U(n->applied), U(n->commit), U(n->leader), kind);
        used += k < 0 ? 0 : (size_t)k;
    }
}

bool sim_run(struct sim *sim)
{
    uint64_t deadline = sim->opt.heal_at + sim->opt.converge_steps;
    while (!sim->check.failed) {
        bool done = sim->step >= sim->opt.steps;
        if (sim->healed && !sim->converged && sim_converged(sim)) {
            sim->converged = true;
        }
        if (done && (!sim->healed || sim->converged)) {
            break;
        }
        if (sim->healed && !sim->converged && sim->step >= deadline) {
            sim->now_step = sim->step;
            char nodes[256];
            describe_nodes(sim, nodes, sizeof(nodes));
            sim_violate(sim, "liveness: no convergence within %llu steps after healing at "
                        "step %llu (leader n%llu, %u messages in flight; %s)",
                        U(sim->opt.converge_steps), U(sim->opt.heal_at), U(sim_leader(sim)),
                        sim->net.count, nodes);
            break;
        }
        sim_step(sim);
    }
    return !sim->check.failed;
}

const char *sim_violation(const struct sim *sim)
{
    return sim->check.failed ? sim->check.why : NULL;
}

uint64_t sim_violation_step(const struct sim *sim)
{
    return sim->violation_step;
}

void sim_dump_trace(const struct sim *sim, FILE *out, uint32_t max_records)
{
    trace_dump(&sim->trace, out, max_records);
}

uint64_t sim_trace_hash(const struct sim *sim)
{
    return sim->trace.hash;
}

void sim_stats(const struct sim *sim, struct sim_stats *out)
{
    *out = sim->stats;
}

void sim_stats_add(struct sim_stats *sum, const struct sim_stats *one)
{
    uint64_t peak = sum->peak_inflight > one->peak_inflight ? sum->peak_inflight
                                                             : one->peak_inflight;
    uint64_t *s = (uint64_t *)sum;
    const uint64_t *o = (const uint64_t *)one;
    _Static_assert(sizeof(struct sim_stats) % sizeof(uint64_t) == 0, "u64 fields only");
    for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++) {
        s[i] += o[i];
    }
    sum->peak_inflight = peak;
}

/* ---- feature names ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint32_t bits;
} feature_names[] = {
    {"happy", SIM_FEATURES_HAPPY},      {"basic", SIM_FEATURES_BASIC},
    {"all", SIM_FEATURES_ALL},          {"propose", SIM_F_PROPOSE},
    {"prevote", SIM_F_PREVOTE},         {"checkquorum", SIM_F_CHECK_QUORUM},
    {"vary", SIM_F_VARY},               {"crash", SIM_F_CRASH},
    {"torn", SIM_F_TORN},               {"slowdisk", SIM_F_SLOWDISK},
    {"netfault", SIM_F_NETFAULT},       {"partition", SIM_F_PARTITION},
    {"reads", SIM_F_READS},             {"lease", SIM_F_LEASE},
    {"membership", SIM_F_MEMBERSHIP},   {"transfer", SIM_F_TRANSFER},
    {"snapshot", SIM_F_SNAPSHOT},       {"refwire", SIM_F_REFWIRE},
    {"drift", SIM_F_DRIFT},             {"garbage", SIM_F_GARBAGE},
    {"bigcmd", SIM_F_BIGCMD},           {"shortread", SIM_F_SHORTREAD},
};

#define FEATURE_NAMES (sizeof(feature_names) / sizeof(feature_names[0]))

bool sim_features_parse(const char *text, uint32_t *out, char *why, size_t why_size)
{
    uint32_t bits = 0;
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        bool minus = *p == '-';
        const char *name = minus ? p + 1 : p;
        size_t name_len = minus ? len - 1 : len;
        bool found = false;
        for (size_t i = 0; i < FEATURE_NAMES; i++) {
            if (strlen(feature_names[i].name) == name_len &&
                strncmp(feature_names[i].name, name, name_len) == 0) {
                bits = minus ? bits & ~feature_names[i].bits : bits | feature_names[i].bits;
                found = true;
            }
        }
        if (!found) {
            snprintf(why, why_size, "unknown feature '%.*s'", (int)len, p);
            return false;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    *out = bits;
    return true;
}

const char *sim_features_name(uint32_t features, char *buf, size_t size)
{
    YGGR_ASSERT(size > 0);
    buf[0] = '\0';
    for (size_t i = 0; i < 3; i++) {
        if (features == feature_names[i].bits) {
            snprintf(buf, size, "%s", feature_names[i].name);
            return buf;
        }
    }
    size_t used = 0;
    for (size_t i = 3; i < FEATURE_NAMES && used < size; i++) {
        if (features & feature_names[i].bits) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "",
                             feature_names[i].name);
            used += n < 0 ? 0 : (size_t)n;
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, size, "none");
    }
    return buf;
}
