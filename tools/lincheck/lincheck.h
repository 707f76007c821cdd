/* SPDX-License-Identifier: MIT */
/* lincheck: linearizability checker for key-value register histories (loadgen --history).
 * Model: each key is an independent register (initially nil); SET writes a value, DEL
 * writes nil, GET reads. A write with result "unknown" may take effect at any time after
 * its invocation, or never. Reads and writes with result "fail" never took effect. */
#ifndef YGGR_TOOLS_LINCHECK_LINCHECK_H
#define YGGR_TOOLS_LINCHECK_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LC_NIL      0u /* value id of nil (<nil>, never written or deleted) */
#define LC_TIME_INF UINT64_MAX

enum lc_kind { LC_KIND_READ, LC_KIND_WRITE };
enum lc_result { LC_RESULT_OK, LC_RESULT_FAIL, LC_RESULT_UNKNOWN };

struct lc_op {
    uint64_t invoke_us;
    uint64_t complete_us; /* LC_TIME_INF when not given */
    uint32_t key;         /* interned key id */
    uint32_t value;       /* write: value written (LC_NIL for a delete); read: value read */
    uint32_t client;
    uint32_t line; /* 1-based line of the input, for messages */
    uint8_t kind;  /* enum lc_kind */
    uint8_t result; /* enum lc_result */
    bool is_delete;
};

/* Interned strings: id -> text, text -> id. */
struct lc_strings {
    char **text;
    uint32_t count;
    uint32_t cap;
    uint32_t *table; /* open addressing, ids + 1 (0 = empty) */
    uint32_t table_size;
};

struct lc_history {
    struct lc_op *ops;
    size_t count;
    size_t cap;
    struct lc_strings keys;
    struct lc_strings values; /* id 0 is "<nil>" */
};

int lc_history_init(struct lc_history *h);
void lc_history_deinit(struct lc_history *h);
/* Parse one history line (JSON object) and append it. Blank lines are ignored. Returns 0, or
 * -1 with the reason in err. */
int lc_history_add_line(struct lc_history *h, const char *line, size_t len, uint32_t line_number,
                        char *err, size_t err_size);
/* Read a whole history; returns 0 or -1 with "<name>:<line>: reason" in err. */
int lc_history_load(struct lc_history *h, FILE *f, const char *name, char *err, size_t err_size);
const char *lc_history_key(const struct lc_history *h, uint32_t key);
const char *lc_history_value(const struct lc_history *h, uint32_t value);

enum lc_verdict { LC_VERDICT_OK, LC_VERDICT_VIOLATION, LC_VERDICT_UNDECIDED };

/* What a violation looks like (the explanation's classification). */
enum lc_anomaly {
    LC_ANOMALY_NONE,
    LC_ANOMALY_WRITE_FROM_NOWHERE,
    LC_ANOMALY_READ_FROM_FUTURE,
    LC_ANOMALY_DUPLICATE_APPLY,
    LC_ANOMALY_LOST_WRITE,
    LC_ANOMALY_STALE_READ,
    LC_ANOMALY_OTHER,
};

const char *lc_anomaly_name(enum lc_anomaly a);

struct lc_key_result {
    uint32_t key;
    enum lc_verdict verdict;
    enum lc_anomaly anomaly;
    size_t op_count; /* ops searched after pruning */
    uint64_t steps;
    bool polynomial; /* decided by gk_check (distinct values), not the WGL search */
    char explanation[2048];
};

typedef void (*lc_key_fn)(void *ctx, const struct lc_history *h, const struct lc_key_result *r);

struct lc_options {
    uint64_t max_steps_per_key; /* search budget per key; beyond it the key is undecided */
    bool all_keys;              /* keep checking after the first violation */
    bool search_only;           /* always use the WGL search (tests cross-check gk_check) */
    lc_key_fn on_key;           /* called for every violating or undecided key (may be NULL) */
    void *ctx;
};

struct lc_report {
    enum lc_verdict verdict;
    size_t keys;
    size_t keys_violating;
    size_t keys_undecided;
    size_t ops_searched;
    size_t ops_pruned; /* failed ops, unanswered reads, never-observed unknown writes */
    size_t keys_polynomial; /* keys decided by gk_check */
    uint64_t steps;
    struct lc_key_result first; /* the first violating (else undecided) key */
};

/* Check every key. Returns the overall verdict (also in report->verdict). */
enum lc_verdict lc_check(const struct lc_history *h, const struct lc_options *opt,
                         struct lc_report *report);

/* ---- internals shared between check.c, wgl.c and explain.c ---- */

/* Where the search got stuck: the deepest prefix it linearized. */
struct wgl_stuck {
    size_t depth;       /* ops linearized at the deepest point */
    uint32_t state;     /* register value there */
    size_t blocked;     /* index (in the sorted op array) of the op that could not be placed */
};

/* Search one key's ops (sorted by invoke time; complete_us of optional unknown writes is
 * LC_TIME_INF). */
enum lc_verdict wgl_check(const struct lc_op *ops, size_t n, uint64_t max_steps,
                          uint64_t *steps, struct wgl_stuck *stuck);

/* Per-value facts of one key. */
struct vinfo {
    uint32_t value;
    uint32_t writes;   /* ok + unknown writes of value */
    uint32_t fails;    /* failed writes of value */
    uint32_t reads;    /* ok reads returning value */
    uint64_t min_write_invoke;
    uint64_t max_write_complete; /* LC_TIME_INF if a write is unknown */
    uint64_t min_read_complete;
    uint64_t max_read_invoke;
    const struct lc_op *last_write;
    const struct lc_op *a_fail;
    const struct lc_op *first_read; /* completes first */
    const struct lc_op *last_read;  /* invoked last */
};

struct vmap {
    struct vinfo *slots;
    size_t size;
};

/* Facts for every value of one key's ops (all results). Returns 0 or -1 (out of memory). */
int vmap_build(struct vmap *m, const struct lc_op *all, size_t n);
/* The entry of value (created empty when absent; the map has room for every value). */
struct vinfo *vmap_get(struct vmap *m, uint32_t value);
void vmap_free(struct vmap *m);

/* Polynomial decision for keys whose writes have distinct non-nil values and finite
 * completions (gk.c); LC_VERDICT_UNDECIDED when the key does not qualify. On a violation
 * from conflicting zones, conflict[] names the two values (else UINT32_MAX). */
enum lc_verdict gk_check(const struct lc_op *ops, size_t n, uint32_t conflict[2]);

/* Explain a violation on one key. all: every op of the key (fails included). When no known
 * pattern matches, `fallback` (what the search found) is the explanation. Writes a message
 * into out and returns the classification. */
enum lc_anomaly explain_violation(const struct lc_history *h, const struct lc_op *all,
                                  size_t all_count, const char *fallback, char *out,
                                  size_t out_size);

/* "read at [a, b] us (client c, line l) returning v" and friends, into buf. */
const char *explain_op(char *buf, size_t size, const struct lc_history *h,
                       const struct lc_op *op);

#endif /* YGGR_TOOLS_LINCHECK_LINCHECK_H */
