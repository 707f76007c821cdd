/* SPDX-License-Identifier: MIT */
/* Engine snapshots: local compaction, hints, InstallSnapshot both ways (REFERENCE 6.1). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

static void taken(struct h_node *n, uint64_t index, uint64_t term, uint64_t size)
{
    struct yggr_event ev = {.type = YGGR_EVENT_SNAPSHOT_TAKEN};
    ev.as.snapshot_taken.last.index = index;
    ev.as.snapshot_taken.last.term = term;
    ev.as.snapshot_taken.size = size;
    h_step(n, &ev);
}

static struct yggr_engine_config snap_config(void)
{
    struct yggr_engine_config c = h_config(1);
    c.snapshot_chunk_bytes = 3;
    c.snapshot_chunks_inflight = 4;
    return c;
}

/* Log index of the i-th entry after the fixture's bootstrap entries (term 0, 1..H_BOOT). */
#define X(i) (H_BOOT + (i))

/* Leader 1 of {1,2,3} with entries 1..X(6) committed and applied (the no-op at X(1)). */
static void leader_with_log(struct h_node *n, const struct yggr_engine_config *c)
{
    static const uint64_t ids[3] = {1, 2, 3};
    h_init(n, 1, ids, 3, c);
    h_ticks(n, 10);
    h_hs_persisted(n);
    struct yggr_msg g = h_vote_resp(2, 1, 1, true);
    h_recv(n, &g);
    h_propose(n, 5);
    h_persist_all(n);
    struct yggr_msg ok = h_append_ok(3, 1, 1, X(6), n->e->round);
    h_recv(n, &ok);
    cr_assert(eq(u64, n->act.commit_index, X(6)));
}

/* ---------------------------------------------------------------- local snapshots */

Test(snapshot, taking_a_snapshot_compacts_and_keeps_the_floor_term)
{
    struct yggr_engine_config c = snap_config();
    struct h_node n;
    leader_with_log(&n, &c);
    taken(&n, X(6), 1, 7);
    cr_assert(h_has(&n, YGGR_ACT_COMPACT));
    cr_assert(eq(u64, n.act.compact_below, X(7)));
    cr_assert(eq(u64, n.e->log.first, X(7)));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, X(6)), 1));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, X(5)), 0), "compacted");
    cr_assert(eq(u64, h_metrics(&n).log_len, 0));
    cr_assert(eq(u64, h_metrics(&n).snapshots_taken, 1));
    h_fini(&n);
}

Test(snapshot, trailing_entries_stay_below_the_snapshot)
{
    struct yggr_engine_config c = snap_config();
    c.snapshot_trailing_entries = 2;
    struct h_node n;
    leader_with_log(&n, &c);
    taken(&n, X(6), 1, 7);
    cr_assert(eq(u64, n.act.compact_below, X(5)));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, X(5)), 1));
    h_fini(&n);
}

Test(snapshot, stale_unapplied_and_unknown_snapshots_are_ignored)
{
    struct yggr_engine_config c = snap_config();
    struct h_node n;
    leader_with_log(&n, &c);
    h_propose(&n, 1);
    taken(&n, X(7), 1, 7);
    cr_assert(not(h_has(&n, YGGR_ACT_COMPACT)), "past commit");
    taken(&n, X(4), 9, 7);
    cr_assert(not(h_has(&n, YGGR_ACT_COMPACT)), "wrong term");
    taken(&n, X(4), 1, 7);
    cr_assert(h_has(&n, YGGR_ACT_COMPACT));
    taken(&n, X(3), 1, 7);
    cr_assert(not(h_has(&n, YGGR_ACT_COMPACT)), "at or below the floor");
    h_fini(&n);
}

Test(snapshot, the_snapshot_config_is_the_full_config_at_its_index)
{
    struct yggr_engine_config c = snap_config();
    struct h_node n;
    leader_with_log(&n, &c);
    taken(&n, X(6), 1, 7);
    cr_assert(eq(u32, n.e->snap.config.voter_count, 3), "self included (8.1 #1)");
    cr_assert(yggr_membership_is_voter(&n.e->snap.config, 1));
    h_fini(&n);
}

/* ---------------------------------------------------------------- hints */

Test(snapshot, a_hint_fires_per_threshold_band_and_refires_when_ignored)
{
    struct yggr_engine_config c = h_config(1);
    c.snapshot_threshold_entries = 4;
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    h_persist_all(&n);
    h_propose(&n, 1);
    h_persist_all(&n);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_HINT)), "bootstrap + no-op + 1 = 3 < 4");
    h_propose(&n, 1);
    h_persist_all(&n);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_HINT));
    cr_assert(eq(u64, n.act.snapshot_hint, 4));
    h_propose(&n, 3);
    h_persist_all(&n);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_HINT)));
    h_propose(&n, 1);
    h_persist_all(&n);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_HINT), "ignored: fires again a band later");
    cr_assert(eq(u64, n.act.snapshot_hint, 8));
    taken(&n, 8, 1, 10);
    h_propose(&n, 3);
    h_persist_all(&n);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_HINT)), "re-armed from the new floor");
    h_fini(&n);
}

Test(snapshot, the_max_log_guard_refires_while_above_the_limit)
{
    struct yggr_engine_config c = h_config(1);
    c.max_log_entries = 3;
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, &c);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    h_propose(&n, 3);
    h_persist_all(&n);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_HINT));
    h_tick(&n);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_HINT)), "not every step");
    h_ticks(&n, 9);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_HINT), "again after election_timeout_min ticks");
    taken(&n, 4, 1, 1);
    h_ticks(&n, 20);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_HINT)), "below the limit again");
    h_fini(&n);
}

/* ---------------------------------------------------------------- leader side */

Test(snapshot, a_peer_needing_compacted_entries_gets_streamed_chunks)
{
    struct yggr_engine_config c = snap_config();
    struct h_node n;
    leader_with_log(&n, &c);
    taken(&n, X(6), 1, 7);
    struct yggr_msg cf = h_append_conflict(2, 1, 1, X(2), 0);
    h_recv(&n, &cf);
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_SNAPSHOT));
    cr_assert(eq(u32, h_count(&n, YGGR_MSG_SNAPSHOT_REQUEST), 3), "streamed back to back");
    uint64_t offs[3] = {0, 3, 6};
    uint32_t lens[3] = {3, 3, 1};
    for (uint32_t i = 0; i < 3; i++) {
        const struct yggr_msg *m = &n.act.send.msgs[i];
        cr_assert(eq(u64, m->as.snapshot.offset, offs[i]));
        cr_assert(eq(u32, m->as.snapshot.len, lens[i]));
        cr_assert(eq(int, m->as.snapshot.done, i == 2));
        cr_assert_null(m->as.snapshot.data);
        cr_assert(eq(u64, m->as.snapshot.last.index, X(6)));
        cr_assert(eq(u32, m->as.snapshot.config->voter_count, 3));
    }
    struct yggr_msg done = {.type = YGGR_MSG_SNAPSHOT_RESPONSE, .from = 2, .to = 1, .term = 1};
    done.as.snapshot_response.last = (struct yggr_log_id){X(6), 1};
    done.as.snapshot_response.next_offset = 7;
    done.as.snapshot_response.done = true;
    h_recv(&n, &done);
    cr_assert(eq(u64, h_progress(&n, 2).match_index, X(6)));
    cr_assert(eq(u64, h_progress(&n, 2).next_index, X(7)));
    cr_assert(eq(int, h_progress(&n, 2).state, YGGR_PROGRESS_REPLICATE));
    h_fini(&n);
}

Test(snapshot, a_follower_asking_for_offset_zero_restarts_the_transfer)
{
    struct yggr_engine_config c = snap_config();
    c.snapshot_chunks_inflight = 1;
    struct h_node n;
    leader_with_log(&n, &c);
    taken(&n, X(6), 1, 7);
    struct yggr_msg cf = h_append_conflict(2, 1, 1, X(2), 0);
    h_recv(&n, &cf);
    struct yggr_msg ack = {.type = YGGR_MSG_SNAPSHOT_RESPONSE, .from = 2, .to = 1, .term = 1};
    ack.as.snapshot_response.last = (struct yggr_log_id){X(6), 1};
    ack.as.snapshot_response.next_offset = 3;
    h_recv(&n, &ack);
    cr_assert(eq(u64, h_find(&n, YGGR_MSG_SNAPSHOT_REQUEST, 2)->as.snapshot.offset, 3));
    ack.as.snapshot_response.next_offset = 0; /* it lost its partial transfer */
    h_recv(&n, &ack);
    cr_assert(eq(u64, h_find(&n, YGGR_MSG_SNAPSHOT_REQUEST, 2)->as.snapshot.offset, 0));
    h_fini(&n);
}

Test(snapshot, a_higher_term_snapshot_response_demotes_the_leader)
{
    struct yggr_engine_config c = snap_config();
    struct h_node n;
    leader_with_log(&n, &c);
    struct yggr_msg r = {.type = YGGR_MSG_SNAPSHOT_RESPONSE, .from = 2, .to = 1, .term = 4};
    r.as.snapshot_response.last = (struct yggr_log_id){X(6), 1};
    h_recv(&n, &r);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    h_fini(&n);
}

Test(snapshot, the_transfer_restarts_with_a_newer_snapshot)
{
    struct yggr_engine_config c = snap_config();
    c.snapshot_chunks_inflight = 1;
    struct h_node n;
    leader_with_log(&n, &c);
    taken(&n, X(4), 1, 7);
    struct yggr_msg cf = h_append_conflict(2, 1, 1, X(2), 0);
    h_recv(&n, &cf);
    taken(&n, X(6), 1, 9);
    const struct yggr_msg *m = h_find(&n, YGGR_MSG_SNAPSHOT_REQUEST, 2);
    cr_assert_not_null(m);
    cr_assert(eq(u64, m->as.snapshot.last.index, X(6)));
    cr_assert(eq(u64, m->as.snapshot.offset, 0));
    h_fini(&n);
}

/* ---------------------------------------------------------------- follower side */

static struct yggr_msg chunk(uint64_t term, uint64_t index, uint64_t offset, uint32_t len,
                             bool done)
{
    static const uint8_t bytes[16] = "0123456789abcdef";
    static struct yggr_membership cfg;
    memset(&cfg, 0, sizeof(cfg));
    for (uint64_t id = 1; id <= 3; id++) {
        yggr_membership_apply(&cfg, YGGR_CHANGE_ADD_VOTER, id);
    }
    struct yggr_msg m = {.type = YGGR_MSG_SNAPSHOT_REQUEST, .from = 2, .to = 1, .term = term};
    m.as.snapshot.leader_id = 2;
    m.as.snapshot.last = (struct yggr_log_id){index, 1};
    m.as.snapshot.offset = offset;
    m.as.snapshot.len = len;
    m.as.snapshot.data = bytes + offset;
    m.as.snapshot.done = done;
    m.as.snapshot.config = &cfg;
    m.as.snapshot.leader_commit = index;
    return m;
}

static const struct yggr_msg *snap_reply(const struct h_node *n)
{
    return h_find(n, YGGR_MSG_SNAPSHOT_RESPONSE, 2);
}

Test(snapshot, a_follower_writes_chunks_and_installs_once_durable)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg c0 = chunk(1, 10, 0, 3, false);
    h_recv(&n, &c0);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert(eq(u64, n.act.snapshot_chunk.offset, 0));
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 3));
    struct yggr_msg c1 = chunk(1, 10, 3, 2, true);
    h_recv(&n, &c1);
    cr_assert(n.act.snapshot_chunk.done);
    cr_assert(eq(u64, n.act.snapshot_chunk.meta.size, 5));
    cr_assert_null(snap_reply(&n), "done only once durable");
    struct yggr_event p = {.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
    p.as.snapshot_persisted = (struct yggr_log_id){10, 1};
    h_step(&n, &p);
    cr_assert(h_has(&n, YGGR_ACT_APPLY_SNAPSHOT));
    cr_assert(eq(u64, n.act.apply_snapshot.last.index, 10));
    cr_assert(eq(u64, n.act.commit_index, 10));
    cr_assert(eq(u64, n.act.applied_index, 10));
    cr_assert(snap_reply(&n)->as.snapshot_response.done);
    cr_assert(eq(u64, h_metrics(&n).snapshots_installed, 1));
    struct yggr_msg hb = h_append(2, 1, 1, 10, 1, h_entries(11, 1, 1), 1, 11);
    h_recv(&n, &hb);
    cr_assert(eq(u64, n.act.last_index, 11), "replication continues after the install");
    h_fini(&n);
}

Test(snapshot, a_matching_tail_survives_the_install)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg ae = h_append(2, 1, 1, X(0), 0, h_entries(X(1), 1, 12 - X(0)), 12 - X(0), 0);
    h_recv(&n, &ae);
    h_persist_all(&n);
    struct yggr_msg c0 = chunk(1, 10, 0, 4, true);
    h_recv(&n, &c0);
    struct yggr_event p = {.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
    p.as.snapshot_persisted = (struct yggr_log_id){10, 1};
    h_step(&n, &p);
    cr_assert(eq(u64, n.act.last_index, 12));
    cr_assert(eq(u64, yggr_engine_term_at(n.e, 12), 1));
    h_fini(&n);
}

Test(snapshot, gaps_ask_to_resume_and_unknown_transfers_to_restart)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg mid = chunk(1, 10, 3, 3, false);
    h_recv(&n, &mid);
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 0));
    struct yggr_msg c0 = chunk(1, 10, 0, 3, false);
    h_recv(&n, &c0);
    struct yggr_msg far = chunk(1, 10, 6, 3, false);
    h_recv(&n, &far);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK)));
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 3));
    h_fini(&n);
}

Test(snapshot, stale_terms_are_rejected_and_old_snapshots_answered_done)
{
    struct h_node n;
    h_make_follower(&n, 3);
    struct yggr_msg old = chunk(2, 10, 0, 3, false);
    h_recv(&n, &old);
    cr_assert(eq(u64, snap_reply(&n)->term, 3));
    cr_assert(not(snap_reply(&n)->as.snapshot_response.done));
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK)));
    struct yggr_msg c = chunk(3, 10, 0, 3, true);
    h_recv(&n, &c);
    struct yggr_event p = {.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
    p.as.snapshot_persisted = (struct yggr_log_id){10, 1};
    h_step(&n, &p);
    struct yggr_msg below = chunk(3, 8, 0, 3, false);
    h_recv(&n, &below);
    cr_assert(snap_reply(&n)->as.snapshot_response.done);
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.last.index, 10));
    h_fini(&n);
}

Test(snapshot, a_higher_term_chunk_demotes_a_candidate_then_is_accepted)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg c = chunk(4, 10, 0, 3, false);
    h_recv(&n, &c);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert_null(snap_reply(&n), "the new term is not durable yet");
    h_hs_persisted(&n);
    cr_assert_not_null(snap_reply(&n));
    h_fini(&n);
}

/* Storage takes contiguous chunks only (storage/snapshot.c asserts offset == bytes held).
 * A chunk overlapping what the follower holds (a rewound stream after a host's short
 * read) went to storage whole; it is trimmed to the bytes past what is held. */
Test(snapshot, an_overlapping_chunk_is_trimmed_to_the_bytes_not_yet_held)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg c0 = chunk(1, 10, 0, 5, false); /* a short read: 5 of 6 bytes */
    h_recv(&n, &c0);
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 5));
    struct yggr_msg c1 = chunk(1, 10, 3, 6, false); /* [3, 9) overlaps [3, 5) */
    h_recv(&n, &c1);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert(eq(u64, n.act.snapshot_chunk.offset, 5));
    cr_assert(eq(u32, n.act.snapshot_chunk.len, 4));
    cr_assert(eq(ptr, (void *)n.act.snapshot_chunk.data, (void *)(c1.as.snapshot.data + 2)));
    cr_assert(eq(u64, n.act.snapshot_chunk.meta.size, 0), "not the final chunk");
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 9));
    struct yggr_msg below = chunk(1, 10, 3, 6, false); /* entirely held: a duplicate */
    h_recv(&n, &below);
    cr_assert(not(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK)));
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 9));
    struct yggr_msg last = chunk(1, 10, 6, 6, true); /* [6, 12) done: [9, 12) is new */
    h_recv(&n, &last);
    cr_assert(n.act.snapshot_chunk.done);
    cr_assert(eq(u64, n.act.snapshot_chunk.offset, 9));
    cr_assert(eq(u32, n.act.snapshot_chunk.len, 3));
    cr_assert(eq(u64, n.act.snapshot_chunk.meta.size, 12));
    struct yggr_event p = {.type = YGGR_EVENT_SNAPSHOT_PERSISTED};
    p.as.snapshot_persisted = (struct yggr_log_id){10, 1};
    h_step(&n, &p);
    cr_assert(snap_reply(&n)->as.snapshot_response.done);
    cr_assert(eq(u64, snap_reply(&n)->as.snapshot_response.next_offset, 12));
    h_fini(&n);
}

/* A done chunk that brings no new bytes (the follower holds them all from a chunk that
 * was not final) still ends the snapshot; it used to be dropped as a duplicate. */
Test(snapshot, a_done_chunk_ending_at_the_bytes_held_ends_the_snapshot)
{
    struct h_node n;
    h_make_follower(&n, 1);
    struct yggr_msg c0 = chunk(1, 10, 0, 6, false);
    h_recv(&n, &c0);
    struct yggr_msg c1 = chunk(1, 10, 3, 3, true); /* [3, 6) done: nothing new but the end */
    h_recv(&n, &c1);
    cr_assert(h_has(&n, YGGR_ACT_SNAPSHOT_CHUNK));
    cr_assert(n.act.snapshot_chunk.done);
    cr_assert(eq(u64, n.act.snapshot_chunk.offset, 6));
    cr_assert(eq(u32, n.act.snapshot_chunk.len, 0));
    cr_assert(eq(u64, n.act.snapshot_chunk.meta.size, 6));
    h_fini(&n);
}
