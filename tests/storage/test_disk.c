/* SPDX-License-Identifier: MIT */
/* The disk storage over io_uring: appends, reads, truncation, compaction, hard state,
 * snapshots, recovery checks (ports of the reference's disk_storage.rs where meaningful). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_test.h"
#include "yggr_test.h"

static uint64_t term1(uint64_t index, void *ctx)
{
    (void)index;
    (void)ctx;
    return 1;
}

Test(disk, fresh_recover_is_empty)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "fresh", 0);
    st_open(&t, false);
    const struct yggr_recovered *r = &t.state.recovered;
    cr_expect(eq(u64, r->first_index, 1));
    cr_expect(eq(u64, r->last_index, 0));
    cr_expect(eq(u64, r->term, 0));
    cr_expect(eq(u64, r->vote, 0));
    cr_expect(not(r->has_snapshot));
    cr_expect(eq(u32, r->tail_count, 0));
    cr_expect(eq(u64, t.state.meta.cluster_id, 7));
    cr_expect(eq(u32, r->base_config.voter_count, 1));
    st_cleanup(&t);
}

Test(disk, append_and_read_back_across_segments_and_restart)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "append", 16u << 10);
    st_open(&t, false);
    uint64_t next = 1;
    for (int batch = 0; batch < 30; batch++) {
        uint32_t n = 1 + (uint32_t)(batch * 7 % 23);
        struct yggr_log_id id = st_append(&t, 0, next, n, 1, 100);
        next += n;
        cr_assert(eq(u64, id.index, next - 1));
        cr_assert(eq(u64, id.term, 1));
    }
    st_check_log(&t, 1, next - 1, term1, NULL, 100);
    char why[256];
    cr_assert(eq(int, storage_debug_check(t.s, why, sizeof(why)), 0), "%s", why);
    uint64_t first, last;
    uint32_t segs;
    storage_debug_range(t.s, &first, &last, &segs);
    cr_expect(gt(u32, segs, 3), "only %u segments", segs);
    st_close(&t);
    cr_assert(eq(int, st_try_open(&t, false), 0), "%s", t.why);
    const struct yggr_recovered *r = &t.state.recovered;
    cr_assert(eq(u64, r->last_index, next - 1));
    cr_assert(eq(u64, t.state.torn_bytes_dropped, 0));
    cr_assert(gt(u32, r->tail_count, 0));
    cr_assert(eq(u64, r->tail[r->tail_count - 1].index, next - 1));
    for (uint32_t i = 0; i < r->tail_count; i++) {
        cr_assert(st_entry_ok(&r->tail[i], 1, 100));
    }
    cr_assert(eq(u32, r->term_count, 1));
    st_start(&t);
    st_check_log(&t, 1, next - 1, term1, NULL, 100);
    st_append(&t, 0, next, 5, 2, 100);
    st_cleanup(&t);
}

Test(disk, recover_before_bootstrap_is_not_found_and_bootstrap_twice_is_exists)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "boot", 0);
    int rc = storage_disk_create_ex(&t.opt, NULL, &t.ops, &t.s, t.why, sizeof(t.why));
    cr_assert(eq(int, rc, 0));
    rc = t.ops->recover(t.s, &t.state, t.why, sizeof(t.why));
    cr_expect(eq(int, rc, YGGR_ERR_NOT_FOUND), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "not bootstrapped"), NULL), "%s", t.why);
    st_close(&t);
    st_open(&t, false);
    st_close(&t);
    rc = storage_disk_create_ex(&t.opt, NULL, &t.ops, &t.s, t.why, sizeof(t.why));
    cr_assert(eq(int, rc, 0));
    struct yggr_storage_meta meta = {.cluster_id = 1, .node_id = 1};
    rc = t.ops->bootstrap(t.s, &meta, t.why, sizeof(t.why));
    cr_expect(eq(int, rc, YGGR_ERR_EXISTS), "%s", t.why);
    st_close(&t);
    /* State without meta (meta lost, or someone else's files): never adopted. */
    st_open(&t, false);
    st_append(&t, 0, 1, 5, 1, 10);
    st_close(&t);
    char path[512];
    snprintf(path, sizeof(path), "%s/meta", t.dir);
    cr_assert(eq(int, unlink(path), 0));
    rc = storage_disk_create_ex(&t.opt, NULL, &t.ops, &t.s, t.why, sizeof(t.why));
    cr_assert(eq(int, rc, 0));
    rc = t.ops->bootstrap(t.s, &meta, t.why, sizeof(t.why));
    cr_expect(eq(int, rc, YGGR_ERR_EXISTS), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "no meta"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, dsync_mode_appends_reads_and_recovers)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "dsync", 16u << 10);
    t.opt.sync_mode = STORAGE_SYNC_DSYNC;
    st_open(&t, false);
    st_append(&t, 0, 1, 150, 1, 200);
    st_append(&t, 0, 151, 1, 1, 3000); /* one payload referenced in place (> 2 KiB) */
    st_close(&t);
    st_open(&t, false);
    cr_assert(eq(u64, t.state.recovered.last_index, 151));
    st_check_log(&t, 1, 150, term1, NULL, 200);
    st_cleanup(&t);
}

Test(disk, reads_respect_bounds_and_max_bytes)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "reads", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 200, 1, 100);
    struct yggr_storage_done d;
    cr_assert(eq(int, storage_sync_read(t.s, 190, 50, 0, &d), 0));
    cr_expect(eq(u32, d.count, 11)); /* clipped at the last index */
    t.ops->release(t.s, &d);
    cr_assert(eq(int, storage_sync_read(t.s, 201, 5, 0, &d), 0));
    cr_expect(eq(u32, d.count, 0));
    t.ops->release(t.s, &d);
    cr_assert(eq(int, storage_sync_read(t.s, 10, 100, 1000, &d), 0));
    cr_expect(ge(u32, d.count, 1));
    cr_expect(lt(u32, d.count, 11), "max_bytes 1000 but %u entries of >= 100 bytes", d.count);
    uint32_t bytes = 0;
    for (uint32_t i = 0; i + 1 < d.count; i++) {
        bytes += d.entries[i].len;
    }
    cr_expect(le(u32, bytes, 1000));
    t.ops->release(t.s, &d);
    cr_assert(eq(int, storage_sync_read(t.s, 1, 1, 1, &d), 0));
    cr_expect(eq(u32, d.count, 1)); /* always at least one entry */
    t.ops->release(t.s, &d);
    st_cleanup(&t);
}

Test(disk, hard_state_round_trips_with_and_without_vote)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "hs", 0);
    st_open(&t, false);
    cr_assert(eq(int, storage_sync_hard_state(t.s, 5, 3, t.why, sizeof(t.why)), 0));
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.term, 5));
    cr_expect(eq(u64, t.state.recovered.vote, 3));
    cr_assert(eq(int, storage_sync_hard_state(t.s, 6, 0, t.why, sizeof(t.why)), 0));
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.term, 6));
    cr_expect(eq(u64, t.state.recovered.vote, 0));
    st_cleanup(&t);
}

static uint64_t slot_seq(const struct st *t, int slot)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/hardstate", t->dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    uint8_t b[8];
    fseek(f, slot * 512 + 8, SEEK_SET);
    cr_assert(eq(sz, fread(b, 1, 8, f), 8));
    fclose(f);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | b[i];
    }
    return v;
}

Test(disk, hard_state_slots_alternate_and_a_torn_slot_falls_back)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "slots", 0);
    st_open(&t, false);
    cr_expect(eq(u64, slot_seq(&t, 0), 1)); /* bootstrap */
    for (uint64_t term = 1; term <= 3; term++) {
        cr_assert(eq(int, storage_sync_hard_state(t.s, term, term, t.why, sizeof(t.why)), 0));
        cr_expect(eq(u64, slot_seq(&t, (int)(term % 2)), term + 1), "write %" PRIu64, term);
    }
    cr_expect(eq(u64, slot_seq(&t, 0), 3));
    cr_expect(eq(u64, slot_seq(&t, 1), 4));
    st_close(&t);
    st_flip(&t, "hardstate", 512 + 16, 0x01); /* tear the newest slot (term 3) */
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.term, 2));
    cr_expect(eq(u64, t.state.recovered.vote, 2));
    cr_assert(eq(int, storage_sync_hard_state(t.s, 9, 1, t.why, sizeof(t.why)), 0));
    cr_expect(eq(u64, slot_seq(&t, 1), 4)); /* overwrote the damaged (older-valid) slot */
    st_close(&t);
    st_flip(&t, "hardstate", 16, 0x01);
    st_flip(&t, "hardstate", 512 + 16, 0x01);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "hardstate"), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "offset 512"), NULL), "%s", t.why);
    st_cleanup(&t);
}

static uint64_t term_split(uint64_t index, void *ctx)
{
    return index >= *(uint64_t *)ctx ? 2 : 1;
}

Test(disk, truncation_then_append_survives_restart)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "trunc", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 100, 1, 50);
    struct yggr_log_id id = st_append(&t, 60, 60, 11, 2, 50);
    cr_expect(eq(u64, id.index, 70));
    cr_expect(eq(u64, id.term, 2));
    uint64_t cut = 60;
    st_check_log(&t, 1, 70, term_split, &cut, 50);
    struct yggr_storage_done d;
    cr_assert(eq(int, storage_sync_read(t.s, 71, 10, 0, &d), 0));
    cr_expect(eq(u32, d.count, 0), "truncated entries are gone");
    t.ops->release(t.s, &d);
    st_close(&t);
    cr_assert(eq(int, st_try_open(&t, false), 0), "%s", t.why);
    cr_expect(eq(u64, t.state.recovered.last_index, 70));
    cr_expect(eq(u64, t.state.torn_bytes_dropped, 0));
    cr_expect(eq(u32, t.state.recovered.term_count, 2));
    cr_expect(eq(u64, t.state.recovered.terms[1].first_index, 60));
    st_start(&t);
    st_check_log(&t, 1, 70, term_split, &cut, 50);
    st_cleanup(&t);
}

Test(disk, truncation_across_segments_deletes_whole_segments)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "truncseg", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 400, 1, 100);
    int before = st_count_files(&t, "log", ".seg");
    cr_assert(ge(int, before, 4));
    st_append(&t, 150, 150, 6, 2, 100);
    int after = st_count_files(&t, "log", ".seg");
    cr_expect(lt(int, after, before));
    uint64_t cut = 150;
    st_check_log(&t, 1, 155, term_split, &cut, 100);
    char why[256];
    cr_assert(eq(int, storage_debug_check(t.s, why, sizeof(why)), 0), "%s", why);
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, 155));
    st_check_log(&t, 1, 155, term_split, &cut, 100);
    /* Truncate exactly at a segment's first index, then everything. */
    uint64_t first, last;
    uint32_t segs;
    storage_debug_range(t.s, &first, &last, &segs);
    st_append(&t, 1, 1, 3, 3, 100);
    struct yggr_storage_done d;
    cr_assert(eq(int, storage_sync_read(t.s, 1, 10, 0, &d), 0));
    cr_expect(eq(u32, d.count, 3));
    cr_expect(eq(u64, d.entries[0].term, 3));
    t.ops->release(t.s, &d);
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, 3));
    cr_expect(eq(int, st_count_files(&t, "log", ".seg"), 1));
    st_cleanup(&t);
}

Test(disk, truncation_without_entries_and_empty_append)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "trunc0", 0);
    st_open(&t, false);
    st_append(&t, 0, 1, 80, 1, 30);
    struct yggr_log_id id = st_append(&t, 0, 81, 0, 1, 30); /* empty append: no-op */
    cr_expect(eq(u64, id.index, 80));
    id = st_append(&t, 50, 50, 0, 1, 30); /* truncation only */
    cr_expect(eq(u64, id.index, 49));
    cr_expect(eq(u64, id.term, 1));
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, 49));
    cr_expect(eq(u64, t.state.torn_bytes_dropped, 0));
    st_append(&t, 0, 50, 5, 3, 30);
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, 54));
    st_cleanup(&t);
}

Test(disk, stale_records_never_resurrect_after_truncation)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "stale", 0);
    st_open(&t, false);
    st_append(&t, 0, 1, 20, 1, 64);
    /* Same index -> same payload size: the new records end exactly where old record 13
     * began, so without the chain and the zeroing, 13..20 (term 1) would parse again. */
    st_append(&t, 10, 10, 3, 2, 64);
    st_close(&t);
    for (int round = 0; round < 2; round++) {
        st_open(&t, false);
        cr_expect(eq(u64, t.state.recovered.last_index, 12));
        cr_expect(eq(u64, t.state.torn_bytes_dropped, 0));
        uint64_t cut = 10;
        st_check_log(&t, 1, 12, term_split, &cut, 64);
        st_close(&t);
    }
    st_cleanup(&t);
}

static uint8_t snap_byte(uint64_t seed, uint64_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13 ^ seed);
}

/* Write a local snapshot at (index, term) of `size` bytes through the apply-thread API. */
static void write_snapshot(struct st *t, uint64_t index, uint64_t term, uint64_t size)
{
    struct yggr_storage_snapshot_writer *w = NULL;
    cr_assert(eq(int, t->ops->snapshot_begin(t->s, &w), 0));
    uint8_t buf[7000];
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            buf[i] = snap_byte(index, off + i);
        }
        cr_assert(eq(int, t->ops->snapshot_write(w, buf, n), 0));
        off += n;
    }
    struct yggr_snapshot_meta meta = {.last = {index, term}, .size = size};
    meta.config.voter_count = 3;
    meta.config.voters[0] = 1;
    meta.config.voters[1] = 2;
    meta.config.voters[2] = 3;
    meta.config.learner_count = 1;
    meta.config.learners[0] = 9;
    int rc = t->ops->snapshot_commit(w, &meta, t->why, sizeof(t->why));
    cr_assert(eq(int, rc, 0), "%s", t->why);
}

/* Read the snapshot back through the reader; true when every byte matches. */
static bool snapshot_matches(struct st *t, uint64_t index, uint64_t term, uint64_t size)
{
    struct yggr_storage_snapshot_reader *r = NULL;
    struct yggr_snapshot_meta meta;
    int rc = t->ops->snapshot_open(t->s, (struct yggr_log_id){index, term}, &r, &meta);
    cr_assert(eq(int, rc, 0), "open snapshot %" PRIu64 ": %s", index, yggr_strerror(rc));
    cr_assert(eq(u64, meta.size, size));
    cr_assert(eq(u32, meta.config.voter_count, 3));
    cr_assert(eq(u64, meta.config.learners[0], 9));
    uint8_t buf[5000];
    uint64_t off = 0;
    bool same = true;
    long n;
    while ((n = t->ops->snapshot_read(r, buf, sizeof(buf))) > 0) {
        for (long i = 0; i < n; i++) {
            same = same && buf[i] == snap_byte(index, off + (uint64_t)i);
        }
        off += (uint64_t)n;
    }
    t->ops->snapshot_close(r);
    return n == 0 && off == size && same;
}

Test(disk, snapshots_write_read_replace_and_abort)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "snap", 0);
    st_open(&t, false);
    write_snapshot(&t, 10, 1, 2500000);
    cr_expect(snapshot_matches(&t, 10, 1, 2500000));
    struct yggr_storage_snapshot_writer *w = NULL;
    cr_assert(eq(int, t.ops->snapshot_begin(t.s, &w), 0));
    cr_assert(eq(int, t.ops->snapshot_write(w, "abc", 3), 0));
    t.ops->snapshot_abort(w);
    cr_expect(eq(int, st_count_files(&t, NULL, ".tmp"), 0));
    write_snapshot(&t, 20, 2, 1000);
    struct yggr_storage_snapshot_reader *r = NULL;
    struct yggr_snapshot_meta meta;
    cr_assert(eq(int, t.ops->snapshot_open(t.s, (struct yggr_log_id){0, 0}, &r, &meta), 0));
    cr_expect(eq(u64, meta.last.index, 20)); /* index 0: the current snapshot */
    t.ops->snapshot_close(r);
    cr_expect(eq(int, t.ops->snapshot_open(t.s, (struct yggr_log_id){11, 1}, &r, &meta),
                 YGGR_ERR_NOT_FOUND));
    st_close(&t);
    cr_assert(eq(int, st_try_open(&t, false), 0), "%s", t.why);
    cr_expect(t.state.recovered.has_snapshot);
    cr_expect(eq(u64, t.state.recovered.snapshot.last.index, 20));
    cr_expect(eq(u64, t.state.recovered.first_index, 21));
    cr_expect(eq(u32, t.state.recovered.snapshot.config.voter_count, 3));
    st_start(&t);
    cr_expect(eq(int, st_count_files(&t, NULL, "snap-"), 1), "older snapshot removed");
    cr_expect(snapshot_matches(&t, 20, 2, 1000));
    st_cleanup(&t);
}

Test(disk, snapshot_corruption_is_detected_by_reader_and_recovery)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "snapbad", 0);
    st_open(&t, false);
    write_snapshot(&t, 5, 1, 100000);
    char name[128];
    snprintf(name, sizeof(name), "snap-%020d-%020d", 5, 1);
    st_flip(&t, name, 1024 + 77777, 0x10);
    struct yggr_storage_snapshot_reader *r = NULL;
    struct yggr_snapshot_meta meta;
    cr_assert(eq(int, t.ops->snapshot_open(t.s, (struct yggr_log_id){5, 1}, &r, &meta), 0));
    uint8_t buf[4096];
    long n;
    while ((n = t.ops->snapshot_read(r, buf, sizeof(buf))) > 0) {
    }
    cr_expect(eq(long, n, YGGR_ERR_CORRUPT));
    t.ops->snapshot_close(r);
    st_close(&t);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, name), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "payload crc"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, compaction_drops_whole_segments_and_old_snapshots)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "compact", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 400, 1, 100);
    int before = st_count_files(&t, "log", ".seg");
    write_snapshot(&t, 300, 1, 5000);
    cr_assert(eq(int, storage_sync_compact(t.s, 301, t.why, sizeof(t.why)), 0), "%s", t.why);
    int after = st_count_files(&t, "log", ".seg");
    cr_expect(lt(int, after, before));
    uint64_t first, last;
    uint32_t segs;
    storage_debug_range(t.s, &first, &last, &segs);
    cr_expect(le(u64, first, 301));
    cr_expect(gt(u64, first, 1));
    cr_expect(eq(u64, last, 400));
    struct yggr_storage_done d;
    cr_assert(eq(int, storage_sync_read(t.s, first - 1, 5, 0, &d), YGGR_ERR_NOT_FOUND));
    cr_expect(ne(ptr, strstr(d.why, "compacted"), NULL), "%s", d.why);
    st_check_log(&t, first, 400, term1, NULL, 100);
    write_snapshot(&t, 350, 1, 5000);
    cr_assert(eq(int, storage_sync_compact(t.s, 351, t.why, sizeof(t.why)), 0));
    cr_expect(eq(int, st_count_files(&t, NULL, "snap-"), 1));
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.snapshot.last.index, 350));
    cr_expect(le(u64, t.state.recovered.first_index, 351));
    cr_expect(eq(u64, t.state.recovered.last_index, 400));
    st_append(&t, 0, 401, 10, 2, 100);
    st_cleanup(&t);
}

Test(disk, snap_read_returns_chunks)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "snapread", 0);
    st_open(&t, false);
    write_snapshot(&t, 7, 2, 300000);
    struct yggr_storage_done d;
    for (uint64_t off = 0; off < 300000; off += 65536) {
        cr_assert(eq(int, storage_sync_snap_read(t.s, (struct yggr_log_id){7, 2}, off, 65536, &d),
                     0));
        uint32_t want = 300000 - off < 65536 ? (uint32_t)(300000 - off) : 65536;
        cr_assert(eq(u32, d.len, want));
        for (uint32_t i = 0; i < d.len; i++) {
            cr_assert(eq(u8, d.data[i], snap_byte(7, off + i)));
        }
        t.ops->release(t.s, &d);
    }
    cr_expect(eq(int, storage_sync_snap_read(t.s, (struct yggr_log_id){7, 2}, 300001, 10, &d),
                 YGGR_ERR_INVALID));
    cr_expect(eq(int, storage_sync_snap_read(t.s, (struct yggr_log_id){8, 2}, 0, 10, &d),
                 YGGR_ERR_NOT_FOUND));
    st_cleanup(&t);
}

static void install(struct st *t, uint64_t index, uint64_t term, uint64_t size, bool restart)
{
    struct yggr_snapshot_meta meta = {.last = {index, term}, .size = size};
    meta.config.voter_count = 3;
    meta.config.voters[0] = 1;
    meta.config.voters[1] = 2;
    meta.config.voters[2] = 3;
    meta.config.learner_count = 1;
    meta.config.learners[0] = 9;
    uint8_t *data = malloc(size);
    cr_assert_not_null(data);
    if (restart) { /* a first attempt with other bytes, abandoned half way */
        memset(data, 0xEE, size);
        cr_assert(eq(int, storage_sync_snap_chunk(t->s, &meta, 0, data, (uint32_t)(size / 2),
                                                  false, t->why, sizeof(t->why)), 0));
    }
    for (uint64_t i = 0; i < size; i++) {
        data[i] = snap_byte(index, i);
    }
    uint32_t chunk = 40000;
    for (uint64_t off = 0; off < size; off += chunk) {
        uint32_t n = size - off < chunk ? (uint32_t)(size - off) : chunk;
        bool done = off + n == size;
        int rc = storage_sync_snap_chunk(t->s, &meta, off, data + off, n, done, t->why,
                                         sizeof(t->why));
        cr_assert(eq(int, rc, 0), "chunk at %" PRIu64 ": %s", off, t->why);
    }
    free(data);
}

Test(disk, incoming_snapshot_restarts_at_offset_zero_and_keeps_a_matching_log)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "install", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 50, 1, 100);
    install(&t, 30, 1, 150000, true);
    cr_expect(snapshot_matches(&t, 30, 1, 150000));
    cr_expect(eq(int, st_count_files(&t, NULL, "partial"), 0));
    st_check_log(&t, 1, 50, term1, NULL, 100); /* (30, 1) matches: the log stays */
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.snapshot.last.index, 30));
    cr_expect(eq(u64, t.state.recovered.last_index, 50));
    cr_expect(le(u64, t.state.recovered.first_index, 30));
    st_cleanup(&t);
}

Test(disk, incoming_snapshot_with_a_mismatched_boundary_wipes_the_log)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "mismatch", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 300, 1, 100);
    st_append(&t, 0, 301, 20, 2, 100);
    install(&t, 310, 3, 20000, false); /* our entry 310 has term 2: discard the whole log */
    cr_expect(eq(int, st_count_files(&t, "log", ".seg"), 0));
    struct yggr_storage_done d;
    cr_assert(eq(int, storage_sync_read(t.s, 311, 5, 0, &d), 0));
    cr_expect(eq(u32, d.count, 0), "no entry above the snapshot survives");
    t.ops->release(t.s, &d);
    st_close(&t);
    /* REFERENCE 8.1 #11: after a restart the old tail (311..320) must not come back. */
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.first_index, 311));
    cr_expect(eq(u64, t.state.recovered.last_index, 310));
    struct yggr_log_id id = st_append(&t, 0, 311, 5, 3, 100);
    cr_expect(eq(u64, id.index, 315));
    /* The same snapshot again: the log starts right after it, so it matches and stays. */
    install(&t, 310, 3, 20000, false);
    cr_assert(eq(int, storage_sync_read(t.s, 311, 10, 0, &d), 0));
    cr_expect(eq(u32, d.count, 5), "the tail after a matching snapshot is kept");
    t.ops->release(t.s, &d);
    install(&t, 400, 3, 1000, false); /* past our log: discard it too */
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.first_index, 401));
    cr_expect(eq(u64, t.state.recovered.snapshot.last.index, 400));
    cr_expect(eq(int, st_count_files(&t, NULL, "snap-"), 1));
    st_cleanup(&t);
}

static void touch(const struct st *t, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    fputs("junk", f);
    fclose(f);
}

Test(disk, recovery_removes_and_counts_temp_files_only)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "temps", 0);
    st_open(&t, false);
    st_append(&t, 0, 1, 10, 1, 10);
    write_snapshot(&t, 5, 1, 100);
    st_close(&t);
    touch(&t, "snap-0123456789abcdef.tmp");
    touch(&t, "snap-incoming.partial");
    touch(&t, "meta.tmp");
    touch(&t, "log/next.prep");
    touch(&t, "log/00000000000000000001.seg.tmp");
    touch(&t, "notes.txt"); /* not ours: left alone */
    st_open(&t, false);
    cr_expect(eq(u64, t.state.temp_files_removed, 5));
    cr_expect(eq(int, st_count_files(&t, NULL, ".tmp"), 0));
    cr_expect(eq(int, st_count_files(&t, NULL, "partial"), 0));
    cr_expect(eq(int, st_count_files(&t, "log", "prep"), 0));
    cr_expect(eq(int, st_count_files(&t, NULL, "notes.txt"), 1));
    cr_expect(eq(int, st_count_files(&t, NULL, "snap-"), 1));
    cr_expect(eq(u64, t.state.recovered.last_index, 10));
    st_cleanup(&t);
}

Test(disk, damaged_meta_is_refused_with_its_name)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "meta", 0);
    st_open(&t, false);
    st_close(&t);
    st_flip(&t, "meta", 20, 0x04);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "/meta"), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "crc"), NULL), "%s", t.why);
    st_close(&t);
    st_flip(&t, "meta", 20, 0x04);
    st_flip(&t, "meta", 8, 0x02); /* version 3 */
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "version"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, a_bit_flip_in_a_sealed_segment_is_refused_with_file_and_offset)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "flip", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 300, 1, 100);
    st_close(&t);
    st_flip(&t, st_seg(1), 64 + 25 + 7, 0x20); /* payload of record 1 */
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "00000000000000000001.seg"), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "offset 64"), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "index 1"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, damage_inside_the_last_segment_followed_by_valid_records_is_refused)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "flipmid", 0);
    st_open(&t, false);
    st_append(&t, 0, 1, 30, 1, 100);
    st_close(&t);
    /* Record 1 is at 64, each record is 25 + st_len bytes. */
    uint64_t off = 64;
    for (uint64_t i = 1; i < 10; i++) {
        off += 25 + st_len(i, 100);
    }
    st_flip(&t, st_seg(1), off + 30, 0x01); /* payload of record 10 */
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    char want[64];
    snprintf(want, sizeof(want), "offset %" PRIu64, off);
    cr_expect(ne(ptr, strstr(t.why, want), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "index 11 follows"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, missing_pieces_of_the_log_are_refused)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "gap", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 400, 1, 100);
    uint64_t first, last;
    uint32_t segs;
    storage_debug_range(t.s, &first, &last, &segs);
    cr_assert(ge(u32, segs, 3));
    st_close(&t);
    char path[512];
    /* Find the second segment's name and remove it: a gap. */
    int removed = 0;
    for (uint64_t i = 2; i < 400 && !removed; i++) {
        snprintf(path, sizeof(path), "%s/%s", t.dir, st_seg(i));
        removed = unlink(path) == 0;
    }
    cr_assert(removed);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "00000000000000000001.seg"), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "must end at index"), NULL), "%s", t.why);
    st_close(&t);
    snprintf(path, sizeof(path), "%s/%s", t.dir, st_seg(1));
    cr_assert(eq(int, unlink(path), 0));
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "no snapshot"), NULL), "%s", t.why);
    st_close(&t);
    yggr_test_rmtree(t.dir); /* only the log dir: */
    cr_assert(eq(int, mkdir(t.dir, 0755), 0));
    st_open(&t, false);
    st_close(&t);
    snprintf(path, sizeof(path), "%s/log", t.dir);
    yggr_test_rmtree(path);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "/log"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, close_completes_every_submitted_request)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "closeall", 16u << 10);
    st_open(&t, false);
    uint64_t next = 1;
    for (int i = 0; i < 200; i++) {
        struct yggr_entry *e = st_entries(next, 3, 1, 40);
        struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND, .tag = (uint64_t)i + 1};
        req.as.append.entries = e;
        req.as.append.count = 3;
        int rc;
        while ((rc = t.ops->submit(t.s, &req)) == YGGR_ERR_BUSY) {
            t.ops->flush(t.s);
            struct yggr_storage_done d;
            storage_sync_wait(t.s, &d, 1000);
        }
        cr_assert(eq(int, rc, 0));
        st_free_entries(e, 3); /* the storage holds its own references */
        next += 3;
    }
    t.ops->flush(t.s);
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, next - 1));
    st_check_log(&t, 1, next - 1, term1, NULL, 40);
    st_cleanup(&t);
}

Test(disk, submit_reports_busy_when_the_queue_is_full_and_rejects_bad_requests)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "busy", 0);
    t.opt.queue_entries = 64;
    st_open(&t, false);
    struct yggr_entry *e = st_entries(1, 40, 1, 10);
    struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND, .tag = 1};
    req.as.append.entries = e;
    req.as.append.count = 40;
    cr_assert(eq(int, t.ops->submit(t.s, &req), 0));
    struct yggr_entry *f = st_entries(41, 40, 1, 10);
    req.as.append.entries = f;
    req.tag = 2;
    cr_expect(eq(int, t.ops->submit(t.s, &req), YGGR_ERR_BUSY));
    t.ops->flush(t.s);
    struct yggr_storage_done d;
    cr_assert(storage_sync_wait(t.s, &d, 10000));
    cr_expect(eq(int, d.type, YGGR_STORAGE_DURABLE));
    cr_expect(eq(u64, d.log.index, 40));
    cr_expect(eq(int, t.ops->submit(t.s, &req), 0));
    t.ops->flush(t.s);
    cr_assert(storage_sync_wait(t.s, &d, 10000));
    cr_expect(eq(u64, d.log.index, 80));
    f[1].index = 99; /* not contiguous */
    cr_expect(eq(int, t.ops->submit(t.s, &req), YGGR_ERR_INVALID));
    struct yggr_entry *big = st_entries(81, 1, 1, 70000); /* > a 64 KiB segment */
    req.as.append.entries = big;
    req.as.append.count = 1;
    cr_expect(eq(int, t.ops->submit(t.s, &req), YGGR_ERR_TOO_LARGE));
    st_free_entries(e, 40);
    st_free_entries(f, 40);
    st_free_entries(big, 1);
    st_cleanup(&t);
}

static void cut_file(const struct st *t, const char *rel, off_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
    cr_assert(eq(int, truncate(path, size), 0), "%s", path);
}

Test(disk, reference_ports_truncating_empty_storage_and_malformed_files)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "refport", 0);
    st_open(&t, false);
    struct yggr_log_id id = st_append(&t, 1, 1, 0, 1, 10); /* truncate an empty log: no-op */
    cr_expect(eq(u64, id.index, 0));
    write_snapshot(&t, 3, 1, 4000);
    st_close(&t);
    st_open(&t, false); /* snapshot only, no log: appends continue after it */
    cr_expect(eq(u64, t.state.recovered.first_index, 4));
    st_append(&t, 0, 4, 3, 1, 10);
    st_close(&t);
    char hs_path[512];
    snprintf(hs_path, sizeof(hs_path), "%s/hardstate", t.dir);
    uint8_t hs[1024];
    FILE *f = fopen(hs_path, "rb");
    cr_assert(eq(sz, fread(hs, 1, sizeof(hs), f), sizeof(hs)));
    fclose(f);
    cut_file(&t, "hardstate", 17); /* the reference's 17-byte hard state */
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "size 17 bytes, expected 1024"), NULL), "%s", t.why);
    st_close(&t);
    f = fopen(hs_path, "wb");
    cr_assert(eq(sz, fwrite(hs, 1, sizeof(hs), f), sizeof(hs)));
    fclose(f);
    char snap[128];
    snprintf(snap, sizeof(snap), "snap-%020d-%020d", 3, 1);
    cut_file(&t, snap, 1024 + 100);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, snap), NULL), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "1124 bytes"), NULL), "%s", t.why);
    st_close(&t);
    cut_file(&t, snap, 100);
    cr_assert(eq(int, st_try_open(&t, false), YGGR_ERR_CORRUPT));
    cr_expect(ne(ptr, strstr(t.why, "shorter than the 1024-byte header"), NULL), "%s", t.why);
    st_cleanup(&t);
}

Test(disk, a_missing_or_damaged_next_segment_is_prepared_again)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "ready", 16u << 10);
    st_open(&t, false);
    st_append(&t, 0, 1, 10, 1, 10);
    st_close(&t);
    char path[512];
    snprintf(path, sizeof(path), "%s/log/next.ready", t.dir);
    unlink(path); /* may not exist: close() does not wait for a preparation in progress */
    st_open(&t, false);
    cr_expect(eq(int, st_count_files(&t, "log", "next.ready"), 1));
    st_close(&t);
    st_flip(&t, "log/next.ready", 3, 0x11); /* a torn first batch into it */
    st_open(&t, false);
    cr_expect(eq(u64, t.state.temp_files_removed, 1));
    st_append(&t, 0, 11, 400, 1, 10); /* rolls over into the re-prepared one and beyond */
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, 410));
    st_check_log(&t, 1, 410, term1, NULL, 10);
    st_cleanup(&t);
}

Test(disk, truncation_and_wipe_of_hundreds_of_segments)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "many", 16u << 10);
    st_open(&t, false);
    for (uint64_t next = 1; next <= 600; next += 50) {
        st_append(&t, 0, next, 50, 1, 7000); /* ~2 records per 16 KiB segment */
    }
    cr_assert(gt(int, st_count_files(&t, "log", ".seg"), 280));
    st_append(&t, 3, 3, 2, 2, 7000); /* one truncation drops ~300 segments, in order */
    cr_expect(le(int, st_count_files(&t, "log", ".seg"), 3));
    for (uint64_t next = 5; next <= 600; next += 50) {
        st_append(&t, 0, next, 50, 2, 7000);
    }
    install(&t, 700, 3, 100, false); /* wipes ~300 segments, newest first */
    cr_expect(eq(int, st_count_files(&t, "log", ".seg"), 0));
    st_close(&t);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.first_index, 701));
    st_cleanup(&t);
}

Test(disk, requests_of_every_kind_in_one_flush_execute_in_submission_order)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "order", 16u << 10);
    st_open(&t, false);
    struct yggr_entry *a = st_entries(1, 200, 1, 50);
    struct yggr_entry *b = st_entries(150, 3, 2, 50);
    struct yggr_storage_req reqs[6];
    memset(reqs, 0, sizeof(reqs));
    reqs[0] = (struct yggr_storage_req){.type = YGGR_STORAGE_APPEND, .tag = 1};
    reqs[0].as.append.entries = a;
    reqs[0].as.append.count = 200;
    reqs[1] = (struct yggr_storage_req){.type = YGGR_STORAGE_READ, .tag = 2};
    reqs[1].as.read.first = 140;
    reqs[1].as.read.count = 100;
    reqs[2] = (struct yggr_storage_req){.type = YGGR_STORAGE_APPEND, .tag = 3};
    reqs[2].as.append.truncate_from = 150;
    reqs[2].as.append.entries = b;
    reqs[2].as.append.count = 3;
    reqs[3] = reqs[1];
    reqs[3].tag = 4;
    reqs[4] = (struct yggr_storage_req){.type = YGGR_STORAGE_HARD_STATE, .tag = 5};
    reqs[4].as.hard_state.term = 2;
    reqs[4].as.hard_state.vote = 1;
    reqs[5] = (struct yggr_storage_req){.type = YGGR_STORAGE_COMPACT, .tag = 6};
    reqs[5].as.compact.below = 100; /* no snapshot: clamped to nothing */
    for (int i = 0; i < 6; i++) {
        cr_assert(eq(int, t.ops->submit(t.s, &reqs[i]), 0));
    }
    st_free_entries(a, 200);
    st_free_entries(b, 3);
    t.ops->flush(t.s);
    uint32_t reads = 0;
    uint64_t durable_tag = 0;
    while (durable_tag < 6) {
        struct yggr_storage_done d;
        cr_assert(storage_sync_wait(t.s, &d, 10000));
        if (d.type == YGGR_STORAGE_READ_DONE) {
            reads++;
            cr_expect(eq(u64, d.tag, reads == 1 ? 2 : 4));
            cr_expect(ge(u64, durable_tag, reads == 1 ? 1 : 3), "a read waits for what precedes");
            cr_expect(eq(u32, d.count, reads == 1 ? 61 : 13));
            cr_expect(eq(u64, d.entries[d.count - 1].term, reads == 1 ? 1 : 2));
        } else {
            cr_assert(eq(int, d.type, YGGR_STORAGE_DURABLE));
            cr_expect(ge(u64, d.tag, durable_tag));
            durable_tag = d.tag;
            if (d.tag == 6) {
                cr_expect(d.has_hard_state || t.state.recovered.term == 0);
                cr_expect(eq(u64, d.log.index, 152));
                cr_expect(eq(u64, d.log.term, 2));
            }
        }
        t.ops->release(t.s, &d);
    }
    cr_expect(eq(u32, reads, 2));
    st_cleanup(&t);
}
