/* SPDX-License-Identifier: MIT */
/* Shared value types: error strings, reference-counted buffers, membership sets. */
#include <stdlib.h>
#include <string.h>

#include "yggr/types.h"
#include "yggr_assert.h"

const char *yggr_strerror(int err)
{
    switch ((enum yggr_err)err) {
    case YGGR_OK: return "success";
    case YGGR_ERR_INVALID: return "invalid argument";
    case YGGR_ERR_CONFIG: return "invalid configuration";
    case YGGR_ERR_NOMEM: return "out of memory";
    case YGGR_ERR_NOT_LEADER: return "not the leader; retry on the leader";
    case YGGR_ERR_NO_LEADER: return "no leader known yet; retry later";
    case YGGR_ERR_BUSY: return "too many requests in flight; retry later";
    case YGGR_ERR_SHUTDOWN: return "node is shutting down";
    case YGGR_ERR_FATAL: return "node stopped after a fatal error";
    case YGGR_ERR_STEPPED_DOWN: return "leadership lost before the request completed; outcome unknown";
    case YGGR_ERR_NOT_READY: return "leader not ready (no entry of its term committed yet)";
    case YGGR_ERR_CHANGE_IN_PROGRESS: return "another membership change is in progress";
    case YGGR_ERR_UNKNOWN_NODE: return "node is not a member of the cluster";
    case YGGR_ERR_ALREADY_VOTER: return "node is already a voter";
    case YGGR_ERR_ALREADY_LEARNER: return "node is already a learner";
    case YGGR_ERR_NOT_LEARNER: return "node is not a learner";
    case YGGR_ERR_INVALID_TARGET: return "transfer target is not another voter";
    case YGGR_ERR_TRANSFER_IN_PROGRESS: return "leadership transfer in progress";
    case YGGR_ERR_IO: return "I/O error";
    case YGGR_ERR_NOSPC: return "no space left on device";
    case YGGR_ERR_CORRUPT: return "on-disk data is corrupt";
    case YGGR_ERR_TIMEOUT: return "timed out";
    case YGGR_ERR_EXISTS: return "data directory already initialised";
    case YGGR_ERR_NOT_FOUND: return "data directory not initialised";
    case YGGR_ERR_TOO_LARGE: return "too large";
    case YGGR_ERR_PROTOCOL: return "protocol error (malformed message)";
    case YGGR_ERR_AUTH: return "peer authentication failed";
    case YGGR_ERR_DECLINED: return "declined by the state machine";
    case YGGR_ERR_REMOVED: return "this node was removed from the cluster";
    }
    return "unknown error";
}

const char *yggr_role_name(enum yggr_role role)
{
    switch (role) {
    case YGGR_ROLE_FOLLOWER: return "follower";
    case YGGR_ROLE_PRE_CANDIDATE: return "pre-candidate";
    case YGGR_ROLE_CANDIDATE: return "candidate";
    case YGGR_ROLE_LEADER: return "leader";
    }
    return "unknown";
}

void yggr_buf_retain_n(struct yggr_buf *buf, uint32_t n)
{
    if (buf != NULL && n > 0) {
        /* Relaxed: taking a reference needs no ordering, the caller already holds one. */
        uint32_t old = atomic_fetch_add_explicit(&buf->refs, n, memory_order_relaxed);
        YGGR_ASSERT(old > 0);
        YGGR_ASSERT(old <= UINT32_MAX - n);
    }
}

struct yggr_buf *yggr_buf_retain(struct yggr_buf *buf)
{
    yggr_buf_retain_n(buf, 1);
    return buf;
}

void yggr_buf_release_n(struct yggr_buf *buf, uint32_t n)
{
    if (buf == NULL || n == 0) {
        return;
    }
    /* acq_rel: release orders this owner's uses before the free; acquire, in the last
     * owner, pairs with every other owner's release. (A release decrement plus an acquire
     * fence is equivalent but ThreadSanitizer does not model fences; on x86 both are the
     * same locked instruction.) */
    uint32_t old = atomic_fetch_sub_explicit(&buf->refs, n, memory_order_acq_rel);
    YGGR_ASSERT(old >= n);
    if (old == n && buf->free_fn != NULL) {
        buf->free_fn(buf);
    }
}

void yggr_buf_release(struct yggr_buf *buf)
{
    yggr_buf_release_n(buf, 1);
}

static void buf_free_malloced(struct yggr_buf *buf)
{
    free(buf);
}

struct yggr_buf *yggr_buf_alloc(uint32_t size)
{
    struct yggr_buf *buf = malloc(sizeof(*buf) + size);
    if (buf == NULL) {
        return NULL;
    }
    atomic_init(&buf->refs, 1);
    buf->size = size;
    buf->free_fn = buf_free_malloced;
    buf->owner = NULL;
    buf->data = (uint8_t *)(buf + 1);
    return buf;
}

static bool set_contains(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static bool set_insert(uint64_t *ids, uint32_t *n, uint64_t id)
{
    if (set_contains(ids, *n, id)) {
        return false;
    }
    YGGR_ASSERT(*n < YGGR_MAX_MEMBERS);
    uint32_t i = *n;
    while (i > 0 && ids[i - 1] > id) {
        ids[i] = ids[i - 1];
        i--;
    }
    ids[i] = id;
    (*n)++;
    return true;
}

static bool set_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            memmove(&ids[i], &ids[i + 1], (size_t)(*n - i - 1) * sizeof(ids[0]));
            (*n)--;
            return true;
        }
    }
    return false;
}

bool yggr_membership_is_voter(const struct yggr_membership *m, uint64_t id)
{
    YGGR_ASSERT(m != NULL);
    return set_contains(m->voters, m->voter_count, id);
}

bool yggr_membership_is_learner(const struct yggr_membership *m, uint64_t id)
{
    YGGR_ASSERT(m != NULL);
    return set_contains(m->learners, m->learner_count, id);
}

bool yggr_membership_apply(struct yggr_membership *m, enum yggr_change_type type, uint64_t node)
{
    YGGR_ASSERT(m != NULL);
    YGGR_ASSERT(node != 0);
    bool changed = false;
    switch (type) {
    case YGGR_CHANGE_ADD_VOTER:
        changed = set_remove(m->learners, &m->learner_count, node);
        if (m->voter_count + m->learner_count < YGGR_MAX_MEMBERS || changed) {
            changed = set_insert(m->voters, &m->voter_count, node) || changed;
        }
        break;
    case YGGR_CHANGE_REMOVE_VOTER:
        changed = set_remove(m->voters, &m->voter_count, node);
        changed = set_remove(m->learners, &m->learner_count, node) || changed;
        break;
    case YGGR_CHANGE_ADD_LEARNER:
        if (!set_contains(m->voters, m->voter_count, node) &&
            m->voter_count + m->learner_count < YGGR_MAX_MEMBERS) {
            changed = set_insert(m->learners, &m->learner_count, node);
        }
        break;
    case YGGR_CHANGE_PROMOTE_LEARNER:
        if (set_remove(m->learners, &m->learner_count, node)) {
            changed = set_insert(m->voters, &m->voter_count, node);
        }
        break;
    }
    YGGR_ASSERT(m->voter_count + m->learner_count <= YGGR_MAX_MEMBERS);
    return changed;
}

static bool ids_ascending(const uint64_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ids[i] == 0 || (i > 0 && ids[i - 1] >= ids[i])) {
            return false;
        }
    }
    return true;
}

bool yggr_membership_valid(const struct yggr_membership *m)
{
    YGGR_ASSERT(m != NULL);
    if (m->voter_count > YGGR_MAX_MEMBERS || m->learner_count > YGGR_MAX_MEMBERS ||
        m->voter_count + m->learner_count > YGGR_MAX_MEMBERS) {
        return false;
    }
    if (!ids_ascending(m->voters, m->voter_count) ||
        !ids_ascending(m->learners, m->learner_count)) {
        return false;
    }
    for (uint32_t i = 0; i < m->learner_count; i++) {
        if (yggr_membership_is_voter(m, m->learners[i])) {
            return false;
        }
    }
    return true;
}

bool yggr_membership_equal(const struct yggr_membership *a, const struct yggr_membership *b)
{
    YGGR_ASSERT(a != NULL && b != NULL);
    if (a->voter_count != b->voter_count || a->learner_count != b->learner_count) {
        return false;
    }
    return memcmp(a->voters, b->voters, a->voter_count * sizeof(a->voters[0])) == 0 &&
           memcmp(a->learners, b->learners, a->learner_count * sizeof(a->learners[0])) == 0;
}
