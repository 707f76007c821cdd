/* SPDX-License-Identifier: MIT */
/* In-memory storage and transport plugins (for tests and embedders' tests). */
#ifndef YGGR_RUNTIME_MEM_H
#define YGGR_RUNTIME_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "yggr/plugin.h"

/* A disk that lives in memory and outlives the nodes that use it (restart = start a new
 * node on the same mem_disk). Writes are durable as soon as they complete. */
struct mem_disk;

struct mem_disk *mem_disk_new(void);
void mem_disk_free(struct mem_disk *disk);
/* A storage plugin over `disk` (one node at a time). */
int mem_storage_create(struct mem_disk *disk, const struct yggr_storage_ops **ops,
                       struct yggr_storage **out);
/* Fault injection: the next append fails (FAILED completion with YGGR_ERR_IO). */
void mem_disk_fail_next_append(struct mem_disk *disk);
/* Fault injection: the next `count` snapshot reads that reach the end of the snapshot
 * return one byte less than asked (a short read). */
void mem_disk_short_snap_reads(struct mem_disk *disk, uint32_t count);
uint64_t mem_disk_last_index(struct mem_disk *disk);

/* An in-process network hub connecting transports by node id. */
struct mem_net;

struct mem_net *mem_net_new(uint64_t seed);
void mem_net_free(struct mem_net *net);
int mem_transport_create(struct mem_net *net, uint64_t node_id,
                         const struct yggr_transport_ops **ops, struct yggr_transport **out);
/* Faults: drop messages with probability permille/1000; block from -> to (one way). */
void mem_net_set_drop(struct mem_net *net, uint32_t permille);
void mem_net_block(struct mem_net *net, uint64_t from, uint64_t to, bool blocked);
/* Isolate `id` from everyone (both ways) or heal it. */
void mem_net_isolate(struct mem_net *net, uint64_t id, bool isolated);

#endif /* YGGR_RUNTIME_MEM_H */
