/* SPDX-License-Identifier: MIT */
/* yggr shared value types: errors, log ids, entries, buffers, memberships. */
#ifndef YGGR_TYPES_H
#define YGGR_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define YGGR_API __attribute__((visibility("default")))
#else
#define YGGR_API
#endif

/* Every fallible public call returns 0 or one of these (negative) values. */
enum yggr_err {
    YGGR_OK = 0,
    YGGR_ERR_INVALID = -1,             /* invalid argument or API misuse */
    YGGR_ERR_CONFIG = -2,              /* invalid configuration */
    YGGR_ERR_NOMEM = -3,               /* out of memory */
    YGGR_ERR_NOT_LEADER = -4,          /* this node is not the leader; see the leader hint */
    YGGR_ERR_NO_LEADER = -5,           /* no leader known yet; retry later */
    YGGR_ERR_BUSY = -6,                /* too many requests in flight; retry later */
    YGGR_ERR_SHUTDOWN = -7,            /* the node is shutting down or stopped */
    YGGR_ERR_FATAL = -8,               /* the node hit a fatal error and stopped */
    YGGR_ERR_STEPPED_DOWN = -9,        /* leadership lost: the outcome is unknown */
    YGGR_ERR_NOT_READY = -10,          /* leader has not committed an entry of its term */
    YGGR_ERR_CHANGE_IN_PROGRESS = -11, /* another membership change is not committed yet */
    YGGR_ERR_UNKNOWN_NODE = -12,       /* the node is not a member */
    YGGR_ERR_ALREADY_VOTER = -13,
    YGGR_ERR_ALREADY_LEARNER = -14,
    YGGR_ERR_NOT_LEARNER = -15,
    YGGR_ERR_INVALID_TARGET = -16,     /* leadership transfer target is not another voter */
    YGGR_ERR_TRANSFER_IN_PROGRESS = -17,
    YGGR_ERR_IO = -18,                 /* storage or network I/O error */
    YGGR_ERR_NOSPC = -19,              /* no space left on the device */
    YGGR_ERR_CORRUPT = -20,            /* on-disk data failed validation */
    YGGR_ERR_TIMEOUT = -21,
    YGGR_ERR_EXISTS = -22,             /* data directory already initialised */
    YGGR_ERR_NOT_FOUND = -23,          /* data directory not initialised */
    YGGR_ERR_TOO_LARGE = -24,          /* command or frame over the size limit */
    YGGR_ERR_PROTOCOL = -25,           /* malformed message */
    YGGR_ERR_AUTH = -26,               /* peer authentication failed */
    YGGR_ERR_DECLINED = -27,           /* the state machine declined (e.g. a snapshot) */
    YGGR_ERR_REMOVED = -28,            /* this node was removed from the cluster */
};

/* A static, human-readable description of `err` (any int; unknown values say so). */
YGGR_API const char *yggr_strerror(int err);

/* (index, term) of a log entry. index 0 means "none". */
struct yggr_log_id {
    uint64_t index;
    uint64_t term;
};

/* A reference-counted byte buffer. Payload bytes live in one and are shared (never copied)
 * by the log cache, the disk write, the network send and the state machine. The creator
 * sets refs = 1; yggr_buf_release() calls free_fn when the count drops to zero. A NULL
 * free_fn marks memory that outlives every user (static data): retain/release still count. */
struct yggr_buf;
typedef void (*yggr_buf_free_fn)(struct yggr_buf *buf);

struct yggr_buf {
    _Atomic uint32_t refs;
    uint32_t size;            /* capacity of data */
    yggr_buf_free_fn free_fn; /* NULL = not owned */
    void *owner;              /* for free_fn */
    uint8_t *data;
};

/* Take a reference; returns buf. NULL is accepted and ignored. */
YGGR_API struct yggr_buf *yggr_buf_retain(struct yggr_buf *buf);
/* Drop a reference. NULL is accepted and ignored. */
YGGR_API void yggr_buf_release(struct yggr_buf *buf);
/* Take / drop `n` references at once (one atomic operation: many entries usually share one
 * buffer, so batching keeps the shared counter's cache line from bouncing per entry). */
YGGR_API void yggr_buf_retain_n(struct yggr_buf *buf, uint32_t n);
YGGR_API void yggr_buf_release_n(struct yggr_buf *buf, uint32_t n);
/* malloc a buffer of `size` bytes with refs = 1 (freed by release). NULL on ENOMEM. */
YGGR_API struct yggr_buf *yggr_buf_alloc(uint32_t size);

enum yggr_entry_type {
    YGGR_ENTRY_NOOP = 0,
    YGGR_ENTRY_COMMAND = 1,
    YGGR_ENTRY_CONFIG = 2,
};

/* Values equal the reference's ConfigChange.kind oneof field numbers. */
enum yggr_change_type {
    YGGR_CHANGE_ADD_VOTER = 1,
    YGGR_CHANGE_REMOVE_VOTER = 2,
    YGGR_CHANGE_ADD_LEARNER = 3,
    YGGR_CHANGE_PROMOTE_LEARNER = 4,
};

/* One log entry. 48 bytes; payload bytes are referenced, never embedded.
 * COMMAND: data/len = the command. CONFIG: change/node name the change and data/len
 * optionally carry the node's address ("host:port", no NUL) for ADD_VOTER / ADD_LEARNER
 * (wire: NodeIdRef extension field 2). NOOP: no payload. */
struct yggr_entry {
    uint64_t index;
    uint64_t term;
    const uint8_t *data;      /* payload (NULL when len == 0) */
    struct yggr_buf *buf;     /* keeps `data` alive; NULL for static or borrowed bytes */
    uint32_t len;
    uint8_t type;             /* enum yggr_entry_type */
    uint8_t change;           /* enum yggr_change_type, CONFIG entries only */
    uint16_t reserved;        /* zero */
    uint64_t node;            /* CONFIG: the node the change names */
};

#define YGGR_MAX_MEMBERS 32

/* A full cluster configuration: every voter and every learner, this node included.
 * Ids are unique, non-zero and kept in ascending order; a node is never in both sets. */
struct yggr_membership {
    uint32_t voter_count;
    uint32_t learner_count;
    uint64_t voters[YGGR_MAX_MEMBERS];
    uint64_t learners[YGGR_MAX_MEMBERS];
};

/* Describes a snapshot: the last entry it covers, its size and the configuration at that
 * entry. */
struct yggr_snapshot_meta {
    struct yggr_log_id last;
    uint64_t size;
    struct yggr_membership config;
};

enum yggr_role {
    YGGR_ROLE_FOLLOWER = 0,
    YGGR_ROLE_PRE_CANDIDATE = 1,
    YGGR_ROLE_CANDIDATE = 2,
    YGGR_ROLE_LEADER = 3,
};

YGGR_API const char *yggr_role_name(enum yggr_role role);

/* Membership helpers (sets stay sorted). Return true when the set changed / contains id. */
YGGR_API bool yggr_membership_is_voter(const struct yggr_membership *m, uint64_t id);
YGGR_API bool yggr_membership_is_learner(const struct yggr_membership *m, uint64_t id);
/* Apply one change with the reference's semantics (adding a voter removes it from the
 * learners; adding a learner that is a voter does nothing; promoting needs a learner;
 * removing drops the id from both sets). Returns true when the configuration changed. */
YGGR_API bool yggr_membership_apply(struct yggr_membership *m, enum yggr_change_type type,
                                    uint64_t node);
YGGR_API bool yggr_membership_equal(const struct yggr_membership *a,
                                    const struct yggr_membership *b);
/* True when the sets are well formed: counts within YGGR_MAX_MEMBERS together, ids
 * non-zero and strictly ascending in each set, no id in both sets. */
YGGR_API bool yggr_membership_valid(const struct yggr_membership *m);

#ifdef __cplusplus
}
#endif

#endif /* YGGR_TYPES_H */
