/* SPDX-License-Identifier: MIT */
/* Coalesced eventfd wake-ups for the runtime's actors.
 *
 * Design notes:
 * - Invariant: when a consumer sleeps, every item published before its park() was seen by
 *   its re-check, or the producer that published it saw `parked` and wrote the eventfd.
 *   Both sides use sequentially consistent operations on `parked` (store-load ordering is
 *   needed: the producer's item store must be visible before it loads `parked`, and the
 *   consumer's `parked` store before it loads the rings).
 * - `rung` suppresses redundant eventfd writes while one is pending; drain() clears it.
 * - Failure modes: eventfd write can only fail with EAGAIN when the counter would overflow
 *   (impossible with rung); read returns EAGAIN when nothing was written (fine).
 */
#include "doorbell.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "yggr_assert.h"

int doorbell_init(struct doorbell *d)
{
    YGGR_ASSERT(d != NULL);
    d->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->fd < 0) {
        return -errno;
    }
    atomic_init(&d->parked, false);
    atomic_init(&d->rung, false);
    return 0;
}

void doorbell_deinit(struct doorbell *d)
{
    YGGR_ASSERT(d != NULL);
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
}

void doorbell_ring(struct doorbell *d)
{
    YGGR_ASSERT(d != NULL);
    YGGR_ASSERT(d->fd >= 0);
    /* seq_cst: pairs with the consumer's park(); see the design notes. */
    if (!atomic_load(&d->parked)) {
        return;
    }
    if (atomic_exchange(&d->rung, true)) {
        return;
    }
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(d->fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    YGGR_ASSERT(n == (ssize_t)sizeof(one) || errno == EAGAIN);
}

void doorbell_park(struct doorbell *d)
{
    YGGR_ASSERT(d != NULL);
    atomic_store(&d->parked, true);
}

void doorbell_unpark(struct doorbell *d)
{
    YGGR_ASSERT(d != NULL);
    atomic_store(&d->parked, false);
}

void doorbell_drain(struct doorbell *d)
{
    YGGR_ASSERT(d != NULL);
    YGGR_ASSERT(d->fd >= 0);
    uint64_t v;
    ssize_t n;
    do {
        n = read(d->fd, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);
    /* Clear after the read: a ring that races with us writes again (harmless). */
    atomic_store(&d->rung, false);
}
