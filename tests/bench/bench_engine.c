/* SPDX-License-Identifier: MIT */
/* Engine benchmark: three in-memory engines, batched 64-byte proposals, immediate persistence.
 *
 * Reports committed proposals per second (wall time over >= 1 s) and heap allocations per
 * committed entry in steady state, counted by wrapping malloc/calloc/realloc/free (this
 * binary defines them and forwards to glibc's __libc_* entry points). The engine must not
 * allocate after create: the second figure is expected to be 0.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "yggr/engine.h"

/* ---------------------------------------------------------------- allocation counting */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static _Atomic unsigned long alloc_calls;

void *malloc(size_t size)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_realloc(p, size);
}

void free(void *p)
{
    __libc_free(p);
}

/* ---------------------------------------------------------------- the cluster */

#define NODES 3
#define BATCH 64
#define QUEUE_MSGS 8192u
#define ENTRY_POOL (1u << 20)

struct qmsg {
    struct yggr_msg m;
};

static struct yggr_engine *eng[NODES + 1];
static struct qmsg queue[QUEUE_MSGS];
static uint32_t q_head, q_count;
static struct yggr_entry *pool;
static uint64_t pool_next;
static uint64_t committed_commands;
static uint64_t dropped;
static uint8_t command[64];

static void fail(const char *what)
{
    fprintf(stderr, "bench_engine: %s\n", what);
    exit(1);
}

static void enqueue(const struct yggr_msg *m)
{
    if (q_count == QUEUE_MSGS) {
        dropped++;
        return;
    }
    struct qmsg *q = &queue[(q_head + q_count) % QUEUE_MSGS];
    q->m = *m;
    if (m->type == YGGR_MSG_APPEND_REQUEST && m->as.append.entry_count > 0) {
        if (m->as.append.from_storage) {
            dropped++; /* no storage in this bench; the leader retries */
            return;
        }
        uint32_t n = m->as.append.entry_count;
        if (pool_next % ENTRY_POOL + n > ENTRY_POOL) {
            pool_next += ENTRY_POOL - pool_next % ENTRY_POOL;
        }
        struct yggr_entry *dst = &pool[pool_next % ENTRY_POOL];
        memcpy(dst, m->as.append.entries, n * sizeof(*dst));
        pool_next += n;
        q->m.as.append.entries = dst;
    }
    q_count++;
}

static void step(uint64_t id, const struct yggr_event *ev);

static void absorb(uint64_t id, const struct yggr_actions *a)
{
    bool hs = (a->flags & YGGR_ACT_HARD_STATE) != 0;
    uint64_t hs_term = a->hard_state.term, hs_vote = a->hard_state.vote;
    bool app = (a->flags & YGGR_ACT_APPEND) != 0 && a->append.count > 0;
    struct yggr_log_id last = {0, 0};
    if (app) {
        last.index = a->append.entries[a->append.count - 1].index;
        last.term = a->append.entries[a->append.count - 1].term;
    }
    for (uint32_t i = 0; i < a->send.count; i++) {
        enqueue(&a->send.msgs[i]);
    }
    if ((a->flags & YGGR_ACT_APPLY) != 0 && id == 1 && !a->apply.from_storage) {
        for (uint32_t i = 0; i < a->apply.count; i++) {
            committed_commands += a->apply.entries[i].type == YGGR_ENTRY_COMMAND;
        }
    }
    /* "Persisted immediately": report durability right after the step. */
    if (hs) {
        struct yggr_event ev = {.type = YGGR_EVENT_HARD_STATE_PERSISTED};
        ev.as.hard_state_persisted.term = hs_term;
        ev.as.hard_state_persisted.vote = hs_vote;
        step(id, &ev);
    }
    if (app) {
        struct yggr_event ev = {.type = YGGR_EVENT_LOG_PERSISTED, .as.log_persisted = last};
        step(id, &ev);
    }
}

static void step(uint64_t id, const struct yggr_event *ev)
{
    struct yggr_actions a;
    yggr_engine_step(eng[id], ev, &a);
    absorb(id, &a);
}

static void deliver_all(void)
{
    while (q_count > 0) {
        struct qmsg q = queue[q_head];
        q_head = (q_head + 1) % QUEUE_MSGS;
        q_count--;
        struct yggr_event ev = {.type = YGGR_EVENT_RECEIVE, .as.receive = q.m};
        step(q.m.to, &ev);
    }
}

static void tick_all(void)
{
    struct yggr_event ev = {.type = YGGR_EVENT_TICK};
    for (uint64_t id = 1; id <= NODES; id++) {
        step(id, &ev);
    }
}

static void setup(void)
{
    pool = calloc(ENTRY_POOL, sizeof(*pool));
    if (pool == NULL) {
        fail("out of memory");
    }
    for (uint64_t id = 1; id <= NODES; id++) {
        struct yggr_engine_config c;
        yggr_engine_config_init(&c, id);
        c.max_append_entries = 256;
        c.log_cache_entries = 1u << 16;
        c.max_step_entries = 1u << 12;
        if (yggr_engine_create(&c, &eng[id]) != 0) {
            fail("create");
        }
        struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
        for (uint64_t m = 1; m <= NODES; m++) {
            yggr_membership_apply(&ev.as.recover.base_config, YGGR_CHANGE_ADD_VOTER, m);
        }
        ev.as.recover.first_index = 1;
        step(id, &ev);
    }
    /* Elect node 1: it ticks first (its own timeout fires), the others follow. */
    struct yggr_event tick = {.type = YGGR_EVENT_TICK};
    for (int i = 0; i < 40; i++) {
        step(1, &tick);
        deliver_all();
        struct yggr_engine_metrics m;
        yggr_engine_metrics(eng[1], &m);
        if (m.role_code == YGGR_ROLE_LEADER) {
            return;
        }
    }
    fail("no leader");
}

static uint64_t propose_round(uint64_t *iter)
{
    static struct yggr_entry batch[BATCH];
    for (uint32_t i = 0; i < BATCH; i++) {
        batch[i] = (struct yggr_entry){.type = YGGR_ENTRY_COMMAND, .data = command,
                                       .len = sizeof(command)};
    }
    struct yggr_event ev = {.type = YGGR_EVENT_PROPOSE};
    ev.as.propose.entries = batch;
    ev.as.propose.count = BATCH;
    step(1, &ev);
    deliver_all();
    if (++*iter % 16 == 0) {
        tick_all();
        deliver_all();
    }
    return committed_commands;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    memset(command, 'x', sizeof(command));
    setup();
    uint64_t iter = 0;
    for (int i = 0; i < 2000; i++) {
        propose_round(&iter); /* warm-up */
    }
    unsigned long allocs0 = atomic_load(&alloc_calls);
    uint64_t c0 = committed_commands;
    double t0 = now_s(), t1 = t0;
    while (t1 - t0 < 1.5) {
        for (int i = 0; i < 256; i++) {
            propose_round(&iter);
        }
        t1 = now_s();
    }
    uint64_t committed = committed_commands - c0;
    unsigned long allocs = atomic_load(&alloc_calls) - allocs0;
    if (committed == 0) {
        fail("nothing committed");
    }
    printf("bench_engine: 3 engines in memory, batches of %d x 64-byte commands\n", BATCH);
    printf("  committed proposals: %llu in %.2f s = %.0f proposals/s\n",
           (unsigned long long)committed, t1 - t0, (double)committed / (t1 - t0));
    printf("  allocations in steady state: %lu (%.6f per committed entry)\n", allocs,
           (double)allocs / (double)committed);
    printf("  messages dropped by the bench queue: %llu\n", (unsigned long long)dropped);
    for (uint64_t id = 1; id <= NODES; id++) {
        yggr_engine_destroy(eng[id]);
    }
    __libc_free(pool);
    return allocs == 0 ? 0 : 2;
}
