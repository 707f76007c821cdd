/* SPDX-License-Identifier: MIT */
/* The driver actor's private state (owner: the driver thread). */
#ifndef YGGR_RUNTIME_DRIVER_H
#define YGGR_RUNTIME_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"

#define DRIVER_MAX_STORAGE_SENDS 256 /* AppendEntries / snapshot chunks read from disk */
#define DRIVER_MAX_ADMIN 64

/* A message waiting for its entries / chunk bytes from storage. */
struct pending_send {
    bool used;
    struct yggr_msg msg;
    struct yggr_membership config;  /* snapshot requests: deep copy of msg's config */
};

/* A storage request deferred because the storage queue was full (rare: copies). */
struct deferred_req {
    struct deferred_req *next;
    struct yggr_storage_req req;
    struct yggr_entry *entries;     /* APPEND: retained copies */
};

/* Committed entries the engine asked us to apply from storage (APPLY.from_storage, after
 * a restart): a placeholder in the apply overflow queue that holds back everything after
 * it until the entries were read and pushed, in order. */
struct apply_hole {
    struct apply_hole *next;       /* active holes */
    uint64_t id;
    uint64_t next_read;            /* first index not yet requested */
    uint64_t next_push;            /* first index not yet pushed to apply */
    uint64_t end;                  /* one past the last index */
    bool reading;
    struct apply_item *items;      /* read, waiting to be pushed (index order) */
    uint32_t item_head;
    uint32_t item_count;
};

/* FIFO of request pointers (power-of-two capacity). */
struct req_fifo {
    struct req **items;
    uint32_t mask;
    uint32_t head;                  /* next to pop */
    uint32_t tail;                  /* next free */
};

struct driver {
    struct yggr_node *node;
    struct yggr_engine *engine;
    struct yggr_actions act;
    int timer_fd;
    uint64_t ticks;

    /* Summary of the last step. */
    enum yggr_role role;
    uint64_t term;
    uint64_t leader;
    uint64_t commit;
    uint64_t last_index;
    bool transferring;
    bool removed;            /* engine summary: this node was removed from the cluster */

    /* Proposal batching. */
    struct req **batch;
    struct yggr_entry *batch_entries;
    uint32_t batch_cap;

    /* Proposals appended and waiting to be applied, in index order. */
    struct req_fifo pending;
    /* Reads ready at an index not yet pushed to the apply ring, in index order. */
    struct req_fifo reads_ready;
    /* Reads waiting for the engine, by slot (the engine read id). Owner: driver. */
    bool *read_in_engine;
    uint64_t pushed_index;          /* highest entry index pushed towards apply */

    /* Apply overflow when the apply ring is full. */
    struct apply_item *overflow;
    uint32_t overflow_mask;
    uint32_t overflow_head;
    uint32_t overflow_tail;

    /* Apply holes (see struct apply_hole). */
    struct apply_hole *holes;
    uint64_t hole_seq;

    /* Storage. */
    bool storage_started;           /* submit() is refused before the worker starts */
    uint64_t storage_seq;
    struct deferred_req *deferred_head;
    struct deferred_req *deferred_tail;
    struct pending_send sends[DRIVER_MAX_STORAGE_SENDS];

    /* Admin waiters. */
    struct admin *admins[DRIVER_MAX_ADMIN];
    uint32_t admin_count;
    bool snapshot_in_flight;

    /* Counters. */
    uint64_t wakeups;
    uint64_t steps;
    uint64_t batches;
    uint64_t storage_reads;
    uint64_t dropped_appends;       /* inbound AppendEntries dropped under apply pressure */
    uint64_t disk_appends;
    uint64_t disk_entries;
    uint64_t disk_bytes;
    uint64_t disk_durable;
    bool fatal_handled;
    uint64_t stop_deadline_ms;
};

/* driver.c */
void driver_step(struct driver *d, const struct yggr_event *ev);
void driver_submit(struct driver *d, const struct yggr_storage_req *req);
bool driver_apply_push(struct driver *d, const struct apply_item *it);
uint64_t driver_now_ms(void);

/* driver_client.c */
uint32_t driver_drain_clients(struct driver *d);
void driver_check_admins(struct driver *d);
void driver_fail_pending(struct driver *d, int err);
void driver_fail_all(struct driver *d, int err);
void driver_reads_result(struct driver *d, const struct yggr_read_result *r);
void driver_push_ready_reads(struct driver *d);
void driver_snapshot_done(struct driver *d, int err);
void driver_request_snapshot(struct driver *d);
void driver_publish_status(struct driver *d);
void driver_match_proposal(struct driver *d, struct apply_item *it);

/* FIFO helpers. */
int req_fifo_init(struct req_fifo *f, uint32_t min_cap);
void req_fifo_deinit(struct req_fifo *f);
bool req_fifo_push(struct req_fifo *f, struct req *r);
struct req *req_fifo_peek(const struct req_fifo *f);
struct req *req_fifo_pop(struct req_fifo *f);
uint32_t req_fifo_len(const struct req_fifo *f);

#endif /* YGGR_RUNTIME_DRIVER_H */
