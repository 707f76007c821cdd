/* SPDX-License-Identifier: MIT */
/* The simulated network: an unordered bag of deep-copied in-flight messages and partitions. */

/*
 * Design notes
 * - A message is deep-copied at send time: entries are copied with a reference on their
 *   payload buffer, a snapshot chunk keeps a reference on its bytes, the configuration of
 *   an InstallSnapshot is copied inline. The sender's engine may reuse its action memory
 *   right after the step, exactly as with a real transport.
 * - The scheduler picks a RANDOM ready message to deliver, so every reordering is
 *   possible; delay = a message may not be delivered before `deliver_at`; duplicate =
 *   deep copy; drop = release.
 * - Partitions are a [from][to] matrix checked at DELIVERY time: a message that crosses
 *   a cut when it is picked is lost (as a TCP connection reset would lose it).
 * - Removing is swap-with-last (O(1)); the order of the bag is deterministic because
 *   every operation on it is.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "yggr_assert.h"

void net_init(struct net *net)
{
    YGGR_ASSERT(net != NULL);
    memset(net, 0, sizeof(*net));
    net->next_id = 1;
}

void net_flight_release(struct flight *f)
{
    for (uint32_t i = 0; f->entries != NULL && i < f->msg.as.append.entry_count; i++) {
        slog_entry_release(&f->entries[i]);
    }
    free(f->entries);
    f->entries = NULL;
    if (f->msg.type == YGGR_MSG_SNAPSHOT_REQUEST) {
        yggr_buf_release(f->msg.as.snapshot.buf);
        f->msg.as.snapshot.buf = NULL;
    }
}

void net_deinit(struct net *net)
{
    for (uint32_t i = 0; i < net->count; i++) {
        net_flight_release(&net->q[i]);
    }
    free(net->q);
    memset(net, 0, sizeof(*net));
}

static void flight_copy(struct flight *dst, const struct yggr_msg *m)
{
    memset(dst, 0, sizeof(*dst));
    dst->msg = *m;
    if (m->type == YGGR_MSG_APPEND_REQUEST) {
        uint32_t n = m->as.append.entry_count;
        YGGR_ASSERT(n == 0 || m->as.append.entries != NULL);
        if (n > 0) {
            dst->entries = malloc((size_t)n * sizeof(dst->entries[0]));
            YGGR_ASSERT(dst->entries != NULL);
            for (uint32_t i = 0; i < n; i++) {
                slog_entry_copy(&dst->entries[i], &m->as.append.entries[i]);
            }
        }
        dst->msg.as.append.entries = dst->entries;
        dst->msg.as.append.from_storage = false;
    } else if (m->type == YGGR_MSG_SNAPSHOT_REQUEST) {
        const struct yggr_msg_snapshot_request *s = &m->as.snapshot;
        YGGR_ASSERT(s->len == 0 || s->buf != NULL);
        dst->msg.as.snapshot.buf = yggr_buf_retain(s->buf);
        if (s->config != NULL) {
            dst->config = *s->config;
        }
        dst->msg.as.snapshot.config = s->config != NULL ? &dst->config : NULL;
    }
}

/* Re-point internal pointers after a struct flight moved in memory. */
static void flight_fix(struct flight *f)
{
    if (f->msg.type == YGGR_MSG_APPEND_REQUEST) {
        f->msg.as.append.entries = f->entries;
    } else if (f->msg.type == YGGR_MSG_SNAPSHOT_REQUEST && f->msg.as.snapshot.config != NULL) {
        f->msg.as.snapshot.config = &f->config;
    }
}

static struct flight *net_slot(struct net *net)
{
    if (net->count == net->cap) {
        net->cap = net->cap == 0 ? 64 : net->cap * 2;
        net->q = realloc(net->q, (size_t)net->cap * sizeof(net->q[0]));
        YGGR_ASSERT(net->q != NULL);
        for (uint32_t i = 0; i < net->count; i++) {
            flight_fix(&net->q[i]);
        }
    }
    return &net->q[net->count++];
}

void net_send(struct net *net, const struct yggr_msg *m, uint64_t deliver_at)
{
    YGGR_ASSERT(m->from != 0);
    YGGR_ASSERT(m->to != 0);
    struct flight *f = net_slot(net);
    flight_copy(f, m);
    f->id = net->next_id++;
    f->deliver_at = deliver_at;
}

void net_take(struct net *net, uint32_t i, struct flight *out)
{
    YGGR_ASSERT(i < net->count);
    *out = net->q[i];
    flight_fix(out);
    net->count--;
    if (i != net->count) {
        net->q[i] = net->q[net->count];
        flight_fix(&net->q[i]);
    }
}

void net_duplicate(struct net *net, uint32_t i)
{
    YGGR_ASSERT(i < net->count);
    struct flight *f = net_slot(net);
    /* net_slot may have moved the array: copy from the (possibly new) location. */
    struct flight *src = &net->q[i];
    flight_copy(f, &src->msg);
    f->id = net->next_id++;
    f->deliver_at = src->deliver_at;
}

void net_heal(struct net *net)
{
    memset(net->blocked, 0, sizeof(net->blocked));
    net->partitioned = false;
}

bool net_blocked(const struct net *net, uint64_t from, uint64_t to)
{
    YGGR_ASSERT(from < SIM_MAX_IDS);
    YGGR_ASSERT(to < SIM_MAX_IDS);
    return net->blocked[from][to];
}
