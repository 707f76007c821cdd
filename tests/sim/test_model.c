/* SPDX-License-Identifier: MIT */
/* Simulator self-tests: the invariant checker on synthetic good and bad histories, the disk
 * model (FIFO durability, crash, torn appends, snapshot install), the state machine and the
 * trace. No engine involved: if these pass, a silent simulator run means something. */

/*
 * Design notes
 * - Every detector has a bad history that must fire and a good one that must stay
 *   silent; histories are built with the same check_* calls the simulator makes.
 * - Entries use borrowed bytes (buf == NULL): the disk model must copy them.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "sim_internal.h"

static struct yggr_entry cmd(uint64_t index, uint64_t term, const char *text)
{
    return (struct yggr_entry){.index = index, .term = term, .type = YGGR_ENTRY_COMMAND,
                               .data = (const uint8_t *)text, .len = (uint32_t)strlen(text)};
}

static uint64_t digest_of(uint64_t index, uint64_t term, const char *text)
{
    struct yggr_entry e = cmd(index, term, text);
    return rng_entry_digest(&e);
}

/* ---- election safety ---------------------------------------------------------------- */

Test(checker, detects_two_leaders_in_one_term)
{
    struct check c;
    check_init(&c);
    cr_assert(check_leader(&c, 3, 1));
    cr_assert(check_leader(&c, 3, 1), "the same leader seen twice is fine");
    cr_assert(not(check_leader(&c, 3, 2)));
    cr_assert(c.failed);
    cr_assert(strstr(c.why, "two leaders in term 3") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, silent_for_one_leader_per_term)
{
    struct check c;
    check_init(&c);
    for (uint64_t t = 1; t < 500; t++) {
        cr_assert(check_leader(&c, t, 1 + t % 5));
    }
    cr_assert(eq(u64, c.elections, 499));
    cr_assert(not(c.failed));
    check_deinit(&c);
}

/* ---- log matching ------------------------------------------------------------------- */

Test(checker, log_matching_detects_different_entries_with_one_index_and_term)
{
    struct check c;
    check_init(&c);
    struct yggr_entry a = cmd(4, 2, "x=1"), b = cmd(4, 2, "x=2");
    cr_assert(check_log_entry(&c, 1, &a, 2));
    cr_assert(not(check_log_entry(&c, 2, &b, 2)));
    cr_assert(strstr(c.why, "log matching") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, log_matching_detects_a_different_predecessor)
{
    struct check c;
    check_init(&c);
    struct yggr_entry e = cmd(7, 5, "y");
    cr_assert(check_log_entry(&c, 1, &e, 4));
    cr_assert(check_log_entry(&c, 2, &e, UINT64_MAX), "unknown predecessor (floor) is fine");
    cr_assert(not(check_log_entry(&c, 3, &e, 3)));
    cr_assert(strstr(c.why, "after term 3") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, log_matching_silent_for_divergent_suffixes_of_different_terms)
{
    struct check c;
    check_init(&c);
    /* Figure 7-like: same prefix, then different terms at the same indexes. */
    for (uint64_t i = 1; i <= 5; i++) {
        struct yggr_entry e = cmd(i, 1, "p");
        cr_assert(check_log_entry(&c, 1, &e, i == 1 ? 0 : 1));
        cr_assert(check_log_entry(&c, 2, &e, i == 1 ? 0 : 1));
    }
    struct yggr_entry a6 = cmd(6, 2, "a"), b6 = cmd(6, 3, "b"), b7 = cmd(7, 3, "c");
    cr_assert(check_log_entry(&c, 1, &a6, 1));
    cr_assert(check_log_entry(&c, 2, &b6, 1));
    cr_assert(check_log_entry(&c, 2, &b7, 3));
    cr_assert(not(c.failed));
    check_deinit(&c);
}

/* ---- state machine safety ----------------------------------------------------------- */

Test(checker, detects_divergent_applies)
{
    struct check c;
    check_init(&c);
    cr_assert(check_commit(&c, 1, 1, 1, digest_of(1, 1, "a"), 1));
    cr_assert(check_apply(&c, 1, 1, 1, digest_of(1, 1, "a"), 111));
    cr_assert(not(check_apply(&c, 2, 1, 1, digest_of(1, 1, "b"), 222)));
    cr_assert(strstr(c.why, "state machine safety") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, detects_a_second_entry_committed_at_an_index)
{
    struct check c;
    check_init(&c);
    cr_assert(check_commit(&c, 1, 5, 2, digest_of(5, 2, "a"), 2));
    cr_assert(not(check_commit(&c, 3, 5, 3, digest_of(5, 3, "b"), 3)));
    check_deinit(&c);
}

Test(checker, detects_different_states_at_one_applied_index)
{
    struct check c;
    check_init(&c);
    cr_assert(check_commit(&c, 1, 1, 1, digest_of(1, 1, "a"), 1));
    cr_assert(check_apply(&c, 1, 1, 1, digest_of(1, 1, "a"), 42));
    cr_assert(not(check_restore(&c, 2, 1, 43)), "a snapshot with another state at 1");
    check_deinit(&c);
}

Test(checker, detects_an_apply_of_an_uncommitted_index)
{
    struct check c;
    check_init(&c);
    cr_assert(not(check_apply(&c, 1, 9, 1, digest_of(9, 1, "a"), 1)));
    cr_assert(strstr(c.why, "before anyone committed") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, silent_for_matching_and_disjoint_applies)
{
    struct check c;
    check_init(&c);
    for (uint64_t i = 1; i <= 50; i++) {
        cr_assert(check_commit(&c, 1 + i % 3, i, 1 + i / 10, digest_of(i, 1 + i / 10, "v"),
                               1 + i / 10));
    }
    for (uint64_t node = 1; node <= 3; node++) {
        for (uint64_t i = 1; i <= 50; i += node) { /* disjoint and overlapping subsets */
            cr_assert(check_apply(&c, node, i, 1 + i / 10, digest_of(i, 1 + i / 10, "v"),
                                  i * 7));
        }
    }
    cr_assert(not(c.failed), "%s", c.why);
    check_deinit(&c);
}

/* ---- leader completeness and acknowledged writes ------------------------------------ */

static void log_of(struct slog *log, uint64_t first, uint64_t last, uint64_t term)
{
    slog_init(log, first);
    struct pop op = {.kind = POP_APPEND};
    struct yggr_entry es[64];
    for (uint64_t i = first; i <= last; i++) {
        es[i - first] = cmd(i, term, "v");
    }
    op.entries = es;
    op.count = (uint32_t)(last + 1 - first);
    struct sview v = {.log = *log};
    store_apply(&v, &op);
    *log = v.log;
}

Test(checker, detects_a_lost_acknowledged_write_in_a_new_leader)
{
    struct check c;
    check_init(&c);
    for (uint64_t i = 1; i <= 4; i++) {
        cr_assert(check_commit(&c, 1, i, 1, digest_of(i, 1, "v"), 1));
    }
    cr_assert(check_ack(&c, 1, 4, 1, digest_of(4, 1, "v"), 10));
    struct slog log;
    log_of(&log, 1, 3, 1); /* the new leader lacks index 4 */
    cr_assert(not(check_leader_log(&c, 2, 2, &log, NULL)));
    cr_assert(strstr(c.why, "acknowledged write is lost") != NULL, "%s", c.why);
    slog_deinit(&log);
    check_deinit(&c);
}

Test(checker, detects_an_acknowledged_write_replaced_by_another_commit)
{
    struct check c;
    check_init(&c);
    cr_assert(check_commit(&c, 1, 1, 1, digest_of(1, 1, "v"), 1));
    cr_assert(check_ack(&c, 1, 1, 1, digest_of(1, 1, "v"), 5));
    cr_assert(not(check_commit(&c, 2, 1, 2, digest_of(1, 2, "w"), 2)));
    cr_assert(strstr(c.why, "acknowledged write is lost") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, leader_completeness_exempts_stale_leaders_and_trusts_snapshots)
{
    struct check c;
    check_init(&c);
    for (uint64_t i = 1; i <= 6; i++) {
        cr_assert(check_commit(&c, 1, i, 1, digest_of(i, 1, "v"), 3));
    }
    struct slog short_log, tail;
    log_of(&short_log, 1, 2, 1);
    cr_assert(check_leader_log(&c, 2, 3, &short_log, NULL), "term 3 <= bound 3: stale leader");
    log_of(&tail, 5, 6, 1);
    struct ssnap snap = {.present = true};
    snap.meta.last = (struct yggr_log_id){4, 1};
    cr_assert(check_leader_log(&c, 3, 4, &tail, &snap), "entries 1..4 inside the snapshot");
    snap.meta.last.term = 2;
    struct slog tail5;
    log_of(&tail5, 5, 6, 1);
    cr_assert(not(check_leader_log(&c, 3, 4, &tail5, &snap)), "floor term disagrees");
    slog_deinit(&short_log);
    slog_deinit(&tail);
    slog_deinit(&tail5);
    check_deinit(&c);
}

/* ---- linearizable reads ------------------------------------------------------------- */

Test(checker, detects_a_stale_read_index)
{
    struct check c;
    check_init(&c);
    cr_assert(check_read_ready(&c, 1, 7, 10, 10));
    cr_assert(check_read_ready(&c, 1, 8, 10, 12));
    cr_assert(not(check_read_ready(&c, 2, 9, 10, 9)));
    cr_assert(strstr(c.why, "stale read") != NULL, "%s", c.why);
    check_deinit(&c);
}

Test(checker, detects_a_read_served_from_a_stale_or_foreign_state)
{
    struct check c;
    check_init(&c);
    cr_assert(check_commit(&c, 1, 3, 1, digest_of(3, 1, "v"), 1));
    cr_assert(check_apply(&c, 1, 3, 1, digest_of(3, 1, "v"), 99));
    cr_assert(check_read_serve(&c, 1, 1, 3, 3, 99));
    cr_assert(not(check_read_serve(&c, 2, 2, 3, 3, 98)), "state differs");
    struct check d;
    check_init(&d);
    cr_assert(not(check_read_serve(&d, 2, 3, 5, 4, 0)), "applied below the bound");
    check_deinit(&d);
    check_deinit(&c);
}

/* ---- the disk model ----------------------------------------------------------------- */

static void submit_append(struct store *s, uint64_t from, uint64_t first, uint32_t n,
                          uint64_t term)
{
    struct yggr_entry es[16];
    for (uint32_t i = 0; i < n; i++) {
        es[i] = cmd(first + i, term, "e");
    }
    struct pop op = {.kind = POP_APPEND, .truncate_from = from, .entries = es, .count = n};
    cr_assert_null(store_submit(s, &op));
}

Test(disk, writes_become_durable_in_fifo_order_only_when_flushed)
{
    struct store s;
    store_init(&s);
    struct pop hard = {.kind = POP_HARD, .term = 2, .vote = 1};
    cr_assert_null(store_submit(&s, &hard));
    submit_append(&s, 0, 1, 3, 2);
    cr_assert(eq(u64, slog_last(&s.written.log), 3));
    cr_assert(eq(u64, slog_last(&s.durable.log), 0));
    store_flush(&s, 1, NULL, NULL);
    cr_assert(eq(u64, s.durable.term, 2));
    cr_assert(eq(u64, slog_last(&s.durable.log), 0), "the append is still pending");
    store_flush(&s, 1, NULL, NULL);
    cr_assert(eq(u64, slog_last(&s.durable.log), 3));
    store_deinit(&s);
}

Test(disk, crash_keeps_a_torn_prefix_of_the_next_append_and_loses_the_rest)
{
    struct store s;
    store_init(&s);
    submit_append(&s, 0, 1, 2, 1);
    store_flush(&s, 1, NULL, NULL);
    submit_append(&s, 0, 3, 5, 1);
    submit_append(&s, 0, 8, 1, 1);
    uint32_t torn = store_crash(&s, 0, 2);
    cr_assert(eq(u32, torn, 3), "torn, 2 entries survived");
    cr_assert(eq(u64, slog_last(&s.durable.log), 4));
    cr_assert(eq(u64, slog_last(&s.written.log), 4), "written view = durable after a crash");
    cr_assert(eq(u32, s.op_count, 0));
    store_deinit(&s);
}

Test(disk, rejects_a_non_contiguous_append)
{
    struct store s;
    store_init(&s);
    struct yggr_entry e = cmd(5, 1, "gap");
    struct pop op = {.kind = POP_APPEND, .entries = &e, .count = 1};
    cr_assert_not_null(store_submit(&s, &op));
    store_deinit(&s);
}

Test(disk, installed_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_log)
{
    struct store s;
    store_init(&s);
    submit_append(&s, 0, 1, 6, 2);
    struct pop snap = {.kind = POP_SNAPSHOT};
    snap.snap.present = true;
    snap.snap.meta.last = (struct yggr_log_id){4, 2};
    cr_assert_null(store_submit(&s, &snap));
    cr_assert(eq(u64, s.written.log.first, 5));
    cr_assert(eq(u64, slog_last(&s.written.log), 6), "matching (4,2): entries above kept");
    snap.snap.meta.last = (struct yggr_log_id){5, 3};
    cr_assert_null(store_submit(&s, &snap));
    cr_assert(eq(u32, s.written.log.count, 0), "conflicting (5,3): whole log dropped");
    cr_assert(eq(u64, s.written.log.first, 6));
    store_deinit(&s);
}

Test(disk, compaction_above_the_snapshot_is_a_contract_violation)
{
    struct store s;
    store_init(&s);
    submit_append(&s, 0, 1, 6, 1);
    struct pop compact = {.kind = POP_COMPACT, .below = 3};
    cr_assert_not_null(store_submit(&s, &compact), "no snapshot covers 1..2");
    store_deinit(&s);
}

/* ---- state machine and trace -------------------------------------------------------- */

Test(state_machine, snapshot_round_trips_and_detects_corruption)
{
    struct sm a;
    struct yggr_membership m = {.voter_count = 2, .voters = {1, 2}};
    sm_init(&a, &m);
    struct yggr_entry e1 = cmd(1, 1, "hello"), e2 = cmd(2, 1, "world");
    sm_apply(&a, &e1);
    sm_apply(&a, &e2);
    struct yggr_buf *b = sm_serialise(&a, 100);
    struct sm r;
    sm_init(&r, NULL);
    cr_assert(sm_restore(&r, b->data, b->size));
    cr_assert(eq(u64, r.hash, a.hash));
    cr_assert(eq(u64, r.applied, 2));
    cr_assert(yggr_membership_equal(&r.config, &m));
    b->data[b->size / 2] ^= 1;
    cr_assert(not(sm_restore(&r, b->data, b->size)));
    cr_assert(not(sm_restore(&r, b->data, b->size - 1)));
    yggr_buf_release(b);
}

Test(trace, formats_messages_like_a_transcript)
{
    struct trace t;
    trace_init(&t, NULL);
    struct yggr_msg m = {.type = YGGR_MSG_APPEND_REQUEST, .from = 1, .to = 2, .term = 4};
    m.as.append.prev = (struct yggr_log_id){17, 3};
    m.as.append.entry_count = 3;
    m.as.append.leader_commit = 16;
    trace_msg(&t, 1532, TR_RECV, 2, &m, 0);
    char line[256];
    trace_format(&t.ring[0], line, sizeof(line));
    cr_assert(eq(str, line, "t=1532 n2 RECV AE from n1 term=4 prev=(17,3) n=3 commit=16 round=0"));
    uint64_t h1 = t.hash;
    struct trace u;
    trace_init(&u, NULL);
    trace_msg(&u, 1532, TR_RECV, 2, &m, 0);
    cr_assert(eq(u64, u.hash, h1), "same records, same fingerprint");
}
