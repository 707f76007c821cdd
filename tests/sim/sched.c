/* SPDX-License-Identifier: MIT */
/* The random scheduler: picks one action per step (time, delivery, disk, clients, faults). */

/*
 * Design notes
 * - Each step builds the list of enabled actions with integer weights and draws one
 *   from the simulation's PRNG. Weights favour delivery and time so that protocols make
 *   progress between faults; faults are rare but frequent enough to hit every phase.
 * - Time: TICK advances ONE node's clock. Clock drift is bounded: a node's clock may run
 *   at most clock_skew ticks ahead of the slowest live node (the global clock). With
 *   SIM_F_DRIFT each node also has a rate (1..4): fast clocks reach the bound and stay
 *   there, so timeouts of different nodes really disagree. Lease
 *   reads are only safe under bounded drift; with lease on the skew is 2 ticks and the
 *   lease is election_timeout_min - 1 - skew ticks (see node.c configure()).
 * - Disks: without SIM_F_SLOWDISK every write becomes durable at the end of the step
 *   that submitted it (and its *_PERSISTED event is processed then). With it, each node
 *   has a latency and a FLUSH action makes a random ready prefix durable.
 * - After heal_at only TICK, DELIVER and FLUSH remain (no faults, no new requests).
 */
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

enum sched_action {
    SA_TICK,
    SA_DELIVER,
    SA_FLUSH,
    SA_PROPOSE,
    SA_READ,
    SA_DROP,
    SA_DUP,
    SA_DELAY,
    SA_PARTITION,
    SA_HEAL,
    SA_CRASH,
    SA_RESTART,
    SA_CHANGE,
    SA_TRANSFER,
    SA_SNAPSHOT,
    SA_GARBAGE,
    SA_COUNT,
};

/* Pick a random node id satisfying `want` (0 = none). */
static uint64_t pick_node(struct sim *sim, bool (*want)(const struct sim_node *))
{
    uint64_t ids[SIM_MAX_IDS];
    uint32_t k = 0;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        if (want(&sim->nodes[id])) {
            ids[k++] = id;
        }
    }
    return k == 0 ? 0 : ids[rng_below(&sim->rng, k)];
}

static bool is_alive(const struct sim_node *n)
{
    return n->alive;
}

static bool is_down(const struct sim_node *n)
{
    return n->exists && !n->alive;
}

static bool is_hinted(const struct sim_node *n)
{
    return n->alive && n->hinted;
}

static bool has_ready_writes(const struct sim_node *n)
{
    return n->alive && n->store.op_count > 0;
}

static uint32_t alive_count(const struct sim *sim)
{
    uint32_t k = 0;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        k += sim->nodes[id].alive ? 1u : 0u;
    }
    return k;
}

static void update_clock(struct sim *sim)
{
    uint64_t min = UINT64_MAX;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        const struct sim_node *n = &sim->nodes[id];
        if (n->alive && n->clock < min) {
            min = n->clock;
        }
    }
    if (min != UINT64_MAX && min > sim->clock) {
        sim->clock = min;
    }
}

/* A live node, chosen in proportion to its clock rate. */
static uint64_t pick_ticker(struct sim *sim)
{
    uint32_t total = 0;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        total += sim->nodes[id].alive ? sim->nodes[id].clock_rate : 0u;
    }
    if (total == 0) {
        return 0;
    }
    uint32_t r = (uint32_t)rng_below(&sim->rng, total);
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        uint32_t w = sim->nodes[id].alive ? sim->nodes[id].clock_rate : 0u;
        if (r < w) {
            return id;
        }
        r -= w;
    }
    YGGR_UNREACHABLE();
}

static void do_tick(struct sim *sim)
{
    bool rates = (sim->opt.features & SIM_F_DRIFT) || sim->opt.clock_skew != 0;
    uint64_t id = rates ? pick_ticker(sim) : pick_node(sim, is_alive);
    if (id == 0) {
        node_start(sim, pick_node(sim, is_down)); /* nobody left to tick */
        return;
    }
    if (sim->nodes[id].clock >= sim->clock + sim->clock_skew) {
        /* Too far ahead: advance the slowest live node instead. */
        for (uint32_t k = 1; k <= sim->id_count; k++) {
            const struct sim_node *n = &sim->nodes[k];
            if (n->alive && n->clock < sim->nodes[id].clock) {
                id = k;
            }
        }
    }
    sim_tick(sim, id);
    update_clock(sim);
}

static void do_deliver(struct sim *sim)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        uint32_t i = (uint32_t)rng_below(&sim->rng, sim->net.count);
        if (sim->net.q[i].deliver_at <= sim->now_step) {
            sim_deliver(sim, i);
            return;
        }
    }
    do_tick(sim);
}

static void do_flush(struct sim *sim)
{
    uint64_t id = pick_node(sim, has_ready_writes);
    YGGR_ASSERT(id != 0);
    uint32_t ready = store_ready(&sim->nodes[id].store, sim->now_step);
    if (ready == 0) {
        do_tick(sim);
        return;
    }
    node_flush(sim, id, (uint32_t)rng_range(&sim->rng, 1, ready));
}

/* Fast disks: everything submitted becomes durable before the next step. */
static void flush_all(struct sim *sim)
{
    for (int round = 0; round < 16; round++) {
        bool any = false;
        for (uint32_t id = 1; id <= sim->id_count && !sim->check.failed; id++) {
            struct sim_node *n = &sim->nodes[id];
            if (n->alive && n->store.op_count > 0) {
                node_flush(sim, id, n->store.op_count);
                any = true;
            }
        }
        if (!any) {
            return;
        }
    }
}

/* The leader most of the time, else any live node (which must refuse or redirect). */
static uint64_t client_target(struct sim *sim)
{
    uint64_t leader = sim_leader(sim);
    if (leader != 0 && rng_chance(&sim->rng, 3, 4)) {
        return leader;
    }
    return pick_node(sim, is_alive);
}

static void do_network_fault(struct sim *sim, enum sched_action a)
{
    uint32_t i = (uint32_t)rng_below(&sim->rng, sim->net.count);
    struct flight *f = &sim->net.q[i];
    switch (a) {
    case SA_DROP: {
        trace_msg(&sim->trace, sim->now_step, TR_DROP, f->msg.from, &f->msg, 0);
        struct flight taken;
        net_take(&sim->net, i, &taken);
        net_flight_release(&taken);
        return;
    }
    case SA_DUP:
        trace_msg(&sim->trace, sim->now_step, TR_DUP, f->msg.from, &f->msg, 0);
        net_duplicate(&sim->net, i);
        return;
    case SA_DELAY:
        f->deliver_at = sim->now_step + rng_range(&sim->rng, 1, 60);
        trace_msg(&sim->trace, sim->now_step, TR_DELAY, f->msg.from, &f->msg, 0);
        return;
    case SA_TICK: case SA_DELIVER: case SA_FLUSH: case SA_PROPOSE: case SA_READ:
    case SA_PARTITION: case SA_HEAL: case SA_CRASH: case SA_RESTART: case SA_CHANGE:
    case SA_TRANSFER: case SA_SNAPSHOT: case SA_GARBAGE: case SA_COUNT:
        break;
    }
    YGGR_UNREACHABLE();
}

static void do_partition(struct sim *sim)
{
    uint32_t kind = (uint32_t)rng_range(&sim->rng, 1, 3);
    uint64_t all = ((1ull << (sim->id_count + 1)) - 1) & ~1ull;
    uint64_t a = rng_next(&sim->rng) & all;
    uint64_t leader = sim_leader(sim);
    if (kind == 3) {
        if (leader == 0) {
            kind = 1;
        } else {
            a = 1ull << leader;
        }
    }
    if (a == 0 || a == all) {
        a = 1ull << 1;
    }
    uint64_t b = all & ~a;
    net_heal(&sim->net);
    for (uint32_t x = 1; x <= sim->id_count; x++) {
        for (uint32_t y = 1; y <= sim->id_count; y++) {
            bool cross = ((a >> x) & 1) && ((b >> y) & 1);
            bool back = ((b >> x) & 1) && ((a >> y) & 1);
            sim->net.blocked[x][y] = cross || (kind != 2 && back);
        }
    }
    sim->net.partitioned = true;
    sim->stats.partitions++;
    sim_note(sim, TR_PARTITION, 0, 0, kind, a, b, 0);
}

static void do_crash(struct sim *sim)
{
    uint64_t id = pick_node(sim, is_alive);
    struct store *s = &sim->nodes[id].store;
    uint32_t pending = s->op_count;
    uint32_t survive = rng_chance(&sim->rng, 1, 2) ? 0 : (uint32_t)rng_range(&sim->rng, 0, pending);
    uint32_t torn = UINT32_MAX;
    if ((sim->opt.features & SIM_F_TORN) && survive < pending && rng_chance(&sim->rng, 1, 2)) {
        const struct pop *next = &s->ops[(s->op_head + survive) % s->op_cap];
        if (next->kind == POP_APPEND && next->count > 0) {
            torn = (uint32_t)rng_below(&sim->rng, next->count);
        }
    }
    node_crash(sim, id, survive, torn);
}

static bool in_config(const struct yggr_membership *m, uint64_t id)
{
    return yggr_membership_is_voter(m, id) || yggr_membership_is_learner(m, id);
}

static uint64_t pick_from(struct sim *sim, const uint64_t *ids, uint32_t count)
{
    return count == 0 ? 0 : ids[rng_below(&sim->rng, count)];
}

static void do_change(struct sim *sim)
{
    uint64_t leader = sim_leader(sim);
    if (leader == 0) {
        do_tick(sim);
        return;
    }
    struct yggr_membership m;
    yggr_engine_config_latest(sim->nodes[leader].engine, &m);
    uint64_t outside[SIM_MAX_IDS];
    uint32_t out_count = 0;
    for (uint32_t id = 1; id <= sim->id_count; id++) {
        if (!in_config(&m, id)) {
            outside[out_count++] = id;
        }
    }
    enum yggr_change_type type = (enum yggr_change_type)rng_range(&sim->rng, 1, 4);
    uint64_t target = 0;
    switch (type) {
    case YGGR_CHANGE_ADD_VOTER:
    case YGGR_CHANGE_ADD_LEARNER:
        target = pick_from(sim, outside, out_count);
        if (target != 0 && !sim->nodes[target].alive) {
            node_start(sim, target); /* a joiner starts with an empty configuration */
        }
        break;
    case YGGR_CHANGE_REMOVE_VOTER:
        target = m.voter_count >= 2 ? pick_from(sim, m.voters, m.voter_count) : 0;
        break;
    case YGGR_CHANGE_PROMOTE_LEARNER:
        target = pick_from(sim, m.learners, m.learner_count);
        break;
    }
    if (target == 0 || sim->check.failed) {
        do_tick(sim);
        return;
    }
    (void)sim_change(sim, leader, type, target);
}

static void do_transfer(struct sim *sim)
{
    uint64_t leader = sim_leader(sim);
    if (leader == 0) {
        do_tick(sim);
        return;
    }
    struct yggr_membership m;
    yggr_engine_config_latest(sim->nodes[leader].engine, &m);
    uint64_t target = pick_from(sim, m.voters, m.voter_count);
    (void)sim_transfer(sim, leader, target == 0 ? leader : target);
}

static void weights(struct sim *sim, uint32_t *w)
{
    uint32_t f = sim->opt.features;
    bool calm = sim->healed;
    bool msgs = sim->net.count > 0;
    memset(w, 0, SA_COUNT * sizeof(w[0]));
    if (alive_count(sim) == 0) {
        /* Every node is down (a whole-cluster power loss): bring one back. */
        w[SA_RESTART] = 1;
        w[SA_DELIVER] = msgs ? 1 : 0;
        return;
    }
    w[SA_TICK] = 30;
    /* Network throughput grows with the backlog (a link is not one message per tick):
     * otherwise pipelined AppendEntries outpace delivery and queues grow without bound. */
    uint32_t backlog = sim->net.count < 64 ? sim->net.count : 64;
    w[SA_DELIVER] = msgs ? 30 + 4 * backlog : 0;
    if ((f & SIM_F_SLOWDISK) && pick_node(sim, has_ready_writes) != 0) {
        w[SA_FLUSH] = 25;
    }
    if (calm) {
        return;
    }
    w[SA_PROPOSE] = (f & SIM_F_PROPOSE) ? 6 : 0;
    w[SA_READ] = (f & SIM_F_READS) ? 3 : 0;
    if ((f & SIM_F_NETFAULT) && msgs) {
        w[SA_DROP] = 2;
        w[SA_DUP] = 1;
        w[SA_DELAY] = 2;
    }
    if (f & SIM_F_PARTITION) {
        w[SA_PARTITION] = sim->net.partitioned ? 0 : 1;
        w[SA_HEAL] = sim->net.partitioned ? 2 : 0;
    }
    if (f & SIM_F_CRASH) {
        w[SA_CRASH] = 1; /* even the last live node: whole-cluster crashes happen */
        w[SA_RESTART] = pick_node(sim, is_down) != 0 ? 3 : 0;
    }
    w[SA_CHANGE] = (f & SIM_F_MEMBERSHIP) ? 1 : 0;
    w[SA_TRANSFER] = (f & SIM_F_TRANSFER) ? 1 : 0;
    w[SA_GARBAGE] = ((f & SIM_F_GARBAGE) && msgs) ? 1 : 0;
    w[SA_SNAPSHOT] = (f & SIM_F_SNAPSHOT) ? 2 : 0;
    if ((f & SIM_F_SNAPSHOT) && pick_node(sim, is_hinted) != 0) {
        w[SA_SNAPSHOT] += 6; /* a hinted node snapshots soon */
    }
}

static enum sched_action draw(struct sim *sim, const uint32_t *w)
{
    uint32_t total = 0;
    for (int a = 0; a < SA_COUNT; a++) {
        total += w[a];
    }
    YGGR_ASSERT(total > 0);
    uint32_t r = (uint32_t)rng_below(&sim->rng, total);
    for (int a = 0; a < SA_COUNT; a++) {
        if (r < w[a]) {
            return (enum sched_action)a;
        }
        r -= w[a];
    }
    YGGR_UNREACHABLE();
}

static void dispatch(struct sim *sim, enum sched_action a)
{
    struct sim_rng *rng = &sim->rng;
    switch (a) {
    case SA_TICK: do_tick(sim); return;
    case SA_DELIVER: do_deliver(sim); return;
    case SA_FLUSH: do_flush(sim); return;
    case SA_PROPOSE:
        (void)sim_propose(sim, client_target(sim), (uint32_t)rng_range(rng, 1, 4),
                          (uint32_t)rng_range(rng, 8, (sim->opt.features & SIM_F_BIGCMD)
                                                          ? 600 : 64));
        return;
    case SA_READ: (void)sim_read(sim, client_target(sim)); return;
    case SA_DROP: case SA_DUP: case SA_DELAY: do_network_fault(sim, a); return;
    case SA_PARTITION: do_partition(sim); return;
    case SA_HEAL:
        net_heal(&sim->net);
        sim_note(sim, TR_HEAL, 0, 0, 0, 0, 0, 0);
        return;
    case SA_CRASH: do_crash(sim); return;
    case SA_RESTART: node_start(sim, pick_node(sim, is_down)); return;
    case SA_CHANGE: do_change(sim); return;
    case SA_TRANSFER: do_transfer(sim); return;
    case SA_SNAPSHOT: {
        uint64_t id = pick_node(sim, is_hinted);
        id = id != 0 ? id : pick_node(sim, is_alive);
        sim->nodes[id].hinted = false;
        if (!sim_snapshot(sim, id)) {
            do_tick(sim);
        }
        return;
    }
    case SA_GARBAGE:
        if (!garbage_deliver(sim, (uint32_t)rng_below(rng, sim->net.count))) {
            do_tick(sim);
        }
        return;
    case SA_COUNT: break;
    }
    YGGR_UNREACHABLE();
}

void sched_step(struct sim *sim)
{
    uint32_t w[SA_COUNT];
    weights(sim, w);
    dispatch(sim, draw(sim, w));
    if (!(sim->opt.features & SIM_F_SLOWDISK) && !sim->check.failed) {
        flush_all(sim);
    }
}
