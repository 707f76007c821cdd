/* SPDX-License-Identifier: MIT */
/* chaos-logdump: print a stopped node's Raft log (index, term, type, payload checksum) so
 * the chaos harness can check that every node's log agrees up to the commit index. */

/*
 * Design notes
 * ------------
 * It opens the data directory with the disk storage itself (recover(), then synchronous
 * reads through the same vtable the runtime uses), so it sees exactly what a restarted node
 * would see: CRC-checked records, a torn tail dropped. Recovery may truncate a torn tail, so
 * the harness runs it on a COPY of the data directory. Output (text, one line each):
 *   range <first_index> <last_index>
 *   snapshot <index> <term>                  (0 0 when there is none)
 *   hardstate <term> <vote>
 *   <index> <term> <type> <crc32c of the payload, hex> <payload length>
 * Exit 0, or 1 with the storage's message (file and offset) on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "storage.h"
#include "yggr/plugin.h"

#define READ_BATCH 1024u

static int dump_range(struct yggr_storage *s, const struct yggr_storage_ops *ops, uint64_t first,
                      uint64_t last)
{
    uint64_t next = first;
    while (next <= last && last != 0) {
        uint64_t left = last - next + 1;
        uint32_t count = left < READ_BATCH ? (uint32_t)left : READ_BATCH;
        struct yggr_storage_done done;
        memset(&done, 0, sizeof(done));
        int rc = storage_sync_read(s, next, count, 64u << 20, &done);
        if (rc != 0) {
            fprintf(stderr, "chaos-logdump: read [%" PRIu64 ", +%u): %s (%s)\n", next, count,
                    done.why, yggr_strerror(rc));
            return 1;
        }
        if (done.count == 0) {
            fprintf(stderr, "chaos-logdump: read at %" PRIu64 " returned nothing\n", next);
            ops->release(s, &done);
            return 1;
        }
        for (uint32_t i = 0; i < done.count; i++) {
            const struct yggr_entry *e = &done.entries[i];
            if (e->index != next) {
                fprintf(stderr, "chaos-logdump: expected index %" PRIu64 ", got %" PRIu64 "\n",
                        next, e->index);
                ops->release(s, &done);
                return 1;
            }
            printf("%" PRIu64 " %" PRIu64 " %u %08x %u\n", e->index, e->term, e->type,
                   crc32c(0, e->data, e->len), e->len);
            next++;
        }
        ops->release(s, &done);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: chaos-logdump DATA_DIR (a copy: recovery may trim a torn tail)\n");
        return 2;
    }
    struct yggr_disk_options o = {.dir = argv[1]};
    const struct yggr_storage_ops *ops = NULL;
    struct yggr_storage *s = NULL;
    char why[512] = "";
    int rc = yggr_disk_storage_create(&o, &ops, &s, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "chaos-logdump: %s: %s\n", argv[1], why);
        return 1;
    }
    struct yggr_storage_state st;
    memset(&st, 0, sizeof(st));
    rc = ops->recover(s, &st, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "chaos-logdump: recover %s: %s (%s)\n", argv[1], why, yggr_strerror(rc));
        ops->close(s);
        return 1;
    }
    const struct yggr_recovered *r = &st.recovered;
    printf("range %" PRIu64 " %" PRIu64 "\n", r->first_index, r->last_index);
    printf("snapshot %" PRIu64 " %" PRIu64 "\n", r->has_snapshot ? r->snapshot.last.index : 0,
           r->has_snapshot ? r->snapshot.last.term : 0);
    printf("hardstate %" PRIu64 " %" PRIu64 "\n", r->term, r->vote);
    uint64_t first = r->first_index;
    uint64_t last = r->last_index;
    rc = storage_sync_start(s);
    if (rc == 0 && last >= first) {
        rc = dump_range(s, ops, first, last);
    } else if (rc != 0) {
        fprintf(stderr, "chaos-logdump: start: %s\n", yggr_strerror(rc));
    }
    ops->close(s);
    return rc == 0 ? 0 : 1;
}
