/* SPDX-License-Identifier: MIT */
/* Wing-Gong-Lowe linearizability search for one register (one key), with memoization of
 * (linearized set, register state) as in Lowe's "Testing for linearizability" and Porcupine.
 *
 * The ops' call and return events form a doubly linked list in time order (calls before
 * returns at equal times, so touching operations count as concurrent). The search walks the
 * list: at a call it tries to linearize that op now (apply it to the register); if the model
 * accepts and the (set, state) pair is new, the op's call and return are unlinked ("lifted")
 * and the walk restarts from the head. Reaching a return means its op should have been
 * linearized already: backtrack (pop the last lifted op, relink it, try the next call).
 * Indeterminate writes have their return at +infinity, after every definite event: reaching
 * one means every definite op is linearized, and the remaining indeterminate writes are taken
 * as never applied, so the history is linearizable.
 * Memo key: all ops below the first unlinearized one are linearized, so a set is stored as
 * (first word index, the words from there to the last non-zero word) plus a Zobrist hash. */
#include <stdlib.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

struct memo_entry {
    uint64_t hash;
    uint64_t offset; /* into words */
    uint32_t state;
    uint32_t first_word;
    uint32_t word_count;
    uint32_t used;
};

struct wgl {
    const struct lc_op *ops;
    size_t n;
    /* events: 0..2n-1, head = 2n, tail = 2n + 1 */
    uint32_t *ev_op;
    uint8_t *ev_call;
    uint32_t *prev;
    uint32_t *next;
    uint32_t *ret_of; /* op -> its return event */
    uint32_t *call_of;
    uint64_t *bits;
    uint64_t *zobrist;
    size_t hi_word; /* upper bound of the last non-zero word of bits */
    uint32_t *mark; /* value id -> generation: values some candidate read waits for */
    uint32_t *readers; /* value id -> ok reads returning it (0: writes of it are dead) */
    uint32_t mark_size;
    uint32_t generation;
    uint32_t *cand; /* scratch: the ordered candidates of one configuration */
    struct memo_entry *memo;
    size_t memo_size;
    size_t memo_used;
    uint64_t *words;
    size_t words_used;
    size_t words_cap;
};

struct event_sort {
    uint64_t time;
    uint32_t op;
    uint8_t is_return;
};

static int compare_events(const void *a, const void *b)
{
    const struct event_sort *x = a;
    const struct event_sort *y = b;
    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    if (x->is_return != y->is_return) {
        return x->is_return < y->is_return ? -1 : 1; /* calls first */
    }
    return x->op < y->op ? -1 : x->op > y->op ? 1 : 0;
}

static int build_events(struct wgl *g)
{
    size_t n = g->n;
    struct event_sort *es = malloc(2 * n * sizeof(*es));
    if (es == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        es[2 * i] = (struct event_sort){g->ops[i].invoke_us, (uint32_t)i, 0};
        es[2 * i + 1] = (struct event_sort){g->ops[i].complete_us, (uint32_t)i, 1};
    }
    qsort(es, 2 * n, sizeof(*es), compare_events);
    uint32_t head = (uint32_t)(2 * n);
    uint32_t tail = head + 1;
    for (uint32_t e = 0; e < 2 * n; e++) {
        g->ev_op[e] = es[e].op;
        g->ev_call[e] = !es[e].is_return;
        g->prev[e] = e == 0 ? head : e - 1;
        g->next[e] = e + 1 == 2 * n ? tail : e + 1;
        if (es[e].is_return) {
            g->ret_of[es[e].op] = e;
        } else {
            g->call_of[es[e].op] = e;
        }
    }
    g->next[head] = n > 0 ? 0 : tail;
    g->prev[tail] = n > 0 ? (uint32_t)(2 * n - 1) : head;
    free(es);
    return 0;
}

static int wgl_init(struct wgl *g, const struct lc_op *ops, size_t n)
{
    memset(g, 0, sizeof(*g));
    g->ops = ops;
    g->n = n;
    size_t events = 2 * n + 2;
    size_t words = n / 64 + 1;
    g->ev_op = calloc(events, sizeof(uint32_t));
    g->ev_call = calloc(events, 1);
    g->prev = calloc(events, sizeof(uint32_t));
    g->next = calloc(events, sizeof(uint32_t));
    g->ret_of = calloc(n + 1, sizeof(uint32_t));
    g->call_of = calloc(n + 1, sizeof(uint32_t));
    g->bits = calloc(words, sizeof(uint64_t));
    g->zobrist = malloc((n + 1) * sizeof(uint64_t));
    uint32_t max_value = 0;
    for (size_t i = 0; i < n; i++) {
        max_value = ops[i].value > max_value ? ops[i].value : max_value;
    }
    g->mark_size = max_value + 1;
    g->mark = calloc(g->mark_size, sizeof(uint32_t));
    g->readers = calloc(g->mark_size, sizeof(uint32_t));
    for (size_t i = 0; g->readers != NULL && i < n; i++) {
        if (ops[i].kind == LC_KIND_READ) {
            g->readers[ops[i].value]++;
        }
    }
    g->cand = malloc((n + 1) * sizeof(uint32_t));
    g->memo_size = 1024;
    g->memo = calloc(g->memo_size, sizeof(*g->memo));
    if (g->ev_op == NULL || g->ev_call == NULL || g->prev == NULL || g->next == NULL ||
        g->ret_of == NULL || g->call_of == NULL || g->bits == NULL || g->zobrist == NULL ||
        g->memo == NULL || g->mark == NULL || g->cand == NULL || g->readers == NULL) {
        return -1;
    }
    uint64_t seed = UINT64_C(0x5EED) ^ n;
    for (size_t i = 0; i < n; i++) {
        g->zobrist[i] = tool_splitmix64(&seed);
    }
    return build_events(g);
}

static void wgl_deinit(struct wgl *g)
{
    free(g->ev_op);
    free(g->ev_call);
    free(g->prev);
    free(g->next);
    free(g->ret_of);
    free(g->call_of);
    free(g->bits);
    free(g->zobrist);
    free(g->memo);
    free(g->words);
    free(g->mark);
    free(g->readers);
    free(g->cand);
}

static uint64_t mix_state(uint32_t state)
{
    uint64_t s = state;
    return tool_splitmix64(&s);
}

static int memo_grow(struct wgl *g)
{
    size_t size = g->memo_size * 2;
    struct memo_entry *memo = calloc(size, sizeof(*memo));
    if (memo == NULL) {
        return -1;
    }
    for (size_t i = 0; i < g->memo_size; i++) {
        if (g->memo[i].used) {
            size_t j = g->memo[i].hash & (size - 1);
            while (memo[j].used) {
                j = (j + 1) & (size - 1);
            }
            memo[j] = g->memo[i];
        }
    }
    free(g->memo);
    g->memo = memo;
    g->memo_size = size;
    return 0;
}

/* Remember (current bits, state). Returns 1 when new, 0 when seen before, -1 out of memory. */
static int memo_insert(struct wgl *g, uint64_t set_hash, uint32_t state, size_t first_op)
{
    uint32_t first = (uint32_t)(first_op / 64);
    size_t last = g->hi_word;
    while (last > first && g->bits[last] == 0) {
        last--;
    }
    g->hi_word = last; /* every word above `last` is zero */
    uint32_t count = last >= first ? (uint32_t)(last - first + 1) : 0;
    uint64_t hash = set_hash ^ mix_state(state);
    size_t mask = g->memo_size - 1;
    size_t i = hash & mask;
    for (; g->memo[i].used; i = (i + 1) & mask) {
        const struct memo_entry *m = &g->memo[i];
        if (m->hash == hash && m->state == state && m->first_word == first &&
            m->word_count == count &&
            memcmp(g->words + m->offset, g->bits + first, count * sizeof(uint64_t)) == 0) {
            return 0;
        }
    }
    if (g->words_used + count > g->words_cap) {
        size_t cap = g->words_cap == 0 ? 4096 : g->words_cap * 2;
        cap = cap < g->words_used + count ? g->words_used + count : cap;
        uint64_t *grown = realloc(g->words, cap * sizeof(uint64_t));
        if (grown == NULL) {
            return -1;
        }
        g->words = grown;
        g->words_cap = cap;
    }
    memcpy(g->words + g->words_used, g->bits + first, count * sizeof(uint64_t));
    g->memo[i] = (struct memo_entry){hash, g->words_used, state, first, count, 1};
    g->words_used += count;
    g->memo_used++;
    if (g->memo_used * 2 > g->memo_size && memo_grow(g) != 0) {
        return -1;
    }
    return 1;
}

static void unlink_event(struct wgl *g, uint32_t e)
{
    g->next[g->prev[e]] = g->next[e];
    g->prev[g->next[e]] = g->prev[e];
}

static void relink_event(struct wgl *g, uint32_t e)
{
    g->next[g->prev[e]] = e;
    g->prev[g->next[e]] = e;
}

/* The register model: a write always succeeds; a read succeeds when it saw the state. */
static bool model_step(uint32_t state, const struct lc_op *op, uint32_t *next_state)
{
    if (op->kind == LC_KIND_WRITE) {
        *next_state = op->value;
        return true;
    }
    *next_state = state;
    return op->value == state;
}

static void toggle(struct wgl *g, uint32_t op, uint64_t *set_hash)
{
    g->bits[op / 64] ^= UINT64_C(1) << (op % 64);
    *set_hash ^= g->zobrist[op];
    if (op / 64 > g->hi_word) {
        g->hi_word = op / 64;
    }
}

/* Try to linearize the op of call event e now. 1 = lifted, 0 = not possible, -1 = OOM. */
static int try_lift(struct wgl *g, uint32_t e, uint32_t *state, uint64_t *set_hash)
{
    uint32_t op = g->ev_op[e];
    uint32_t next_state;
    if (!model_step(*state, &g->ops[op], &next_state)) {
        return 0;
    }
    toggle(g, op, set_hash);
    unlink_event(g, e);
    unlink_event(g, g->ret_of[op]);
    uint32_t head = (uint32_t)(2 * g->n);
    uint32_t first = g->next[head];
    size_t first_op = first == head + 1 ? g->n : g->ev_op[first];
    int rc = memo_insert(g, *set_hash, next_state, first_op);
    if (rc == 1) {
        *state = next_state;
        return 1;
    }
    relink_event(g, g->ret_of[op]);
    relink_event(g, e);
    toggle(g, op, set_hash);
    return rc;
}

/* The calls that may be linearized next, best first, into g->cand; returns how many.
 * *done: no definite op is left (the list is empty or its first return is an optional
 * write's). *forced: the single candidate is a move that cannot lose a linearization, so its
 * configuration needs no other try:
 *  - a pending read that matches the register: it changes nothing and nothing must precede
 *    it, so it can move to the front of any linearization of the rest;
 *  - else a pending dead write (no read returns its value): in any linearization of the rest
 *    it is followed by a write (a read after it would return its value) and the first op is
 *    a write (a read there would match the register, the case above), so moving it to the
 *    front changes no read's result and breaks no real-time order (it is pending).
 * Otherwise every pending write is a candidate, those a pending read waits for first. */
static size_t candidates(struct wgl *g, uint32_t state, bool *done, bool *forced)
{
    uint32_t head = (uint32_t)(2 * g->n);
    uint32_t tail = head + 1;
    uint32_t e = g->next[head];
    uint32_t dead = UINT32_MAX;
    size_t count = 0;
    *forced = false;
    g->generation++;
    for (; e != tail && g->ev_call[e]; e = g->next[e]) {
        const struct lc_op *op = &g->ops[g->ev_op[e]];
        if (op->kind == LC_KIND_READ && op->value == state) {
            dead = e;
            break;
        }
        if (op->kind == LC_KIND_READ) {
            g->mark[op->value] = g->generation;
        } else if (g->readers[op->value] == 0 && dead == UINT32_MAX) {
            dead = e;
        }
    }
    if (dead != UINT32_MAX) {
        g->cand[0] = dead;
        *forced = true;
        *done = false;
        return 1;
    }
    *done = e == tail || g->ops[g->ev_op[e]].complete_us == LC_TIME_INF;
    for (int pass = 0; pass < 2; pass++) {
        for (e = g->next[head]; e != tail && g->ev_call[e]; e = g->next[e]) {
            const struct lc_op *op = &g->ops[g->ev_op[e]];
            bool wanted = g->mark[op->value] == g->generation;
            if (op->kind == LC_KIND_WRITE && wanted == (pass == 0)) {
                g->cand[count++] = e;
            }
        }
    }
    return count;
}

struct frame {
    uint32_t ev;     /* lifted call event */
    uint32_t before; /* register before it */
    uint32_t choice; /* its index among the candidates of its configuration */
    bool forced;
};

/* Undo the top frame; returns the candidate index to resume from at that level. */
static uint32_t backtrack(struct wgl *g, struct frame *f, uint32_t *state, uint64_t *set_hash)
{
    uint32_t op = g->ev_op[f->ev];
    relink_event(g, g->ret_of[op]);
    relink_event(g, f->ev);
    toggle(g, op, set_hash);
    *state = f->before;
    /* A forced read had no alternative: its configuration fails too. */
    return f->forced ? UINT32_MAX : f->choice + 1;
}

enum lc_verdict wgl_check(const struct lc_op *ops, size_t n, uint64_t max_steps,
                          uint64_t *steps, struct wgl_stuck *stuck)
{
    struct wgl g;
    TOOL_ASSERT(steps != NULL);
    TOOL_ASSERT(stuck != NULL);
    memset(stuck, 0, sizeof(*stuck));
    memset(&g, 0, sizeof(g));
    *steps = 0;
    struct frame *stack = malloc((n + 1) * sizeof(*stack));
    enum lc_verdict verdict = LC_VERDICT_UNDECIDED;
    if (stack == NULL || wgl_init(&g, ops, n) != 0) {
        goto out; /* out of memory: undecided */
    }
    uint32_t state = LC_NIL;
    uint64_t set_hash = 0;
    size_t sp = 0;
    uint32_t choice = 0;
    for (; *steps < max_steps; (*steps)++) {
        bool done = false;
        bool forced = false;
        size_t count = candidates(&g, state, &done, &forced);
        if (done && !forced) {
            verdict = LC_VERDICT_OK;
            break;
        }
        int rc = 0;
        uint32_t before = state;
        for (; choice < count && rc == 0; choice++) {
            rc = try_lift(&g, g.cand[choice], &state, &set_hash);
        }
        if (rc < 0) {
            break;
        }
        if (rc == 1) {
            stack[sp++] = (struct frame){g.cand[choice - 1], before, choice - 1, forced};
            choice = 0;
            continue;
        }
        if (sp >= stuck->depth) {
            uint32_t e = g.next[2 * n];
            while (g.ev_call[e]) {
                e = g.next[e];
            }
            *stuck = (struct wgl_stuck){sp, state, g.ev_op[e]};
        }
        if (sp == 0) {
            verdict = LC_VERDICT_VIOLATION;
            break;
        }
        choice = backtrack(&g, &stack[--sp], &state, &set_hash);
    }
out:
    wgl_deinit(&g);
    free(stack);
    return verdict;
}
