/* SPDX-License-Identifier: MIT */
/* Payload arena: large reference-counted chunks that proposal payloads are carved from.
 *
 * Design notes:
 * - The driver copies each small command once from its request slot into the current
 *   chunk; every entry carved from a chunk holds one reference on it (taken by whoever
 *   keeps the entry: engine log cache, disk write, apply queue).
 * - When the last reference drops (on any thread), chunk_free() returns the chunk to the
 *   node's MPMC free ring, so steady state allocates nothing; if the ring is full the
 *   chunk is freed.
 * - Invariant: every chunk is released before the node is freed (node stop joins every
 *   actor and closes the plugins first), so `owner` never dangles.
 */
#include <stdlib.h>

#include "node.h"
#include "yggr_assert.h"

static void chunk_free(struct yggr_buf *b)
{
    struct yggr_node *node = b->owner;
    YGGR_ASSERT(node != NULL);
    YGGR_ASSERT(atomic_load(&b->refs) == 0);
    if (!mpmc_ring_push(&node->free_chunks, b)) {
        atomic_fetch_sub(&node->chunks_live, 1);
        free(b);
    }
}

struct yggr_buf *arena_chunk_get(struct yggr_node *node)
{
    YGGR_ASSERT(node != NULL);
    struct yggr_buf *b = mpmc_ring_pop(&node->free_chunks);
    if (b == NULL) {
        b = malloc(sizeof(*b) + ARENA_CHUNK_BYTES);
        if (b == NULL) {
            return NULL;
        }
        b->size = ARENA_CHUNK_BYTES;
        b->free_fn = chunk_free;
        b->owner = node;
        b->data = (uint8_t *)(b + 1);
        atomic_fetch_add(&node->chunks_live, 1);
    }
    YGGR_ASSERT(b->owner == node);
    atomic_store(&b->refs, 1);
    return b;
}

void arena_drain(struct yggr_node *node)
{
    YGGR_ASSERT(node != NULL);
    if (node->free_chunks.slots == NULL) {
        return;
    }
    struct yggr_buf *b;
    while ((b = mpmc_ring_pop(&node->free_chunks)) != NULL) {
        atomic_fetch_sub(&node->chunks_live, 1);
        free(b);
    }
}
