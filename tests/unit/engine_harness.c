/* SPDX-License-Identifier: MIT */
/* Engine test harness: fixtures, builders, finders and a small invariant-checked cluster. */
#include "engine_harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t payload[8] = "command";

struct yggr_engine_config h_config(uint64_t id)
{
    struct yggr_engine_config c;
    yggr_engine_config_init(&c, id);
    c.pre_vote = false;
    c.check_quorum = false;
    c.lease_duration_ticks = 0;
    c.heartbeat_interval_ticks = 1;
    c.election_timeout_min_ticks = 10;
    c.election_timeout_max_ticks = 11;
    c.log_cache_entries = 256;
    c.max_term_runs = 64;
    c.max_pending_reads = 16;
    c.max_step_entries = 512;
    c.max_inflight_msgs = 8;
    c.snapshot_trailing_entries = 0;
    return c;
}

void h_init_learners(struct h_node *n, uint64_t id, const uint64_t *voters, uint32_t nv,
                     const uint64_t *learners, uint32_t nl, const struct yggr_engine_config *cfg)
{
    memset(n, 0, sizeof(*n));
    struct yggr_engine_config c = cfg != NULL ? *cfg : h_config(id);
    c.id = id;
    n->id = id;
    cr_assert_eq(yggr_engine_create(&c, &n->e), 0);
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    for (uint32_t i = 0; i < nv; i++) {
        yggr_membership_apply(&ev.as.recover.base_config, YGGR_CHANGE_ADD_VOTER, voters[i]);
    }
    for (uint32_t i = 0; i < nl; i++) {
        yggr_membership_apply(&ev.as.recover.base_config, YGGR_CHANGE_ADD_LEARNER, learners[i]);
    }
    ev.as.recover.first_index = 1;
    ev.as.recover.last_index = 0;
    h_step(n, &ev);
}

void h_init(struct h_node *n, uint64_t id, const uint64_t *ids, uint32_t count,
            const struct yggr_engine_config *cfg)
{
    h_init_learners(n, id, ids, count, NULL, 0, cfg);
}

void h_init3(struct h_node *n, uint64_t id)
{
    static const uint64_t ids[3] = {1, 2, 3};
    h_init(n, id, ids, 3, NULL);
}

void h_fini(struct h_node *n)
{
    yggr_engine_destroy(n->e);
    n->e = NULL;
}

void h_step(struct h_node *n, const struct yggr_event *ev)
{
    yggr_engine_step(n->e, ev, &n->act);
    if (n->act.flags & YGGR_ACT_HARD_STATE) {
        n->hs_term = n->act.hard_state.term;
        n->hs_vote = n->act.hard_state.vote;
    }
    char why[256] = "";
    int rc = yggr_engine_check(n->e, why, sizeof(why));
    cr_assert_eq(rc, 0, "node %llu: %s", (unsigned long long)n->id, why);
}

void h_tick(struct h_node *n)
{
    struct yggr_event ev = {.type = YGGR_EVENT_TICK};
    h_step(n, &ev);
}

void h_ticks(struct h_node *n, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        h_tick(n);
    }
}

void h_recv(struct h_node *n, const struct yggr_msg *m)
{
    struct yggr_event ev = {.type = YGGR_EVENT_RECEIVE, .as.receive = *m};
    h_step(n, &ev);
}

void h_hs_persisted(struct h_node *n)
{
    struct yggr_event ev = {.type = YGGR_EVENT_HARD_STATE_PERSISTED};
    ev.as.hard_state_persisted.term = n->hs_term;
    ev.as.hard_state_persisted.vote = n->hs_vote;
    h_step(n, &ev);
}

void h_log_persisted(struct h_node *n, uint64_t index, uint64_t term)
{
    struct yggr_event ev = {.type = YGGR_EVENT_LOG_PERSISTED};
    ev.as.log_persisted.index = index;
    ev.as.log_persisted.term = term;
    h_step(n, &ev);
}

void h_persist_all(struct h_node *n)
{
    uint64_t last = n->act.last_index;
    h_log_persisted(n, last, yggr_engine_term_at(n->e, last));
}

void h_propose(struct h_node *n, uint32_t count)
{
    static struct yggr_entry cmds[1024];
    cr_assert(count <= 1024);
    for (uint32_t i = 0; i < count; i++) {
        cmds[i] = (struct yggr_entry){.type = YGGR_ENTRY_COMMAND, .data = payload, .len = 7};
    }
    struct yggr_event ev = {.type = YGGR_EVENT_PROPOSE};
    ev.as.propose.entries = cmds;
    ev.as.propose.count = count;
    h_step(n, &ev);
}

void h_read(struct h_node *n, uint64_t id)
{
    struct yggr_event ev = {.type = YGGR_EVENT_READ, .as.read.id = id};
    h_step(n, &ev);
}

struct yggr_msg h_vote_req(uint64_t from, uint64_t to, uint64_t term, uint64_t last_index,
                           uint64_t last_term)
{
    struct yggr_msg m = {.type = YGGR_MSG_VOTE_REQUEST, .from = from, .to = to, .term = term};
    m.as.vote_request.candidate_id = from;
    m.as.vote_request.last.index = last_index;
    m.as.vote_request.last.term = last_term;
    return m;
}

struct yggr_msg h_prevote_req(uint64_t from, uint64_t to, uint64_t term, uint64_t last_index,
                              uint64_t last_term)
{
    struct yggr_msg m = h_vote_req(from, to, term, last_index, last_term);
    m.type = YGGR_MSG_PRE_VOTE_REQUEST;
    return m;
}

struct yggr_msg h_vote_resp(uint64_t from, uint64_t to, uint64_t term, bool granted)
{
    struct yggr_msg m = {.type = YGGR_MSG_VOTE_RESPONSE, .from = from, .to = to, .term = term};
    m.as.vote_response.granted = granted;
    return m;
}

struct yggr_msg h_prevote_resp(uint64_t from, uint64_t to, uint64_t term, bool granted)
{
    struct yggr_msg m = h_vote_resp(from, to, term, granted);
    m.type = YGGR_MSG_PRE_VOTE_RESPONSE;
    return m;
}

static struct yggr_entry entry_pool[8][512];
static unsigned entry_pool_next;

const struct yggr_entry *h_entries_terms(uint64_t first, const uint64_t *terms, uint32_t count)
{
    cr_assert(count <= 512);
    struct yggr_entry *e = entry_pool[entry_pool_next++ % 8];
    for (uint32_t k = 0; k < count; k++) {
        e[k] = (struct yggr_entry){.index = first + k, .term = terms[k],
                                   .type = YGGR_ENTRY_COMMAND, .data = payload, .len = 7};
    }
    return e;
}

const struct yggr_entry *h_entries(uint64_t first, uint64_t term, uint32_t count)
{
    uint64_t terms[512];
    cr_assert(count <= 512);
    for (uint32_t k = 0; k < count; k++) {
        terms[k] = term;
    }
    return h_entries_terms(first, terms, count);
}

struct yggr_msg h_append(uint64_t from, uint64_t to, uint64_t term, uint64_t prev_index,
                         uint64_t prev_term, const struct yggr_entry *entries, uint32_t count,
                         uint64_t commit)
{
    struct yggr_msg m = {.type = YGGR_MSG_APPEND_REQUEST, .from = from, .to = to, .term = term};
    m.as.append.leader_id = from;
    m.as.append.prev.index = prev_index;
    m.as.append.prev.term = prev_term;
    m.as.append.entries = entries;
    m.as.append.entry_count = count;
    m.as.append.leader_commit = commit;
    return m;
}

struct yggr_msg h_append_ok(uint64_t from, uint64_t to, uint64_t term, uint64_t last,
                            uint64_t round)
{
    struct yggr_msg m = {.type = YGGR_MSG_APPEND_RESPONSE, .from = from, .to = to, .term = term};
    m.as.append_response.success = true;
    m.as.append_response.last_appended = last;
    m.as.append_response.round = round;
    return m;
}

struct yggr_msg h_append_conflict(uint64_t from, uint64_t to, uint64_t term, uint64_t hint,
                                  uint64_t conflict_term)
{
    struct yggr_msg m = {.type = YGGR_MSG_APPEND_RESPONSE, .from = from, .to = to, .term = term};
    m.as.append_response.hint = hint;
    m.as.append_response.conflict_term = conflict_term;
    return m;
}

const struct yggr_msg *h_find(const struct h_node *n, enum yggr_msg_type type, uint64_t to)
{
    for (uint32_t i = 0; i < n->act.send.count; i++) {
        const struct yggr_msg *m = &n->act.send.msgs[i];
        if (m->type == type && (to == 0 || m->to == to)) {
            return m;
        }
    }
    return NULL;
}

uint32_t h_count(const struct h_node *n, enum yggr_msg_type type)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < n->act.send.count; i++) {
        c += n->act.send.msgs[i].type == type;
    }
    return c;
}

bool h_has(const struct h_node *n, uint32_t flag)
{
    return (n->act.flags & flag) != 0;
}

const struct yggr_read_result *h_read_result(const struct h_node *n, uint64_t id)
{
    if (!h_has(n, YGGR_ACT_READS)) {
        return NULL;
    }
    for (uint32_t i = 0; i < n->act.reads.count; i++) {
        if (n->act.reads.results[i].id == id) {
            return &n->act.reads.results[i];
        }
    }
    return NULL;
}

struct yggr_engine_metrics h_metrics(const struct h_node *n)
{
    struct yggr_engine_metrics m;
    yggr_engine_metrics(n->e, &m);
    return m;
}

struct yggr_peer_progress h_progress(const struct h_node *n, uint64_t peer)
{
    struct yggr_peer_progress p[YGGR_MAX_MEMBERS];
    uint32_t count = yggr_engine_progress(n->e, p, YGGR_MAX_MEMBERS);
    for (uint32_t i = 0; i < count; i++) {
        if (p[i].id == peer) {
            return p[i];
        }
    }
    cr_assert_fail("peer %llu not tracked", (unsigned long long)peer);
    return p[0];
}

void h_make_leader(struct h_node *n)
{
    h_init3(n, 1);
    h_ticks(n, 10);
    cr_assert_eq(n->act.role, YGGR_ROLE_CANDIDATE);
    uint64_t term = n->act.term;
    h_hs_persisted(n);
    struct yggr_msg g = h_vote_resp(2, 1, term, true);
    h_recv(n, &g);
    cr_assert_eq(n->act.role, YGGR_ROLE_LEADER);
    uint64_t noop = n->act.last_index;
    h_log_persisted(n, noop, term);
    struct yggr_msg ok2 = h_append_ok(2, 1, term, noop, 0);
    struct yggr_msg ok3 = h_append_ok(3, 1, term, noop, 0);
    h_recv(n, &ok2);
    h_recv(n, &ok3);
    cr_assert_eq(n->act.commit_index, noop);
}

void h_make_follower(struct h_node *n, uint64_t term)
{
    h_init3(n, 1);
    struct yggr_msg hb = h_append(2, 1, term, 0, 0, NULL, 0, 0);
    h_recv(n, &hb);
    h_hs_persisted(n);
    cr_assert_eq(n->act.leader_id, 2);
}

/* ------------------------------------------------------------------------------------
 * Mini cluster
 * ---------------------------------------------------------------------------------- */

#define HC_MAX 5

struct hc_msg {
    struct yggr_msg m;
    struct yggr_entry *entries;
    struct yggr_membership config;
};

struct hc_write {
    int kind; /* 0 hard state, 1 append, 2 compact, 3 installed snapshot */
    struct yggr_snapshot_meta meta;
    uint64_t term, vote;
    uint64_t truncate_from;
    struct yggr_entry *entries;
    uint32_t count;
};

struct hc_node {
    struct h_node n;
    bool up;
    /* durable disk */
    uint64_t term, vote;
    struct yggr_entry *log; /* index i at log[i] */
    uint64_t first;         /* entries below are compacted */
    uint64_t last;
    bool has_snap;
    struct yggr_snapshot_meta snap;
    uint64_t cap;
    struct hc_write *pending;
    uint32_t pending_count, pending_cap;
    uint64_t applied;
};

struct h_cluster {
    struct h_cluster_options o;
    uint32_t count;               /* founders + joiners */
    struct hc_node nodes[HC_MAX];
    struct hc_msg *net;
    uint32_t net_count, net_cap;
    uint64_t rng;
    uint64_t *leader_of_term; /* index: term */
    uint64_t terms_cap;
    uint64_t *applied_term;   /* index: log index */
    uint64_t applied_cap;
    uint64_t steps;
};

static uint64_t hc_rand(struct h_cluster *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

static void *grow(void *p, uint64_t *cap, uint64_t need, size_t size)
{
    if (need < *cap) {
        return p;
    }
    uint64_t ncap = *cap ? *cap : 64;
    while (ncap <= need) {
        ncap *= 2;
    }
    p = realloc(p, ncap * size);
    cr_assert_not_null(p);
    memset((char *)p + *cap * size, 0, (ncap - *cap) * size);
    *cap = ncap;
    return p;
}

static void hc_step(struct h_cluster *c, struct hc_node *hn, const struct yggr_event *ev);

static void hc_boot(struct h_cluster *c, struct hc_node *hn, uint64_t id)
{
    struct yggr_engine_config cfg = c->o.cfg != NULL ? *c->o.cfg : h_config(id);
    cfg.id = id;
    cfg.seed = c->o.seed * 31 + id;
    if (c->o.cfg == NULL) {
        cfg.election_timeout_max_ticks = 20;
    }
    memset(&hn->n, 0, sizeof(hn->n));
    hn->n.id = id;
    cr_assert_eq(yggr_engine_create(&cfg, &hn->n.e), 0);
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    for (uint32_t i = 1; i <= c->o.nodes && id <= c->o.nodes; i++) {
        yggr_membership_apply(&ev.as.recover.base_config, YGGR_CHANGE_ADD_VOTER, i);
    }
    ev.as.recover.term = hn->term;
    ev.as.recover.vote = hn->vote;
    if (hn->first == 0) {
        hn->first = 1;
    }
    ev.as.recover.first_index = hn->first;
    ev.as.recover.last_index = hn->last;
    if (hn->has_snap) {
        ev.as.recover.has_snapshot = true;
        ev.as.recover.snapshot = hn->snap;
        if (hn->last <= hn->snap.last.index) {
            ev.as.recover.first_index = hn->snap.last.index + 1;
            ev.as.recover.last_index = hn->snap.last.index;
        }
    }
    struct yggr_term_run runs[4096];
    uint32_t nr = 0;
    for (uint64_t i = ev.as.recover.first_index; i <= ev.as.recover.last_index; i++) {
        if (nr > 0 && runs[nr - 1].term > hn->log[i].term) {
            fprintf(stderr, "disk of %llu: first %llu last %llu snap %llu/%llu at %llu term %llu < %llu\n",
                    (unsigned long long)id, (unsigned long long)hn->first,
                    (unsigned long long)hn->last, (unsigned long long)hn->snap.last.index,
                    (unsigned long long)hn->snap.last.term, (unsigned long long)i,
                    (unsigned long long)hn->log[i].term, (unsigned long long)runs[nr - 1].term);
            for (uint64_t k = hn->first; k <= hn->last; k++) fprintf(stderr, "%llu:%llu ", (unsigned long long)k, (unsigned long long)hn->log[k].term);
            fprintf(stderr, "\n");
        }
        if (nr == 0 || runs[nr - 1].term != hn->log[i].term) {
            cr_assert(nr < 4096);
            runs[nr++] = (struct yggr_term_run){hn->log[i].term, i};
        }
    }
    ev.as.recover.terms = runs;
    ev.as.recover.term_count = nr;
    /* Every CONFIG entry above the snapshot: the configuration is replayed from them. */
    static struct yggr_entry configs[4096];
    uint32_t nc = 0;
    uint64_t floor = hn->has_snap ? hn->snap.last.index : 0;
    for (uint64_t i = ev.as.recover.first_index; i <= ev.as.recover.last_index; i++) {
        if (i > floor && hn->log[i].type == YGGR_ENTRY_CONFIG) {
            cr_assert(nc < 4096);
            configs[nc++] = hn->log[i];
        }
    }
    ev.as.recover.configs = configs;
    ev.as.recover.config_count = nc;
    uint64_t have = ev.as.recover.last_index + 1 - ev.as.recover.first_index;
    uint64_t tail = have > 32 ? 32 : have;
    ev.as.recover.tail = tail > 0 ? &hn->log[ev.as.recover.last_index - tail + 1] : NULL;
    ev.as.recover.tail_count = (uint32_t)tail;
    hn->up = true;
    hn->applied = hn->has_snap ? hn->snap.last.index : 0;
    hc_step(c, hn, &ev); /* RECOVER may append (the bootstrap entries) and apply */
}

struct h_cluster *h_cluster_new(const struct h_cluster_options *o)
{
    struct h_cluster *c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    c->o = *o;
    c->count = o->nodes + o->joiners;
    cr_assert(o->nodes >= 1 && c->count <= HC_MAX);
    c->rng = o->seed != 0 ? o->seed : 1;
    for (uint32_t i = 0; i < c->count; i++) {
        hc_boot(c, &c->nodes[i], i + 1);
    }
    return c;
}

static void free_msg(struct hc_msg *m)
{
    free(m->entries);
}

void h_cluster_free(struct h_cluster *c)
{
    for (uint32_t i = 0; i < c->count; i++) {
        struct hc_node *hn = &c->nodes[i];
        if (hn->n.e != NULL) {
            yggr_engine_destroy(hn->n.e);
        }
        for (uint32_t k = 0; k < hn->pending_count; k++) {
            free(hn->pending[k].entries);
        }
        free(hn->pending);
        free(hn->log);
    }
    for (uint32_t k = 0; k < c->net_count; k++) {
        free_msg(&c->net[k]);
    }
    free(c->net);
    free(c->leader_of_term);
    free(c->applied_term);
    free(c);
}

static struct hc_node *node_of(struct h_cluster *c, uint64_t id)
{
    cr_assert(id >= 1 && id <= c->count);
    return &c->nodes[id - 1];
}

static void disk_apply(struct hc_node *hn, const struct hc_write *w)
{
    if (w->kind == 0) {
        hn->term = w->term;
        hn->vote = w->vote;
        return;
    }
    if (w->kind == 2) {
        if (w->truncate_from > hn->first) {
            hn->first = w->truncate_from;
        }
        return;
    }
    if (w->kind == 3) {
        uint64_t idx = w->meta.last.index;
        bool keep = idx <= hn->last && idx >= hn->first && hn->log[idx].term == w->meta.last.term;
        if (!keep) {
            hn->last = idx;
        }
        hn->first = idx + 1;
        hn->has_snap = true;
        hn->snap = w->meta;
        return;
    }
    if (w->truncate_from != 0) {
        cr_assert(w->truncate_from <= hn->last + 1);
        hn->last = w->truncate_from - 1;
    }
    for (uint32_t k = 0; k < w->count; k++) {
        const struct yggr_entry *e = &w->entries[k];
        if (k == 0 && hn->last + 1 < e->index && hn->has_snap &&
            hn->snap.last.index + 1 >= e->index) {
            /* The snapshot covers the entries that never reached the disk. */
            hn->last = e->index - 1;
            hn->first = e->index;
        }
        if (e->index != hn->last + 1) {
            fprintf(stderr, "gap: node %llu entry %llu disk last %llu first %llu snap %llu trunc %llu\n",
                    (unsigned long long)hn->n.id, (unsigned long long)e->index,
                    (unsigned long long)hn->last, (unsigned long long)hn->first,
                    (unsigned long long)hn->snap.last.index, (unsigned long long)w->truncate_from);
        }
        cr_assert_eq(e->index, hn->last + 1, "non-contiguous append");
        hn->log = grow(hn->log, &hn->cap, e->index, sizeof(*hn->log));
        hn->log[e->index] = *e;
        hn->log[e->index].buf = NULL;
        hn->last = e->index;
    }
}

static void queue_send(struct h_cluster *c, struct hc_node *from, const struct yggr_msg *m)
{
    uint64_t cap = c->net_cap;
    c->net = grow(c->net, &cap, c->net_count, sizeof(*c->net));
    c->net_cap = (uint32_t)cap;
    struct hc_msg *q = &c->net[c->net_count];
    memset(q, 0, sizeof(*q));
    q->m = *m;
    if (m->type == YGGR_MSG_APPEND_REQUEST && m->as.append.entry_count > 0) {
        uint32_t n = m->as.append.entry_count;
        q->entries = calloc(n, sizeof(*q->entries));
        for (uint32_t k = 0; k < n; k++) {
            uint64_t idx = m->as.append.prev.index + 1 + k;
            if (m->as.append.from_storage) {
                if (idx > from->last || idx < from->first) {
                    free(q->entries);
                    return; /* storage no longer has it: drop */
                }
                q->entries[k] = from->log[idx];
            } else {
                q->entries[k] = m->as.append.entries[k];
                q->entries[k].buf = NULL;
            }
        }
        q->m.as.append.entries = q->entries;
        q->m.as.append.from_storage = false;
    }
    if (m->type == YGGR_MSG_SNAPSHOT_REQUEST) {
        static const uint8_t snap_bytes[4096];
        q->config = *m->as.snapshot.config;
        q->m.as.snapshot.config = &q->config;
        cr_assert(m->as.snapshot.len <= sizeof(snap_bytes));
        q->m.as.snapshot.data = m->as.snapshot.len > 0 ? snap_bytes : NULL;
    }
    c->net_count++;
}

static void check_apply(struct h_cluster *c, struct hc_node *hn)
{
    const struct yggr_actions *a = &hn->n.act;
    if (a->flags & YGGR_ACT_APPLY_SNAPSHOT) {
        cr_assert(a->apply_snapshot.last.index > hn->applied);
        hn->applied = a->apply_snapshot.last.index;
    }
    if (!(a->flags & YGGR_ACT_APPLY)) {
        return;
    }
    cr_assert_eq(a->apply.first_index, hn->applied + 1, "node %llu apply gap",
                 (unsigned long long)hn->n.id);
    for (uint32_t k = 0; k < a->apply.count; k++) {
        uint64_t idx = a->apply.first_index + k;
        uint64_t term;
        if (a->apply.from_storage) {
            cr_assert(idx <= hn->last && idx >= hn->first);
            term = hn->log[idx].term;
        } else {
            cr_assert_eq(a->apply.entries[k].index, idx);
            term = a->apply.entries[k].term;
        }
        c->applied_term = grow(c->applied_term, &c->applied_cap, idx, sizeof(uint64_t));
        if (c->applied_term[idx] == 0) {
            c->applied_term[idx] = term;
        }
        cr_assert_eq(c->applied_term[idx], term, "state machine safety at index %llu",
                     (unsigned long long)idx);
    }
    hn->applied += a->apply.count;
}

static void flush_writes(struct h_cluster *c, struct hc_node *hn, uint32_t count)
{
    for (uint32_t k = 0; k < count && hn->pending_count > 0 && hn->up; k++) {
        struct hc_write w = hn->pending[0];
        memmove(&hn->pending[0], &hn->pending[1], (hn->pending_count - 1) * sizeof(w));
        hn->pending_count--;
        disk_apply(hn, &w);
        struct yggr_event ev;
        memset(&ev, 0, sizeof(ev));
        if (w.kind == 2) {
            continue;
        }
        if (w.kind == 3) {
            ev.type = YGGR_EVENT_SNAPSHOT_PERSISTED;
            ev.as.snapshot_persisted = w.meta.last;
        } else if (w.kind == 0) {
            ev.type = YGGR_EVENT_HARD_STATE_PERSISTED;
            ev.as.hard_state_persisted.term = w.term;
            ev.as.hard_state_persisted.vote = w.vote;
        } else {
            ev.type = YGGR_EVENT_LOG_PERSISTED;
            ev.as.log_persisted.index = hn->last;
            ev.as.log_persisted.term = hn->last > 0 ? hn->log[hn->last].term : 0;
        }
        free(w.entries);
        hc_step(c, hn, &ev);
    }
}

static void record(struct h_cluster *c, struct hc_node *hn)
{
    const struct yggr_actions *a = &hn->n.act;
    uint64_t pcap = hn->pending_cap;
    if (a->flags & YGGR_ACT_HARD_STATE) {
        hn->pending = grow(hn->pending, &pcap, hn->pending_count, sizeof(*hn->pending));
        hn->pending_cap = (uint32_t)pcap;
        hn->pending[hn->pending_count++] =
            (struct hc_write){.kind = 0, .term = a->hard_state.term, .vote = a->hard_state.vote};
    }
    if (a->flags & YGGR_ACT_APPEND) {
        hn->pending = grow(hn->pending, &pcap, hn->pending_count, sizeof(*hn->pending));
        hn->pending_cap = (uint32_t)pcap;
        struct hc_write w = {.kind = 1, .truncate_from = a->append.truncate_from,
                             .count = a->append.count};
        w.entries = calloc(a->append.count + 1, sizeof(*w.entries));
        memcpy(w.entries, a->append.entries, a->append.count * sizeof(*w.entries));
        hn->pending[hn->pending_count++] = w;
    }
    if (a->flags & YGGR_ACT_COMPACT) {
        hn->pending = grow(hn->pending, &pcap, hn->pending_count, sizeof(*hn->pending));
        hn->pending_cap = (uint32_t)pcap;
        hn->pending[hn->pending_count++] =
            (struct hc_write){.kind = 2, .truncate_from = a->compact_below};
    }
    if ((a->flags & YGGR_ACT_SNAPSHOT_CHUNK) && a->snapshot_chunk.done) {
        hn->pending = grow(hn->pending, &pcap, hn->pending_count, sizeof(*hn->pending));
        hn->pending_cap = (uint32_t)pcap;
        hn->pending[hn->pending_count++] =
            (struct hc_write){.kind = 3, .meta = a->snapshot_chunk.meta};
    }
    if (a->role == YGGR_ROLE_LEADER) {
        c->leader_of_term = grow(c->leader_of_term, &c->terms_cap, a->term, sizeof(uint64_t));
        if (c->leader_of_term[a->term] == 0) {
            c->leader_of_term[a->term] = hn->n.id;
        }
        cr_assert_eq(c->leader_of_term[a->term], hn->n.id, "two leaders in term %llu",
                     (unsigned long long)a->term);
    }
    check_apply(c, hn);
    for (uint32_t k = 0; k < a->send.count; k++) {
        queue_send(c, hn, &a->send.msgs[k]);
    }
}

static void hc_step(struct h_cluster *c, struct hc_node *hn, const struct yggr_event *ev)
{
    h_step(&hn->n, ev);
    record(c, hn);
    if (!c->o.delay_persist) {
        flush_writes(c, hn, hn->pending_count);
    }
}

void h_cluster_tick(struct h_cluster *c, uint64_t id)
{
    struct hc_node *hn = node_of(c, id);
    if (hn->up) {
        struct yggr_event ev = {.type = YGGR_EVENT_TICK};
        hc_step(c, hn, &ev);
    }
}

static void deliver(struct h_cluster *c, uint32_t k)
{
    struct hc_msg q = c->net[k];
    memmove(&c->net[k], &c->net[k + 1], (c->net_count - k - 1) * sizeof(q));
    c->net_count--;
    struct hc_node *to = node_of(c, q.m.to);
    if (to->up && (c->o.drop_percent == 0 || hc_rand(c) % 100 >= c->o.drop_percent)) {
        if (q.m.type == YGGR_MSG_SNAPSHOT_REQUEST) {
            q.m.as.snapshot.config = &q.config;
        }
        struct yggr_event ev = {.type = YGGR_EVENT_RECEIVE, .as.receive = q.m};
        hc_step(c, to, &ev);
    }
    free_msg(&q);
}

void h_cluster_step(struct h_cluster *c)
{
    c->steps++;
    uint64_t r = hc_rand(c) % 100;
    if (c->o.delay_persist && r >= 80) {
        struct hc_node *hn = node_of(c, 1 + hc_rand(c) % c->count);
        flush_writes(c, hn, 1 + (uint32_t)(hc_rand(c) % 3));
    } else if (r < 30 || c->net_count == 0) {
        h_cluster_tick(c, 1 + hc_rand(c) % c->count);
    } else {
        deliver(c, c->o.random_order ? (uint32_t)(hc_rand(c) % c->net_count) : 0);
    }
}

void h_cluster_settle(struct h_cluster *c)
{
    for (uint32_t rounds = 0; rounds < 10000; rounds++) {
        bool work = false;
        for (uint32_t i = 0; i < c->count; i++) {
            if (c->nodes[i].pending_count > 0 && c->nodes[i].up) {
                flush_writes(c, &c->nodes[i], c->nodes[i].pending_count);
                work = true;
            }
        }
        if (c->net_count > 0) {
            deliver(c, 0);
            work = true;
        }
        if (!work) {
            return;
        }
    }
}

uint64_t h_cluster_leader(const struct h_cluster *c)
{
    uint64_t best = 0, term = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        const struct hc_node *hn = &c->nodes[i];
        if (hn->up && hn->n.act.role == YGGR_ROLE_LEADER && hn->n.act.term >= term) {
            best = hn->n.id;
            term = hn->n.act.term;
        }
    }
    return best;
}

struct yggr_engine *h_cluster_engine(const struct h_cluster *c, uint64_t id)
{
    return c->nodes[id - 1].n.e;
}

uint32_t h_cluster_propose(struct h_cluster *c, uint32_t count)
{
    uint64_t l = h_cluster_leader(c);
    if (l == 0) {
        return 0;
    }
    static struct yggr_entry cmds[256];
    cr_assert(count <= 256);
    for (uint32_t i = 0; i < count; i++) {
        cmds[i] = (struct yggr_entry){.type = YGGR_ENTRY_COMMAND, .data = payload, .len = 7};
    }
    struct yggr_event ev = {.type = YGGR_EVENT_PROPOSE};
    ev.as.propose.entries = cmds;
    ev.as.propose.count = count;
    struct hc_node *hn = node_of(c, l);
    hc_step(c, hn, &ev);
    return hn->n.act.result.err == 0 ? hn->n.act.result.count : 0;
}

uint64_t h_cluster_min_applied(const struct h_cluster *c)
{
    uint64_t m = UINT64_MAX;
    for (uint32_t i = 0; i < c->count; i++) {
        if (c->nodes[i].up && c->nodes[i].applied < m) {
            m = c->nodes[i].applied;
        }
    }
    return m;
}

void h_cluster_crash(struct h_cluster *c, uint64_t id)
{
    struct hc_node *hn = node_of(c, id);
    yggr_engine_destroy(hn->n.e);
    hn->n.e = NULL;
    for (uint32_t k = 0; k < hn->pending_count; k++) {
        free(hn->pending[k].entries);
    }
    hn->pending_count = 0;
    hc_boot(c, hn, id);
}

uint64_t h_cluster_steps(const struct h_cluster *c)
{
    return c->steps;
}

void h_cluster_event(struct h_cluster *c, uint64_t id, const struct yggr_event *ev)
{
    hc_step(c, node_of(c, id), ev);
}

void h_cluster_snapshot(struct h_cluster *c, uint64_t id)
{
    struct hc_node *hn = node_of(c, id);
    if (!hn->up || hn->applied == 0) {
        return;
    }
    struct yggr_event ev = {.type = YGGR_EVENT_SNAPSHOT_TAKEN};
    ev.as.snapshot_taken.last.index = hn->applied;
    ev.as.snapshot_taken.last.term = yggr_engine_term_at(hn->n.e, hn->applied);
    ev.as.snapshot_taken.size = 1 + hn->applied % 50;
    if (ev.as.snapshot_taken.last.term == 0) {
        return;
    }
    struct yggr_membership cfg;
    yggr_engine_config_committed(hn->n.e, &cfg);
    h_step(&hn->n, &ev);
    if (hn->n.act.flags & YGGR_ACT_COMPACT) {
        /* The local snapshot is durable when reported (taken by the host). */
        hn->has_snap = true;
        hn->snap.last = ev.as.snapshot_taken.last;
        hn->snap.size = ev.as.snapshot_taken.size;
        hn->snap.config = cfg;
    }
    record(c, hn);
    if (!c->o.delay_persist) {
        flush_writes(c, hn, hn->pending_count);
    }
}
