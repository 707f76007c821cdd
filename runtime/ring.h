/* SPDX-License-Identifier: MIT */
/* Typed Concurrency Kit rings: SPSC value rings between actors, an MPSC pointer ring from
 * client threads. Capacity is slots - 1; slots must be a power of two. */
#ifndef YGGR_RUNTIME_RING_H
#define YGGR_RUNTIME_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <ck_ring.h>

#include "yggr_assert.h"
#include "yggr_tsan.h"

/*
 * RING_DEFINE(name, type) declares `struct name` (a ck_ring plus its buffer of `type`
 * values) and:
 *   int  name_init(struct name *r, uint32_t slots)   slots: power of two; 0 or -ENOMEM
 *   void name_deinit(struct name *r)
 *   bool name_push(struct name *r, const struct type *v)   producer only; false = full
 *   bool name_pop(struct name *r, struct type *out)        consumer only; false = empty
 *   uint32_t name_depth(struct name *r)                    approximate, any thread
 * A full ring is backpressure: the producer keeps the item and retries later.
 */
#define RING_DEFINE(name, type)                                                               \
    CK_RING_PROTOTYPE(name, type)                                                             \
    struct name {                                                                             \
        struct ck_ring ring;                                                                  \
        struct type *slots;                                                                   \
    };                                                                                        \
    static inline int name##_init(struct name *r, uint32_t n)                                 \
    {                                                                                         \
        YGGR_ASSERT(n >= 2);                                                                  \
        YGGR_ASSERT((n & (n - 1)) == 0);                                                      \
        r->slots = calloc(n, sizeof(struct type));                                            \
        if (r->slots == NULL) {                                                               \
            return -12;                                                                       \
        }                                                                                     \
        ck_ring_init(&r->ring, n);                                                            \
        return 0;                                                                             \
    }                                                                                         \
    static inline void name##_deinit(struct name *r)                                          \
    {                                                                                         \
        free(r->slots);                                                                       \
        r->slots = NULL;                                                                      \
    }                                                                                         \
    static inline bool name##_push(struct name *r, const struct type *v)                      \
    {                                                                                         \
        YGGR_TSAN_RELEASE(r);                                                                 \
        return ck_ring_enqueue_spsc_##name(&r->ring, r->slots, (struct type *)v);            \
    }                                                                                         \
    static inline bool name##_pop(struct name *r, struct type *out)                           \
    {                                                                                         \
        bool ok = ck_ring_dequeue_spsc_##name(&r->ring, r->slots, out);                       \
        if (ok) {                                                                             \
            YGGR_TSAN_ACQUIRE(r);                                                             \
        }                                                                                     \
        return ok;                                                                            \
    }                                                                                         \
    static inline uint32_t name##_depth(struct name *r)                                       \
    {                                                                                         \
        return ck_ring_size(&r->ring);                                                        \
    }

/* MPSC ring of pointers (client threads -> driver). */
struct mpsc_ring {
    struct ck_ring ring;
    struct ck_ring_buffer *slots;
};

static inline int mpsc_ring_init(struct mpsc_ring *r, uint32_t n)
{
    YGGR_ASSERT(n >= 2);
    YGGR_ASSERT((n & (n - 1)) == 0);
    r->slots = calloc(n, sizeof(*r->slots));
    if (r->slots == NULL) {
        return -12;
    }
    ck_ring_init(&r->ring, n);
    return 0;
}

static inline void mpsc_ring_deinit(struct mpsc_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

static inline bool mpsc_ring_push(struct mpsc_ring *r, void *item)
{
    YGGR_ASSERT(item != NULL);
    YGGR_TSAN_RELEASE(item);
    return ck_ring_enqueue_mpsc(&r->ring, r->slots, item);
}

static inline void *mpsc_ring_pop(struct mpsc_ring *r)
{
    void *item = NULL;
    if (!ck_ring_dequeue_mpsc(&r->ring, r->slots, &item)) {
        return NULL;
    }
    YGGR_TSAN_ACQUIRE(item);
    return item;
}

static inline uint32_t mpsc_ring_depth(struct mpsc_ring *r)
{
    return ck_ring_size(&r->ring);
}

/* MPMC pointer ring (free lists shared by several threads). */
static inline bool mpmc_ring_push(struct mpsc_ring *r, void *item)
{
    YGGR_ASSERT(item != NULL);
    YGGR_TSAN_RELEASE(item);
    return ck_ring_enqueue_mpmc(&r->ring, r->slots, item);
}

static inline void *mpmc_ring_pop(struct mpsc_ring *r)
{
    void *item = NULL;
    if (!ck_ring_dequeue_mpmc(&r->ring, r->slots, &item)) {
        return NULL;
    }
    YGGR_TSAN_ACQUIRE(item);
    return item;
}

#endif /* YGGR_RUNTIME_RING_H */
