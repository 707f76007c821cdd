/* SPDX-License-Identifier: MIT */
/* Payload arena: large reference-counted chunks that proposal payloads are carved from.
 *
 * Design notes:
 * - The proposing thread copies each command once into the client chunk (under
 *   client_mu); every slice holds one reference on its chunk, handed to the request and
 *   from there to whoever keeps the entry (engine log cache, disk write, apply queue each
 *   take their own). References are reserved in bulk when a chunk becomes the client
 *   chunk (one per possible 8-byte-aligned slice) and the unused ones are returned in one
 *   operation when it is retired, so proposals never touch the chunk's counter.
 * - When the last reference drops (on any thread), chunk_free() returns the chunk to the
 *   node's MPMC free ring, so steady state allocates nothing; if the ring is full the
 *   chunk is freed.
 * - Invariant: every chunk is released before the node is freed (node stop joins every
 *   actor and closes the plugins first), so `owner` never dangles.
 */
#include <stdlib.h>
#include <string.h>

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

struct yggr_buf *arena_copy_command(struct yggr_node *node, const void *cmd, uint32_t len,
                                    const uint8_t **data)
{
    YGGR_ASSERT(node != NULL && data != NULL);
    YGGR_ASSERT(cmd != NULL || len == 0);
    if (len > ARENA_MAX_SLICE) {
        struct yggr_buf *own = yggr_buf_alloc(len);
        if (own != NULL) {
            memcpy(own->data, cmd, len);
            *data = own->data;
        }
        return own;
    }
    uint32_t need = (len + 7u) & ~7u;
    pthread_mutex_lock(&node->client_mu);
    if (node->client_chunk == NULL || node->client_used + need > node->client_chunk->size ||
        node->client_reserved == 0) {
        arena_client_release(node);
        struct yggr_buf *b = arena_chunk_get(node);
        if (b == NULL) {
            pthread_mutex_unlock(&node->client_mu);
            return NULL;
        }
        /* Our base reference plus one per slice the chunk can ever hold. */
        uint32_t slices = b->size / 8u;
        yggr_buf_retain_n(b, slices - 1u);
        node->client_chunk = b;
        node->client_used = 0;
        node->client_reserved = slices;
    }
    struct yggr_buf *b = node->client_chunk;
    *data = b->data + node->client_used;
    if (len > 0) {
        memcpy(b->data + node->client_used, cmd, len);
    }
    node->client_used += need > 0 ? need : 8u;
    node->client_reserved--;
    pthread_mutex_unlock(&node->client_mu);
    return b;
}

/* Retire the client chunk: give back the references not handed out. (client_mu held, or
 * no other thread can propose any more.) */
void arena_client_release(struct yggr_node *node)
{
    YGGR_ASSERT(node != NULL);
    if (node->client_chunk != NULL) {
        yggr_buf_release_n(node->client_chunk, node->client_reserved);
        node->client_chunk = NULL;
        node->client_reserved = 0;
        node->client_used = 0;
    }
}
