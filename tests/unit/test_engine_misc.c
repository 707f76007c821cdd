/* SPDX-License-Identifier: MIT */
/* Engine: invariants (property runs), metrics, log, peer_progress, config validation. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <string.h>

#include "engine_harness.h"
#include "engine_internal.h"

/* ---------------------------------------------------------------- invariants */

static const struct yggr_engine_config *cluster_cfg;

static bool snapshots;

static void run_cluster(uint64_t seed, uint32_t nodes, uint32_t drop, bool delay, uint32_t steps,
                        bool crashes)
{
    struct h_cluster_options o = {.nodes = nodes, .seed = seed, .drop_percent = drop,
                                  .random_order = true, .delay_persist = delay,
                                  .cfg = cluster_cfg};
    struct h_cluster *c = h_cluster_new(&o);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint32_t i = 0; i < steps; i++) {
        h_cluster_step(c);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x % 20 == 0) {
            h_cluster_propose(c, 1 + (uint32_t)(x >> 40) % 4);
        }
        if (snapshots && x % 301 == 0) {
            h_cluster_snapshot(c, 1 + (x >> 24) % nodes);
        }
        if (crashes && x % 997 == 0) {
            h_cluster_crash(c, 1 + (x >> 20) % nodes);
        }
    }
    if (!crashes) {
        cr_assert(h_cluster_min_applied(c) > 0, "seed %llu made no progress",
                  (unsigned long long)seed);
    }
    h_cluster_free(c);
}

Test(invariants, cluster_happy_path_elects_and_commits, .timeout = 60)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct h_cluster_options o = {.nodes = 3, .seed = seed, .random_order = false};
        struct h_cluster *c = h_cluster_new(&o);
        for (int i = 0; i < 3000 && h_cluster_leader(c) == 0; i++) {
            h_cluster_step(c);
        }
        cr_assert(h_cluster_leader(c) != 0, "seed %llu: no leader", (unsigned long long)seed);
        for (int round = 0; round < 20; round++) {
            h_cluster_propose(c, 8);
            h_cluster_settle(c);
            for (uint64_t id = 1; id <= 3; id++) {
                h_cluster_tick(c, id);
            }
            h_cluster_settle(c);
        }
        cr_assert(h_cluster_min_applied(c) >= 100, "seed %llu: applied %llu",
                  (unsigned long long)seed, (unsigned long long)h_cluster_min_applied(c));
        h_cluster_free(c);
    }
}

Test(invariants, random_schedules_with_loss_and_reordering_keep_safety, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 300; seed++) {
        run_cluster(seed, 3, 10, false, 4000, false);
    }
}

Test(invariants, delayed_persistence_and_crashes_keep_safety, .timeout = 120)
{
    for (uint64_t seed = 1000; seed <= 1300; seed++) {
        run_cluster(seed, 3, 5, true, 4000, true);
    }
}

Test(invariants, five_nodes_with_loss_keep_safety, .timeout = 120)
{
    for (uint64_t seed = 2000; seed <= 2150; seed++) {
        run_cluster(seed, 5, 15, true, 4000, true);
    }
}

Test(invariants, tiny_caches_and_windows_use_storage_paths_and_stay_safe, .timeout = 120)
{
    struct yggr_engine_config c = h_config(1);
    c.election_timeout_max_ticks = 20;
    c.log_cache_entries = 8;
    c.max_step_entries = 8;
    c.max_append_entries = 3;
    c.max_append_bytes = 16;
    c.max_inflight_msgs = 2;
    c.pre_vote = true;
    c.check_quorum = true;
    cluster_cfg = &c;
    for (uint64_t seed = 3000; seed <= 3150; seed++) {
        run_cluster(seed, 3, 5, true, 5000, true);
    }
    for (uint64_t seed = 3500; seed <= 3550; seed++) {
        run_cluster(seed, 3, 0, false, 5000, false);
    }
    cluster_cfg = NULL;
}

Test(invariants, snapshots_installs_and_crashes_keep_safety, .timeout = 120)
{
    struct yggr_engine_config c = h_config(1);
    c.election_timeout_max_ticks = 20;
    c.log_cache_entries = 16;
    c.max_append_entries = 4;
    c.snapshot_chunk_bytes = 7;
    c.snapshot_chunks_inflight = 2;
    c.pre_vote = true;
    cluster_cfg = &c;
    snapshots = true;
    for (uint64_t seed = 4000; seed <= 4200; seed++) {
        run_cluster(seed, 3, 5, true, 5000, true);
    }
    for (uint64_t seed = 4500; seed <= 4550; seed++) {
        run_cluster(seed, 3, 0, false, 5000, false);
    }
    c.snapshot_trailing_entries = 3;
    for (uint64_t seed = 4600; seed <= 4700; seed++) {
        run_cluster(seed, 5, 10, true, 5000, true);
    }
    snapshots = false;
    cluster_cfg = NULL;
}

Test(invariants, single_engine_random_events_keep_term_and_commit_monotone, .timeout = 60)
{
    for (uint64_t seed = 1; seed <= 60; seed++) {
        struct h_node n;
        h_init3(&n, 1);
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        uint64_t term = 0, commit = 0;
        for (int i = 0; i < 300; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t t = 1 + (x >> 8) % 5;
            uint64_t from = 2 + (x >> 12) % 2;
            struct yggr_msg m;
            switch (x % 9) {
            case 0: h_tick(&n); break;
            case 1: h_propose(&n, 1 + (uint32_t)(x >> 20) % 3); break;
            case 2:
                m = h_vote_req(from, 1, t, (x >> 24) % 4, (x >> 28) % 4);
                h_recv(&n, &m);
                break;
            case 3:
                m = h_vote_resp(from, 1, t, (x >> 24) % 2);
                h_recv(&n, &m);
                break;
            case 4: {
                uint64_t prev = (x >> 24) % 4;
                uint64_t pt = prev == 0 ? 0 : 1 + (x >> 30) % t;
                m = h_append(from, 1, t, prev, pt, h_entries(prev + 1, t, 2), 2, (x >> 34) % 6);
                h_recv(&n, &m);
                break;
            }
            case 5:
                m = h_append_ok(from, 1, t, (x >> 24) % 6, 0);
                h_recv(&n, &m);
                break;
            case 6:
                m = h_append_conflict(from, 1, t, 1 + (x >> 24) % 5, (x >> 28) % 3);
                h_recv(&n, &m);
                break;
            case 7: h_hs_persisted(&n); break;
            default: h_persist_all(&n); break;
            }
            cr_assert(n.act.term >= term);
            cr_assert(n.act.commit_index >= commit);
            cr_assert(n.act.applied_index <= n.act.commit_index);
            term = n.act.term;
            commit = n.act.commit_index;
        }
        h_fini(&n);
    }
}

Test(invariants, single_node_log_terms_are_contiguous_and_non_decreasing)
{
    static const uint64_t ids[1] = {1};
    struct h_node n;
    h_init(&n, 1, ids, 1, NULL);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    for (int i = 0; i < 50; i++) {
        h_propose(&n, 3);
        h_persist_all(&n);
    }
    uint64_t prev = 0;
    cr_assert(eq(u64, yggr_engine_term_at(n.e, 1), 0), "the bootstrap entry");
    for (uint64_t i = 2; i <= n.act.last_index; i++) {
        uint64_t t = yggr_engine_term_at(n.e, i);
        cr_assert(t >= prev && t > 0);
        prev = t;
    }
    cr_assert(eq(u64, n.act.commit_index, n.act.last_index));
    h_fini(&n);
}

/* ---------------------------------------------------------------- metrics */

Test(metrics, a_fresh_engine_has_zero_counters_and_follower_gauges)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_engine_metrics m = h_metrics(&n);
    cr_assert(eq(u64, m.elections_started + m.votes_granted + m.append_entries_sent, 0));
    cr_assert(eq(u64, m.current_term, 0));
    cr_assert(eq(u64, m.role_code, 0));
    h_fini(&n);
}

Test(metrics, counters_follow_their_events)
{
    struct h_node n;
    h_init3(&n, 1);
    struct yggr_msg v = h_vote_req(2, 1, 1, H_BOOT, 0);
    h_recv(&n, &v);
    struct yggr_msg v3 = h_vote_req(3, 1, 1, H_BOOT, 0);
    h_recv(&n, &v3);
    struct yggr_engine_metrics m = h_metrics(&n);
    cr_assert(eq(u64, m.votes_granted, 1));
    cr_assert(eq(u64, m.votes_denied, 1));
    cr_assert(eq(u64, m.higher_term_stepdowns, 1));
    struct yggr_msg stale = h_append(2, 1, 0, 0, 0, NULL, 0, 0);
    h_recv(&n, &stale);
    struct yggr_msg ae = h_append(2, 1, 1, H_BOOT, 0, h_entries(H_BOOT + 1, 1, 2), 2, H_BOOT + 2);
    h_recv(&n, &ae);
    m = h_metrics(&n);
    cr_assert(eq(u64, m.append_entries_received, 2));
    cr_assert(eq(u64, m.append_entries_rejected, 1));
    cr_assert(eq(u64, m.entries_appended, 2));
    cr_assert(eq(u64, m.entries_committed, H_BOOT + 2), "the bootstrap entries count");
    cr_assert(eq(u64, m.entries_applied, H_BOOT + 2));
    cr_assert(eq(u64, m.commit_index, H_BOOT + 2));
    h_read(&n, 9);
    cr_assert(eq(u64, h_metrics(&n).reads_failed, 1));
    h_fini(&n);
}

Test(metrics, same_term_stepdowns_are_not_higher_term_stepdowns)
{
    struct h_node n;
    h_init3(&n, 1);
    h_ticks(&n, 10);
    h_hs_persisted(&n);
    struct yggr_msg hb = h_append(2, 1, 1, 0, 0, NULL, 0, 0);
    h_recv(&n, &hb);
    cr_assert(eq(int, n.act.role, YGGR_ROLE_FOLLOWER));
    cr_assert(eq(u64, h_metrics(&n).higher_term_stepdowns, 0));
    h_fini(&n);
}

/* ---------------------------------------------------------------- log */

static void log_fill(struct log *l, uint64_t from, uint64_t to, uint64_t term)
{
    for (uint64_t i = from; i <= to; i++) {
        struct yggr_entry e = {.index = i, .term = term, .type = YGGR_ENTRY_NOOP};
        cr_assert(log_append(l, &e, UINT64_MAX));
    }
}

Test(log, an_empty_log_knows_only_index_zero)
{
    struct log l;
    cr_assert_eq(log_init(&l, 8, 8), 0);
    cr_assert(eq(u64, l.last, 0));
    cr_assert(eq(u64, log_term_at(&l, 0), 0));
    cr_assert(eq(u64, log_term_at(&l, 1), 0));
    cr_assert_eq(log_check(&l, NULL, 0), 0);
    log_deinit(&l);
}

Test(log, term_runs_answer_term_at_beyond_the_cache)
{
    struct log l;
    cr_assert_eq(log_init(&l, 8, 4), 0);
    log_fill(&l, 1, 3, 1);
    log_fill(&l, 4, 9, 2);
    cr_assert(eq(u64, log_term_at(&l, 1), 1), "evicted but its term is known");
    cr_assert(eq(u64, log_term_at(&l, 9), 2));
    cr_assert(not(log_is_cached(&l, 5)));
    cr_assert(log_is_cached(&l, 6));
    cr_assert(eq(u64, log_term_last(&l, 1), 3));
    cr_assert(eq(u64, log_term_first(&l, 7), 4));
    cr_assert_eq(log_check(&l, NULL, 0), 0);
    log_deinit(&l);
}

Test(log, truncate_at_index_first_index_and_just_above_the_floor)
{
    struct log l;
    cr_assert_eq(log_init(&l, 8, 16), 0);
    log_fill(&l, 1, 6, 1);
    log_truncate(&l, 4);
    cr_assert(eq(u64, l.last, 3));
    log_fill(&l, 4, 5, 2);
    cr_assert(eq(u64, log_term_at(&l, 5), 2));
    log_truncate(&l, 1);
    cr_assert(eq(u64, l.last, 0));
    cr_assert_eq(log_check(&l, NULL, 0), 0);
    log_fill(&l, 1, 4, 3);
    l.snap = (struct yggr_log_id){0, 0};
    log_set_snapshot(&l, (struct yggr_log_id){2, 3});
    log_compact(&l, 3);
    log_truncate(&l, 3);
    cr_assert(eq(u64, l.last, 2));
    cr_assert(eq(u64, log_term_at(&l, 2), 3), "the floor's term survives");
    cr_assert_eq(log_check(&l, NULL, 0), 0);
    log_deinit(&l);
}

Test(log, a_full_cache_refuses_entries_it_may_not_evict)
{
    struct log l;
    cr_assert_eq(log_init(&l, 8, 4), 0);
    for (uint64_t i = 1; i <= 4; i++) {
        struct yggr_entry e = {.index = i, .term = 1};
        cr_assert(log_append(&l, &e, 0));
    }
    struct yggr_entry e5 = {.index = 5, .term = 1};
    cr_assert(not(log_append(&l, &e5, 0)));
    cr_assert(eq(u64, log_room(&l, 1, 2), 2));
    cr_assert(log_append(&l, &e5, 2));
    log_deinit(&l);
}

Test(log, snapshot_and_compaction_keep_the_log_well_formed)
{
    struct log l;
    cr_assert_eq(log_init(&l, 8, 8), 0);
    for (uint64_t t = 1; t <= 5; t++) {
        log_fill(&l, l.last + 1, l.last + 3, t);
        log_set_snapshot(&l, (struct yggr_log_id){l.last - 1, t});
        log_compact(&l, l.last - 2);
        cr_assert_eq(log_check(&l, NULL, 0), 0);
    }
    cr_assert(eq(u64, log_term_at(&l, l.first - 1), 0), "below the first index: unknown");
    log_deinit(&l);
}

/* ---------------------------------------------------------------- peer_progress */

Test(peer_progress, match_is_monotone_and_stale_success_never_rewinds)
{
    struct progress p = {.id = 2};
    progress_reset(&p, 5, 0);
    cr_assert(progress_record_success(&p, 4, 0));
    cr_assert(not(progress_record_success(&p, 2, 0)));
    cr_assert(eq(u64, p.match, 4));
    cr_assert(eq(u64, p.next, 5));
}

Test(peer_progress, quorum_value_is_the_largest_index_a_majority_reached)
{
    for (uint64_t seed = 1; seed < 200; seed++) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        uint64_t vals[7], copy[7];
        uint32_t n = 1 + seed % 7;
        for (uint32_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals[i] = copy[i] = x % 20;
        }
        uint64_t q = progress_quorum_value(vals, n);
        uint64_t best = 0;
        for (uint64_t cand = 0; cand < 20; cand++) {
            uint32_t c = 0;
            for (uint32_t i = 0; i < n; i++) {
                c += copy[i] >= cand;
            }
            if (c > n / 2) {
                best = cand;
            }
        }
        cr_assert(eq(u64, q, best));
    }
}

Test(peer_progress, the_window_frees_on_acks_and_fills_at_the_limit)
{
    struct inflight infl[4];
    struct sent_req sent[4];
    struct progress p = {.id = 2, .infl = infl, .sent = sent, .sent_cap = 4};
    progress_reset(&p, 1, 0);
    progress_become_replicate(&p, 0);
    struct yggr_engine_config c = h_config(1);
    c.max_inflight_msgs = 4;
    for (uint64_t i = 1; i <= 4; i++) {
        cr_assert(not(progress_window_full(&p, &c)));
        progress_sent_data(&p, i * 10, 100, 4);
    }
    cr_assert(progress_window_full(&p, &c));
    cr_assert(eq(u64, p.next, 41));
    progress_free_upto(&p, 25, 4);
    cr_assert(eq(u32, p.infl_count, 2));
    cr_assert(eq(u64, p.infl_bytes, 200));
}

Test(peer_progress, responses_without_round_credit_the_oldest_request)
{
    struct sent_req sent[2];
    struct progress p = {.id = 2, .sent = sent, .sent_cap = 2};
    progress_reset(&p, 1, 0);
    progress_sent_push(&p, 3);
    progress_sent_push(&p, 4);
    progress_sent_push(&p, 5); /* full: not recorded */
    struct sent_req s;
    cr_assert(progress_sent_pop(&p, &s));
    cr_assert(eq(u64, s.round, 3));
    progress_sent_drop_upto(&p, 9);
    cr_assert(not(progress_sent_pop(&p, &s)));
}

/* ---------------------------------------------------------------- config validation */

Test(config, defaults_validate_and_bad_values_are_named)
{
    struct yggr_engine_config c;
    yggr_engine_config_init(&c, 1);
    char why[200];
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), 0);
    c.lease_duration_ticks = 7; /* min 10 - heartbeat 3 = 7 */
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), YGGR_ERR_CONFIG);
    cr_assert(strstr(why, "lease_duration_ticks") != NULL, "%s", why);
    c.lease_duration_ticks = 6;
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), 0);
    c.pre_vote = false;
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), YGGR_ERR_CONFIG);
    cr_assert(strstr(why, "pre_vote") != NULL, "%s", why);
    yggr_engine_config_init(&c, 1);
    c.log_cache_entries = 1000;
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), YGGR_ERR_CONFIG);
    yggr_engine_config_init(&c, 1);
    c.heartbeat_interval_ticks = 10;
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), YGGR_ERR_CONFIG);
    yggr_engine_config_init(&c, 0);
    cr_assert_eq(yggr_engine_config_validate(&c, why, sizeof(why)), YGGR_ERR_CONFIG);
}

Test(config, recover_round_trips_hard_state_log_bounds_and_configs)
{
    struct yggr_engine_config c = h_config(1);
    struct yggr_engine *e = NULL;
    cr_assert_eq(yggr_engine_create(&c, &e), 0);
    struct yggr_event ev = {.type = YGGR_EVENT_RECOVER};
    struct yggr_recovered *r = &ev.as.recover;
    r->term = 7;
    r->vote = 2;
    yggr_membership_apply(&r->base_config, YGGR_CHANGE_ADD_VOTER, 1);
    yggr_membership_apply(&r->base_config, YGGR_CHANGE_ADD_VOTER, 2);
    r->first_index = 1;
    r->last_index = 1000;
    /* The bootstrap entries (term 0) are on disk: base_config is not used again. */
    struct yggr_term_run runs[3] = {{0, 1}, {3, 3}, {6, 500}};
    r->terms = runs;
    r->term_count = 3;
    struct yggr_entry cfgs[3] = {
        {.index = 1, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER, .node = 1},
        {.index = 2, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER, .node = 2},
        {.index = 600, .term = 6, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_VOTER,
         .node = 3}};
    r->configs = cfgs;
    r->config_count = 3;
    struct yggr_actions a;
    yggr_engine_step(e, &ev, &a);
    cr_assert(eq(u64, a.term, 7));
    cr_assert(eq(u64, a.last_index, 1000));
    cr_assert(eq(u64, a.commit_index, 2), "the bootstrap entries are committed");
    cr_assert(eq(u32, a.flags & YGGR_ACT_APPEND, 0), "nothing re-appended");
    cr_assert(eq(u64, a.apply.first_index, 1));
    cr_assert(eq(u32, a.apply.count, 2));
    cr_assert(a.apply.from_storage);
    cr_assert(eq(u64, yggr_engine_term_at(e, 2), 0));
    cr_assert(eq(u64, yggr_engine_term_at(e, 499), 3));
    cr_assert(eq(u64, yggr_engine_term_at(e, 500), 6));
    struct yggr_membership m;
    yggr_engine_config_latest(e, &m);
    cr_assert(eq(u32, m.voter_count, 3));
    yggr_engine_config_committed(e, &m);
    cr_assert(eq(u32, m.voter_count, 2));
    cr_assert_eq(yggr_engine_check(e, NULL, 0), 0);
    yggr_engine_destroy(e);
}
