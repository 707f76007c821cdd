/* SPDX-License-Identifier: MIT */
/* Integration scenarios without Criterion, so they also run under ThreadSanitizer
 * (Criterion cannot: Snaipe/Criterion#274). Each scenario drives real node threads through
 * the public API and checks outcomes; any failed check aborts with a message.
 *   scenarios [--real] [--only NAME]
 * --real uses the io_uring disk storage and TCP transport on 127.0.0.1 instead of the
 * in-memory plugins. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static bool use_real;

static void scenario_replicate_and_failover(void)
{
    struct cluster c;
    cluster_init(&c, 3, use_real, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 10000);
    CL_ASSERT(l >= 0, "%s", "no leader");
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 50; v++) {
        CL_ASSERT(cluster_add_any(&c, v, &total, 10000) == 0, "add %llu", (unsigned long long)v);
    }
    CL_ASSERT(cluster_total_ok(&c, total, 1275), "total %llu", (unsigned long long)total);
    cluster_stop(&c, (uint32_t)l);
    CL_ASSERT(cluster_add_any(&c, 5, &total, 10000) == 0, "%s", "write after failover");
    CL_ASSERT(cluster_total_ok(&c, total, 1280), "total %llu", (unsigned long long)total);
    cluster_start(&c, (uint32_t)l);
    struct yggr_status st;
    yggr_status(c.node[(l + 1) % 3], &st);
    CL_ASSERT(cluster_wait_applied(&c, st.commit_index, 10000), "%s", "restarted node catches up");
    CL_ASSERT(counter_total(&c.sm[l]) == total, "restarted total %llu",
              (unsigned long long)counter_total(&c.sm[l]));
    cluster_destroy(&c);
}

struct tally {
    atomic_int calls;
    atomic_int ok;
};

static void tally_cb(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *r,
                     uint32_t len)
{
    (void)index;
    (void)hint;
    (void)r;
    (void)len;
    struct tally *t = ctx;
    if (err == 0) {
        atomic_fetch_add(&t->ok, 1);
    }
    atomic_fetch_add(&t->calls, 1);
}

static void read_cb(void *ctx, int err, uint64_t hint, void *sm)
{
    (void)hint;
    struct tally *t = ctx;
    if (err == 0) {
        (void)counter_total(sm);
        atomic_fetch_add(&t->ok, 1);
    }
    atomic_fetch_add(&t->calls, 1);
}

static void scenario_concurrent_load_then_shutdown(void)
{
    struct cluster c;
    cluster_init(&c, 3, use_real, NULL);
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 10000);
    CL_ASSERT(l >= 0, "%s", "no leader");
    struct tally t = {0};
    int queued = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 200; i++) {
            uint64_t v = 1;
            if (yggr_propose(c.node[l], &v, 8, tally_cb, &t) == 0) {
                queued++;
            }
            if (i % 10 == 0 && yggr_read(c.node[l], YGGR_READ_LINEARIZABLE, read_cb, &t) == 0) {
                queued++;
            }
        }
        sleep_ms(2);
    }
    /* Shut down with requests still in flight, once the cluster made some progress. */
    uint64_t until = now_ms() + 20000;
    while (atomic_load(&t.ok) == 0 && now_ms() < until) {
        sleep_ms(1);
    }
    cluster_destroy(&c);
    CL_ASSERT(atomic_load(&t.calls) == queued, "%d callbacks for %d requests",
              atomic_load(&t.calls), queued);
    CL_ASSERT(atomic_load(&t.ok) > 0, "%s", "some requests succeeded");
}

static void snap_tweak(struct yggr_config *cfg, uint32_t i)
{
    (void)i;
    cfg->snapshot_threshold_entries = 64;
}

static void scenario_snapshot_catch_up(void)
{
    struct cluster c;
    cluster_init(&c, 3, use_real, snap_tweak);
    cluster_start_all(&c);
    CL_ASSERT(cluster_wait_leader(&c, 10000) >= 0, "%s", "no leader");
    int l = cluster_wait_leader(&c, 10000);
    uint32_t lag = ((uint32_t)l + 1) % 3;
    cluster_stop(&c, lag);
    uint64_t total = 0;
    for (uint64_t v = 1; v <= 300; v++) {
        CL_ASSERT(cluster_add_any(&c, v, &total, 10000) == 0, "add %llu", (unsigned long long)v);
    }
    cluster_start(&c, lag);
    struct yggr_status st;
    yggr_status(c.node[l], &st);
    CL_ASSERT(cluster_wait_applied(&c, st.commit_index, 15000), "%s", "lagging node caught up");
    CL_ASSERT(cluster_total_ok(&c, counter_total(&c.sm[l]), 45150), "leader total %llu",
              (unsigned long long)counter_total(&c.sm[l]));
    CL_ASSERT(counter_total(&c.sm[lag]) == counter_total(&c.sm[l]), "lagging total %llu",
              (unsigned long long)counter_total(&c.sm[lag]));
    CL_ASSERT(cluster_add_any(&c, 1, &total, 10000) == 0, "%s", "replication continues");
    yggr_status(c.node[l], &st);
    CL_ASSERT(cluster_wait_applied(&c, st.commit_index, 10000), "%s", "all applied");
    cluster_destroy(&c);
}

static void scenario_membership_and_transfer(void)
{
    struct cluster c;
    cluster_init(&c, 4, use_real, NULL);
    c.cfg[3].bootstrap = YGGR_BOOTSTRAP_JOIN;
    for (uint32_t i = 0; i < 3; i++) {
        c.cfg[i].peer_count = 2;
    }
    cluster_start_all(&c);
    int l = cluster_wait_leader(&c, 10000);
    CL_ASSERT(l >= 0, "%s", "no leader");
    CL_ASSERT(cluster_add_any(&c, 3, NULL, 10000) == 0, "%s", "write");
    struct yggr_membership m;
    CL_ASSERT(yggr_add_learner(c.node[l], 4, c.addr[3], 10000, &m) == 0, "%s", "add learner");
    sleep_ms(200);
    CL_ASSERT(yggr_promote_learner(c.node[l], 4, 10000, &m) == 0, "%s", "promote");
    CL_ASSERT(m.voter_count == 4, "%u voters", m.voter_count);
    int rc = yggr_transfer_leadership(c.node[l], 4, 10000);
    for (uint32_t i = 0; rc != 0 && i < 4; i++) {
        struct yggr_status st;
        yggr_status(c.node[i], &st);
        fprintf(stderr, "node %u: role %s term %llu leader %llu commit %llu voters %u learners %u\n",
                i + 1, yggr_role_name(st.role), (unsigned long long)st.term,
                (unsigned long long)st.leader, (unsigned long long)st.commit_index,
                st.config.voter_count, st.config.learner_count);
    }
    CL_ASSERT(rc == 0, "transfer to 4: %s", yggr_strerror(rc));
    CL_ASSERT(cluster_wait_leader(&c, 5000) == 3, "%s", "node 4 leads");
    /* A new leader refuses changes until it committed an entry of its own term
     * (REFERENCE 8.1 #6) and while the previous change is not committed in its view:
     * both are definite, transient refusals an operator retries. */
    for (int tries = 0; tries < 100; tries++) {
        rc = yggr_remove_voter(c.node[3], (uint64_t)l + 1, 10000, &m);
        if (rc != YGGR_ERR_NOT_READY && rc != YGGR_ERR_CHANGE_IN_PROGRESS) {
            break;
        }
        sleep_ms(20);
    }
    CL_ASSERT(rc == 0, "remove: %s", yggr_strerror(rc));
    CL_ASSERT(m.voter_count == 3, "%u voters", m.voter_count);
    cluster_destroy(&c);
}

struct scenario {
    const char *name;
    void (*fn)(void);
};

int main(int argc, char **argv)
{
    static const struct scenario all[] = {
        {"replicate_and_failover", scenario_replicate_and_failover},
        {"concurrent_load_then_shutdown", scenario_concurrent_load_then_shutdown},
        {"snapshot_catch_up", scenario_snapshot_catch_up},
        {"membership_and_transfer", scenario_membership_and_transfer},
    };
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--real") == 0) {
            use_real = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--real] [--only NAME]\n", argv[0]);
            return 2;
        }
    }
#if !YGGR_IO_TESTS
    if (use_real) {
        printf("scenarios: SKIP: io tests disabled at build time (-Dio_tests=disabled)\n");
        return 77;
    }
#endif
    int ran = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (only != NULL && strcmp(only, all[i].name) != 0) {
            continue;
        }
        uint64_t t0 = now_ms();
        all[i].fn();
        printf("scenario %-32s ok (%llu ms, %s)\n", all[i].name,
               (unsigned long long)(now_ms() - t0), use_real ? "disk+tcp" : "in-memory");
        ran++;
    }
    printf("scenarios: %d passed\n", ran);
    return ran > 0 ? 0 : 1;
}
