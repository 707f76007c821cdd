/* SPDX-License-Identifier: MIT */
/* Faults and crashes: write/fsync errors and ENOSPC make the storage fatal without losing a
 * durable entry; torn last writes at every record boundary and random offsets recover to a
 * prefix; power cuts (fault injector) never lose anything reported durable. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage_test.h"
#include "yggr_test.h"

static uint64_t term1(uint64_t index, void *ctx)
{
    (void)index;
    (void)ctx;
    return 1;
}

/* ---- an asynchronous driver over the vtable ------------------------------------------- */

struct drv {
    struct st *t;
    uint64_t tag;
    struct yggr_log_id durable;    /* last DURABLE log id */
    uint64_t hs_term;              /* last durable hard state */
    bool failed;
    int err;
    char why[256];
};

static void drv_take(struct drv *d, struct yggr_storage_done *done)
{
    if (done->type == YGGR_STORAGE_DURABLE) {
        d->durable = done->log;
        if (done->has_hard_state) {
            d->hs_term = done->term;
        }
    } else if (done->type == YGGR_STORAGE_FAILED) {
        d->failed = true;
        d->err = done->err;
        snprintf(d->why, sizeof(d->why), "%s", done->why);
    }
    d->t->ops->release(d->t->s, done);
}

/* Poll everything available (wait up to timeout_ms for the first one). */
static void drv_poll(struct drv *d, int timeout_ms)
{
    struct yggr_storage_done done;
    if (storage_sync_wait(d->t->s, &done, timeout_ms)) {
        drv_take(d, &done);
        while (d->t->ops->poll(d->t->s, &done)) {
            drv_take(d, &done);
        }
    }
}

/* Submit (retrying while busy); false once the storage refuses (FATAL). */
static bool drv_submit(struct drv *d, struct yggr_storage_req *req)
{
    req->tag = ++d->tag;
    for (;;) {
        int rc = d->t->ops->submit(d->t->s, req);
        if (rc == 0) {
            return true;
        }
        if (rc != YGGR_ERR_BUSY) {
            cr_assert(eq(int, rc, YGGR_ERR_FATAL), "submit: %s", yggr_strerror(rc));
            return false;
        }
        d->t->ops->flush(d->t->s);
        drv_poll(d, 1000);
    }
}

static bool drv_append(struct drv *d, uint64_t truncate_from, uint64_t first, uint32_t count,
                       uint64_t term, uint32_t base)
{
    struct yggr_entry *e = st_entries(first, count, term, base);
    struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND};
    req.as.append.truncate_from = truncate_from;
    req.as.append.entries = e;
    req.as.append.count = count;
    bool ok = drv_submit(d, &req);
    st_free_entries(e, count);
    return ok;
}

static bool drv_hard_state(struct drv *d, uint64_t term)
{
    struct yggr_storage_req req = {.type = YGGR_STORAGE_HARD_STATE};
    req.as.hard_state.term = term;
    req.as.hard_state.vote = term % 5 + 1;
    return drv_submit(d, &req);
}

/* ---- fatal errors --------------------------------------------------------------------------- */

static void fatal_case(enum fault_kind kind, int err, const char *filter, int want_err,
                       const char *want_text, enum storage_sync_mode mode)
{
    struct st t;
    st_init(&t, "fatal", 16u << 10);
    t.opt.sync_mode = mode;
    st_open(&t, true);
    st_append(&t, 0, 1, 150, 1, 80); /* durable; the first segment is renamed by now */
    cr_assert(eq(int, storage_sync_hard_state(t.s, 3, 2, t.why, sizeof(t.why)), 0));
    fault_io_arm(t.fault, kind, 1, err, filter);
    struct yggr_entry *e = st_entries(151, 10, 1, 80);
    int rc = storage_sync_append(t.s, 0, e, 10, NULL, t.why, sizeof(t.why));
    if (strcmp(filter, "hardstate") == 0) {
        cr_assert(eq(int, rc, 0), "%s", t.why);
        rc = storage_sync_hard_state(t.s, 4, 1, t.why, sizeof(t.why));
    }
    cr_expect(eq(int, rc, want_err), "%s", t.why);
    cr_expect(ne(ptr, strstr(t.why, want_text), NULL), "why: %s", t.why);
    cr_expect(ne(ptr, strstr(t.why, "offset"), NULL), "why: %s", t.why);
    struct yggr_storage_req req = {.type = YGGR_STORAGE_HARD_STATE};
    cr_expect(eq(int, t.ops->submit(t.s, &req), YGGR_ERR_FATAL), "sticky");
    st_free_entries(e, 10);
    st_close(&t);
    st_open(&t, false); /* reopen over io_uring: every durable entry is there */
    cr_expect(ge(u64, t.state.recovered.last_index, 150));
    cr_expect(ge(u64, t.state.recovered.term, 3));
    st_check_log(&t, 1, 150, term1, NULL, 80);
    st_cleanup(&t);
}

Test(fatal, a_segment_write_error_is_fatal_and_loses_nothing_durable)
{
    YGGR_REQUIRE_IO();
    fatal_case(FAULT_WRITE_ERROR, EIO, ".seg", YGGR_ERR_IO, "Input/output error",
               STORAGE_SYNC_FDATASYNC);
}

Test(fatal, a_segment_fdatasync_error_is_fatal_and_loses_nothing_durable)
{
    YGGR_REQUIRE_IO();
    fatal_case(FAULT_SYNC_ERROR, EIO, ".seg", YGGR_ERR_IO, "fdatasync", STORAGE_SYNC_FDATASYNC);
}

Test(fatal, a_dsync_write_whose_sync_fails_is_fatal)
{
    YGGR_REQUIRE_IO();
    fatal_case(FAULT_SYNC_ERROR, EIO, ".seg", YGGR_ERR_IO, "write", STORAGE_SYNC_DSYNC);
}

Test(fatal, a_short_write_is_fatal)
{
    YGGR_REQUIRE_IO();
    fatal_case(FAULT_SHORT_WRITE, 0, ".seg", YGGR_ERR_IO, "short write", STORAGE_SYNC_FDATASYNC);
}

Test(fatal, enospc_is_reported_as_nospc)
{
    YGGR_REQUIRE_IO();
    fatal_case(FAULT_WRITE_ERROR, ENOSPC, ".seg", YGGR_ERR_NOSPC, "No space left",
               STORAGE_SYNC_FDATASYNC);
}

Test(fatal, a_hard_state_fsync_error_is_fatal)
{
    YGGR_REQUIRE_IO();
    fatal_case(FAULT_SYNC_ERROR, EIO, "hardstate", YGGR_ERR_IO, "hardstate",
               STORAGE_SYNC_FDATASYNC);
}

/* ---- torn last writes, cut at every record boundary and at random offsets ------------------ */

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    cr_assert(eq(sz, fread(b, 1, *len, f), *len));
    fclose(f);
    return b;
}

static void write_all(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert(eq(long, (long)pwrite(fd, b, len, 0), (long)len));
    close(fd);
}

/* Recover the dir with the segment cut at `cut` (bytes [cut, garbage_to) random, the rest
 * zeros) and check the log is exactly the whole records before `cut`. */
static void recover_cut(struct st *t, const char *path, const uint8_t *orig, size_t len,
                        const uint64_t *off, uint32_t n, uint64_t cut, uint64_t garbage_to,
                        uint64_t *rng)
{
    uint8_t *b = malloc(len);
    memcpy(b, orig, len);
    memset(b + cut, 0, len - cut);
    for (uint64_t i = cut; i < garbage_to; i++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (uint8_t)(*rng >> 33);
    }
    write_all(path, b, len);
    free(b);
    uint32_t whole = 0;
    while (whole < n && off[whole + 1] <= cut) {
        whole++;
    }
    int rc = st_try_open(t, true);
    cr_assert(eq(int, rc, 0), "cut at %" PRIu64 ": %s", cut, t->why);
    cr_assert(eq(u64, t->state.recovered.last_index, whole), "cut at %" PRIu64, cut);
    bool torn = cut > off[whole] || garbage_to > cut;
    cr_assert(eq(int, t->state.torn_bytes_dropped > 0, torn), "cut at %" PRIu64 ": %" PRIu64
              " torn bytes", cut, t->state.torn_bytes_dropped);
    uint32_t k = t->state.recovered.tail_count;
    cr_assert(k == 0 || t->state.recovered.tail[k - 1].index == whole);
    st_close(t);
}

Test(torn, recovery_yields_a_prefix_at_every_record_boundary_and_random_offsets)
{
    YGGR_REQUIRE_IO();
    struct st t;
    st_init(&t, "torn", 64u << 10);
    st_open(&t, false);
    uint64_t next = 1;
    while (next < 200) {
        uint32_t n = 1 + (uint32_t)(next % 13);
        st_append(&t, 0, next, n, 1, 60);
        next += n;
    }
    uint64_t last = next - 1;
    st_close(&t);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", t.dir, st_seg(1));
    size_t len = 0;
    uint8_t *orig = read_all(path, &len);
    uint64_t *off = calloc(last + 2, sizeof(*off));
    off[0] = 64;
    for (uint64_t i = 1; i <= last; i++) {
        off[i] = off[i - 1] + 25 + st_len(i, 60);
    }
    uint64_t rng = 42;
    /* Every record boundary after the first batch (a .seg name only exists once its first
     * batch is durable; an empty .seg is refused as damage). */
    for (uint64_t i = 2; i <= last; i++) {
        recover_cut(&t, path, orig, len, off, (uint32_t)last, off[i], off[i], &rng);
    }
    uint64_t batch = off[last - 12]; /* the last batch wrote the last 13 records */
    for (int r = 0; r < 80; r++) { /* random offsets inside it, zeros or garbage after */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t cut = batch + (rng >> 33) % (off[last] - batch);
        uint64_t garbage = r % 2 ? cut + (rng >> 40) % 700 : cut;
        recover_cut(&t, path, orig, len, off, (uint32_t)last, cut,
                    garbage < off[last] ? garbage : off[last], &rng);
    }
    write_all(path, orig, len);
    st_open(&t, false);
    cr_expect(eq(u64, t.state.recovered.last_index, last));
    st_check_log(&t, 1, last, term1, NULL, 60);
    free(off);
    free(orig);
    st_cleanup(&t);
}

/* ---- power cuts (fault injector) -------------------------------------------------------------- */

/* Keep appending (term 2, from `next`) and writing hard states asynchronously until the
 * injected power cut fails the storage; returns the next index that was never submitted. */
static uint64_t run_until_cut(struct drv *d, uint64_t next, uint64_t *hs_submitted)
{
    for (int round = 0; round < 3000 && !d->failed; round++) {
        uint32_t n = 1 + (uint32_t)(round * 7 % 9);
        if (!drv_append(d, 0, next, n, 2, 90)) {
            break;
        }
        next += n;
        if (round % 5 == 0) {
            *hs_submitted += 1;
            if (!drv_hard_state(d, *hs_submitted)) {
                break;
            }
        }
        d->t->ops->flush(d->t->s);
        drv_poll(d, round % 8 == 7 ? 50 : 0);
    }
    for (int i = 0; i < 100 && !d->failed; i++) {
        d->t->ops->flush(d->t->s);
        drv_poll(d, 100);
    }
    cr_assert(d->failed, "the power cut never happened");
    return next;
}

static uint64_t term_model(uint64_t index, void *ctx)
{
    return index <= *(uint64_t *)ctx ? 1 : 2;
}

static void power_cut_round(uint64_t seed, enum storage_sync_mode mode)
{
    struct st t;
    st_init(&t, "power", 32u << 10);
    t.opt.sync_mode = mode;
    t.opt.prep_chunk_bytes = 8u << 10;
    st_open(&t, true);
    uint64_t phase1 = 60 + seed * 17 % 150;
    st_append(&t, 0, 1, (uint32_t)phase1, 1, 90);
    uint64_t hs = 10;
    cr_assert(eq(int, storage_sync_hard_state(t.s, hs, hs % 5 + 1, t.why, sizeof(t.why)), 0));
    struct drv d = {.t = &t, .hs_term = hs, .durable = {phase1, 1}};
    fault_io_arm(t.fault, FAULT_POWER_CUT, 1 + seed * 7 % 23, 0, NULL);
    uint64_t end = run_until_cut(&d, phase1 + 1, &hs);
    struct fault_io_stats fs;
    fault_io_get_stats(t.fault, &fs);
    st_close(&t);
    int rc = st_try_open(&t, false);
    cr_assert(eq(int, rc, 0), "seed %" PRIu64 ": %s", seed, t.why);
    const struct yggr_recovered *r = &t.state.recovered;
    cr_assert(ge(u64, r->last_index, d.durable.index),
              "seed %" PRIu64 ": durable up to %" PRIu64 " but recovered %" PRIu64, seed,
              d.durable.index, r->last_index);
    cr_assert(lt(u64, r->last_index, end));
    cr_assert(ge(u64, r->term, d.hs_term), "seed %" PRIu64 ": hard state went back", seed);
    cr_assert(le(u64, r->term, hs));
    cr_assert(eq(u64, r->vote, r->term % 5 + 1), "torn hard state");
    st_start(&t);
    st_check_log(&t, 1, r->last_index, term_model, &phase1, 90);
    cr_assert(eq(u64, fs.power_cuts, 1));
    st_cleanup(&t);
}

Test(power, a_power_cut_never_loses_a_durable_entry)
{
    YGGR_REQUIRE_IO();
    for (uint64_t seed = 0; seed < 24; seed++) {
        power_cut_round(seed, seed % 3 == 2 ? STORAGE_SYNC_DSYNC : STORAGE_SYNC_FDATASYNC);
    }
}

static void truncation_cut_round(uint64_t seed)
{
    struct st t;
    st_init(&t, "powertrunc", 16u << 10);
    t.opt.prep_chunk_bytes = 8u << 10;
    st_open(&t, true);
    st_append(&t, 0, 1, 250, 1, 90);
    uint64_t cut = 90 + seed * 13 % 140;
    struct drv d = {.t = &t, .durable = {250, 1}};
    fault_io_arm(t.fault, FAULT_POWER_CUT, 1 + seed % 9, 0, NULL);
    uint64_t hs = 0;
    drv_append(&d, cut, cut, 5, 2, 90);
    run_until_cut(&d, cut + 5, &hs);
    st_close(&t);
    st_open(&t, false);
    uint64_t last = t.state.recovered.last_index;
    cr_assert(ge(u64, last, cut - 1), "seed %" PRIu64 ": lost entries below the cut", seed);
    bool new_log = d.durable.term == 2 || last < 250 || last > 250;
    /* Either the old log (possibly partly zeroed above the cut: a requested truncation), or
     * the old log below the cut plus new entries: never a mix above the cut. */
    struct yggr_storage_done rd;
    if (last >= cut) {
        cr_assert(eq(int, storage_sync_read(t.s, cut, 1, 0, &rd), 0));
        uint64_t term = rd.entries[0].term;
        t.ops->release(t.s, &rd);
        uint64_t model_cut = term == 1 ? UINT64_MAX : cut - 1;
        st_check_log(&t, 1, last, term_model, &model_cut, 90);
        if (d.durable.term == 2) {
            cr_assert(eq(u64, term, 2));
            cr_assert(ge(u64, last, d.durable.index));
        }
    } else {
        uint64_t all1 = UINT64_MAX;
        st_check_log(&t, 1, last, term_model, &all1, 90);
    }
    (void)new_log;
    st_cleanup(&t);
}

Test(power, a_power_cut_during_a_truncation_keeps_one_consistent_log)
{
    YGGR_REQUIRE_IO();
    for (uint64_t seed = 0; seed < 12; seed++) {
        truncation_cut_round(seed);
    }
}

static void install_cut_round(uint64_t seed)
{
    struct st t;
    st_init(&t, "powersnap", 16u << 10);
    st_open(&t, true);
    st_append(&t, 0, 1, 280, 1, 90);
    st_append(&t, 0, 281, 20, 2, 90);
    struct drv d = {.t = &t};
    fault_io_arm(t.fault, FAULT_POWER_CUT, 1 + seed % 7, 0, NULL);
    struct yggr_snapshot_meta meta = {.last = {290, 3}, .size = 30000};
    meta.config.voter_count = 1;
    meta.config.voters[0] = 1;
    static uint8_t data[30000];
    memset(data, 0x5A, sizeof(data));
    bool installed = false;
    for (uint64_t off = 0; off < sizeof(data) && !d.failed; off += 10000) {
        struct yggr_storage_req req = {.type = YGGR_STORAGE_SNAP_CHUNK};
        req.as.snap_chunk.meta = meta;
        req.as.snap_chunk.offset = off;
        req.as.snap_chunk.data = data + off;
        req.as.snap_chunk.len = 10000;
        req.as.snap_chunk.done = off + 10000 == sizeof(data);
        if (!drv_submit(&d, &req)) {
            break;
        }
        t.ops->flush(t.s);
    }
    struct yggr_storage_done done;
    while (!d.failed && !installed && storage_sync_wait(t.s, &done, 5000)) {
        installed = done.type == YGGR_STORAGE_SNAP_INSTALLED;
        drv_take(&d, &done);
    }
    st_close(&t);
    st_open(&t, false);
    const struct yggr_recovered *r = &t.state.recovered;
    if (r->has_snapshot) { /* committed: the old tail 291..300 (term 2) must be gone */
        cr_assert(eq(u64, r->snapshot.last.index, 290));
        cr_assert(eq(u64, r->first_index, 291), "seed %" PRIu64, seed);
        cr_assert(eq(u64, r->last_index, 290), "seed %" PRIu64 ": stale tail resurrected", seed);
    } else { /* not committed: the whole old log */
        cr_assert(not(installed), "seed %" PRIu64 ": SNAP_INSTALLED but no snapshot", seed);
        cr_assert(eq(u64, r->last_index, 300));
        uint64_t split = 280;
        st_check_log(&t, 1, 300, term_model, &split, 90);
    }
    st_cleanup(&t);
}

Test(power, a_power_cut_during_a_mismatched_install_never_resurrects_the_tail)
{
    YGGR_REQUIRE_IO();
    for (uint64_t seed = 0; seed < 10; seed++) {
        install_cut_round(seed);
    }
}
