/* SPDX-License-Identifier: MIT */
/* Scripted-cluster helpers: hand-driven simulator actions with invariant checks. */

/*
 * Design notes
 * - Each helper is one "scripted step": it advances the simulated step counter (trace
 *   time), performs the action through the same node/sim functions the random
 *   scheduler uses, makes every pending write durable (fast disks) and runs the
 *   cross-node checks. So a scripted test is checked exactly like a random run.
 * - The trace ring keeps the last TRACE_RING records; transcript matching scans only
 *   records newer than the previous match, so tests must expect lines in order and
 *   within the ring (keep the gaps short).
 */
#include "cluster.h"

#include <string.h>

static void begin(struct cluster *c)
{
    struct sim *sim = c->sim;
    sim->step++;
    sim->now_step = sim->step;
}

static void end(struct cluster *c)
{
    struct sim *sim = c->sim;
    for (int round = 0; round < 16 && !sim->check.failed; round++) {
        bool any = false;
        for (uint32_t id = 1; id <= sim->id_count && !sim->check.failed; id++) {
            struct sim_node *n = &sim->nodes[id];
            if (n->alive && n->store.op_count > 0 && !c->hold[id]) {
                node_flush(sim, id, n->store.op_count);
                any = true;
            }
        }
        if (!any) {
            break;
        }
    }
    if (!sim->check.failed) {
        sim_check(sim);
    }
    CLUSTER_CLEAN(c);
}

void cluster_init(struct cluster *c, uint32_t nodes, uint32_t spares, uint32_t features,
                  uint64_t seed)
{
    struct sim_options o;
    sim_options_init(&o);
    o.seed = seed;
    o.node_count = nodes;
    o.spare_count = spares;
    o.features = features;
    o.fixed_config = true;
    memset(c, 0, sizeof(*c));
    c->sim = sim_create(&o);
    cr_assert(c->sim != NULL);
    end(c);
}

void cluster_deinit(struct cluster *c)
{
    sim_destroy(c->sim);
    c->sim = NULL;
}

void cluster_assert_clean(struct cluster *c, const char *file, int line)
{
    const char *why = sim_violation(c->sim);
    if (why != NULL) {
        fprintf(stderr, "%s:%d: VIOLATION %s (seed %llu, step %llu)\n", file, line, why,
                (unsigned long long)c->sim->opt.seed,
                (unsigned long long)sim_violation_step(c->sim));
        sim_dump_trace(c->sim, stderr, 120);
        cr_assert(false, "simulator violation: %s", why);
    }
}

struct sim_node *cluster_node(struct cluster *c, uint64_t id)
{
    cr_assert(id >= 1 && id <= c->sim->id_count);
    return &c->sim->nodes[id];
}

void cluster_tick(struct cluster *c, uint64_t id, uint32_t ticks)
{
    for (uint32_t i = 0; i < ticks; i++) {
        begin(c);
        sim_tick(c->sim, id);
        end(c);
    }
}

static bool matches(const struct flight *f, uint64_t from, uint64_t to, uint32_t type)
{
    return (from == 0 || f->msg.from == from) && (to == 0 || f->msg.to == to) &&
           (type == 0 || (uint32_t)f->msg.type == type);
}

uint32_t cluster_deliver(struct cluster *c, uint64_t from, uint64_t to, uint32_t type,
                         uint32_t max)
{
    uint32_t done = 0;
    while (done < max) {
        /* FIFO: the oldest matching message (scripted runs reorder only on purpose). */
        struct net *net = &c->sim->net;
        uint32_t i = net->count;
        for (uint32_t k = 0; k < net->count; k++) {
            if (matches(&net->q[k], from, to, type) &&
                (i == net->count || net->q[k].id < net->q[i].id)) {
                i = k;
            }
        }
        if (i == net->count) {
            break;
        }
        begin(c);
        sim_deliver(c->sim, i);
        end(c);
        done++;
    }
    return done;
}

uint32_t cluster_drop(struct cluster *c, uint64_t from, uint64_t to, uint32_t type)
{
    uint32_t dropped = 0;
    struct net *net = &c->sim->net;
    for (uint32_t i = 0; i < net->count;) {
        if (!matches(&net->q[i], from, to, type)) {
            i++;
            continue;
        }
        struct flight f;
        trace_msg(&c->sim->trace, c->sim->now_step, TR_DROP, net->q[i].msg.from,
                  &net->q[i].msg, 0);
        net_take(net, i, &f);
        net_flight_release(&f);
        dropped++;
    }
    return dropped;
}

static uint32_t deliver_votes(struct cluster *c)
{
    uint32_t n = 0;
    uint32_t more;
    do {
        more = cluster_deliver(c, 0, 0, YGGR_MSG_PRE_VOTE_REQUEST, 100);
        more += cluster_deliver(c, 0, 0, YGGR_MSG_PRE_VOTE_RESPONSE, 100);
        more += cluster_deliver(c, 0, 0, YGGR_MSG_VOTE_REQUEST, 100);
        more += cluster_deliver(c, 0, 0, YGGR_MSG_VOTE_RESPONSE, 100);
        n += more;
    } while (more > 0);
    return n;
}

void cluster_elect(struct cluster *c, uint64_t id)
{
    struct sim_node *n = cluster_node(c, id);
    /* Leader stickiness: voters refuse while they heard from a leader within the
     * minimum election timeout, so let that much time pass on every other node. */
    for (uint32_t k = 1; k <= c->sim->id_count; k++) {
        struct sim_node *o = &c->sim->nodes[k];
        if (k != id && o->alive) {
            cluster_tick(c, k, o->cfg.election_timeout_min_ticks);
        }
    }
    for (int i = 0; i < 2000 && n->role != YGGR_ROLE_LEADER; i++) {
        cluster_tick(c, id, 1);
        deliver_votes(c);
    }
    cr_assert(eq(int, n->role, YGGR_ROLE_LEADER), "n%llu did not become leader",
              (unsigned long long)id);
}

void cluster_crash(struct cluster *c, uint64_t id)
{
    begin(c);
    node_crash(c->sim, id, 0, UINT32_MAX);
    end(c);
}

void cluster_restart(struct cluster *c, uint64_t id)
{
    begin(c);
    node_start(c->sim, id);
    end(c);
}

void cluster_isolate(struct cluster *c, uint64_t id)
{
    for (uint32_t k = 1; k <= c->sim->id_count; k++) {
        if (k != id) {
            c->sim->net.blocked[id][k] = true;
            c->sim->net.blocked[k][id] = true;
        }
    }
    c->sim->net.partitioned = true;
}

void cluster_heal(struct cluster *c)
{
    net_heal(&c->sim->net);
}

int cluster_propose(struct cluster *c, uint64_t id, uint32_t count)
{
    begin(c);
    int err = sim_propose(c->sim, id, count, 16);
    end(c);
    return err;
}

void cluster_heartbeats(struct cluster *c, uint64_t leader, uint32_t rounds)
{
    for (uint32_t r = 0; r < rounds; r++) {
        cluster_tick(c, leader, cluster_node(c, leader)->cfg.heartbeat_interval_ticks);
        cluster_deliver(c, 0, 0, 0, 500);
    }
}

bool cluster_expect(struct cluster *c, const char *text)
{
    const struct trace *t = &c->sim->trace;
    uint64_t start = c->mark;
    if (t->count > TRACE_RING && start < t->count - TRACE_RING) {
        start = t->count - TRACE_RING;
    }
    char line[256];
    for (uint64_t i = start; i < t->count; i++) {
        trace_format(&t->ring[i % TRACE_RING], line, sizeof(line));
        if (strstr(line, text) != NULL) {
            c->mark = i + 1;
            return true;
        }
    }
    return false;
}

uint32_t cluster_count(struct cluster *c, const char *text)
{
    const struct trace *t = &c->sim->trace;
    uint64_t start = c->mark;
    if (t->count > TRACE_RING && start < t->count - TRACE_RING) {
        start = t->count - TRACE_RING;
    }
    char line[256];
    uint32_t k = 0;
    for (uint64_t i = start; i < t->count; i++) {
        trace_format(&t->ring[i % TRACE_RING], line, sizeof(line));
        k += strstr(line, text) != NULL ? 1u : 0u;
    }
    return k;
}

bool cluster_run_seed(const struct sim_options *o, struct sim_stats *stats)
{
    struct sim *sim = sim_create(o);
    cr_assert(sim != NULL);
    bool ok = sim_run(sim);
    if (!ok) {
        fprintf(stderr, "VIOLATION %s (seed %llu, step %llu)\n", sim_violation(sim),
                (unsigned long long)o->seed, (unsigned long long)sim_violation_step(sim));
        sim_dump_trace(sim, stderr, 200);
    }
    if (stats != NULL) {
        sim_stats(sim, stats);
    }
    sim_destroy(sim);
    return ok;
}

int cluster_change(struct cluster *c, uint64_t id, enum yggr_change_type type, uint64_t node)
{
    begin(c);
    int err = sim_change(c->sim, id, type, node);
    end(c);
    return err;
}

bool cluster_snapshot(struct cluster *c, uint64_t id)
{
    begin(c);
    bool taken = sim_snapshot(c->sim, id);
    end(c);
    return taken;
}

void cluster_join(struct cluster *c, uint64_t id)
{
    cr_assert(id > c->sim->opt.node_count, "n%llu is a founder", (unsigned long long)id);
    cluster_restart(c, id);
}

uint64_t cluster_await_leader(struct cluster *c, uint32_t rounds)
{
    for (uint32_t r = 0; r < rounds; r++) {
        for (uint32_t id = 1; id <= c->sim->id_count; id++) {
            if (c->sim->nodes[id].alive) {
                cluster_tick(c, id, 1);
            }
        }
        cluster_deliver(c, 0, 0, 0, 500);
        uint64_t leader = sim_leader(c->sim);
        if (leader != 0) {
            return leader;
        }
    }
    return 0;
}

void cluster_hold_disk(struct cluster *c, uint64_t id, bool hold)
{
    cr_assert(id >= 1 && id <= c->sim->id_count);
    c->hold[id] = hold;
}

void cluster_flush(struct cluster *c, uint64_t id, uint32_t count)
{
    struct sim_node *n = cluster_node(c, id);
    begin(c);
    node_flush(c->sim, id, count < n->store.op_count ? count : n->store.op_count);
    end(c);
}
