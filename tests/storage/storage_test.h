/* SPDX-License-Identifier: MIT */
/* Helpers for the storage suites: open/close a disk storage over a temp dir (io_uring or
 * the fault injector), deterministic entries, read-back checks. */
#ifndef YGGR_TESTS_STORAGE_STORAGE_TEST_H
#define YGGR_TESTS_STORAGE_STORAGE_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include "fault_io.h"
#include "storage.h"
#include "yggr/plugin.h"

struct st {
    char *dir;                       /* owned; removed by st_cleanup */
    struct storage_options opt;      /* opt.dir == dir */
    struct fault_io *fault;          /* non-NULL: the storage runs over it */
    const struct yggr_storage_ops *ops;
    struct yggr_storage *s;
    struct yggr_storage_state state;
    char why[256];
};

/* New temp dir, options with small segments (segment_bytes 0 = 64 KiB). */
void st_init(struct st *t, const char *tag, uint64_t segment_bytes);
/* Create the storage (over a new fault_io when `fault`), bootstrap if needed, recover
 * (must succeed) and start it with the synchronous API. */
void st_open(struct st *t, bool fault);
/* Create and recover only; returns recover()'s result (the storage stays created, not
 * started: st_close() frees it). */
int st_try_open(struct st *t, bool fault);
/* Start a storage opened with st_try_open (its recovered state is then gone). */
void st_start(struct st *t);
/* Close the storage (and destroy its fault io). */
void st_close(struct st *t);
void st_cleanup(struct st *t);

/* Deterministic payload length and byte for (index, term). */
uint32_t st_len(uint64_t index, uint32_t base);
uint8_t st_byte(uint64_t index, uint64_t term, uint32_t i);
/* Entries [first, first + count) of `term`, payload length st_len(index, base) (base 0:
 * NOOP entries... no: base 0 gives empty COMMANDs). Bufs must be released with
 * st_free_entries. */
struct yggr_entry *st_entries(uint64_t first, uint32_t count, uint64_t term, uint32_t base);
void st_free_entries(struct yggr_entry *e, uint32_t count);
/* Append synchronously; returns the durable log id. Asserts success. */
struct yggr_log_id st_append(struct st *t, uint64_t truncate_from, uint64_t first,
                             uint32_t count, uint64_t term, uint32_t base);
/* True when `e` carries the payload st_entries() would give it. */
bool st_entry_ok(const struct yggr_entry *e, uint64_t term, uint32_t base);
/* Read [first, last] back and check every entry's term and payload; term_of(index)
 * gives the expected term. Asserts. */
void st_check_log(struct st *t, uint64_t first, uint64_t last,
                  uint64_t (*term_of)(uint64_t index, void *ctx), void *ctx, uint32_t base);
/* Number of regular files in dir (optionally under log/) whose name contains `part`. */
int st_count_files(const struct st *t, const char *sub, const char *part);
/* Flip one bit of file `rel` (relative to the data dir) at `offset`. */
void st_flip(const struct st *t, const char *rel, uint64_t offset, uint8_t mask);
/* Path of the segment whose first index is `first` (static buffer). */
const char *st_seg(uint64_t first);

#endif /* YGGR_TESTS_STORAGE_STORAGE_TEST_H */
