/* SPDX-License-Identifier: MIT */
/* Coalesced wake-ups: one eventfd per consumer, rung only when the consumer is parked. */
#ifndef YGGR_RUNTIME_DOORBELL_H
#define YGGR_RUNTIME_DOORBELL_H

#include <stdatomic.h>
#include <stdbool.h>

/*
 * Protocol (libuv uv_async_send style):
 *   consumer: doorbell_park() -> re-check every input -> doorbell_wait() or doorbell_unpark()
 *   producer: publish the item, then doorbell_ring()
 * doorbell_ring() writes the eventfd only when `parked` is set, so a busy consumer costs
 * producers one atomic load. The seq_cst exchange/load pair guarantees that either the
 * consumer's re-check sees the item or the producer sees parked == true and writes.
 */
struct doorbell {
    int fd;                 /* eventfd; owner: consumer (read), producers (write) */
    atomic_bool parked;     /* shared */
    atomic_bool rung;       /* shared: a write is pending, skip duplicate writes */
};

int doorbell_init(struct doorbell *d);
void doorbell_deinit(struct doorbell *d);
/* Any thread. */
void doorbell_ring(struct doorbell *d);
/* Consumer: announce the intent to sleep; then re-check inputs. */
void doorbell_park(struct doorbell *d);
void doorbell_unpark(struct doorbell *d);
/* Consumer: drain the eventfd counter after poll() reported it readable. */
void doorbell_drain(struct doorbell *d);

#endif /* YGGR_RUNTIME_DOORBELL_H */
