/* SPDX-License-Identifier: MIT */
/* bench-runtime: an in-process yggr cluster (real data directories, loopback TCP) driven
 * with many proposals in flight; reports commits/s, latency percentiles, CPU time and heap
 * allocations per commit. Uses only the public API, like an embedding application. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "yggr/yggr.h"

static const char usage[] =
    "usage: bench-runtime [options]\n"
    "  --nodes N         cluster size (default 3)\n"
    "  --duration S      measured seconds (default 5)\n"
    "  --warmup S        unmeasured seconds first (default 1)\n"
    "  --inflight N      proposals kept in flight (default 4096)\n"
    "  --size B          command bytes (default 64)\n"
    "  --tick-ms N       tick length (default 10)\n"
    "  --dir PATH        parent of the data directories (default $TMPDIR or /tmp)\n"
    "  --port P          first Raft port (default 27000)\n"
    "Prints one line per second and a summary.\n";

/* ---- allocation counting (interposes malloc for the whole process) ---- */

static atomic_uint_fast64_t alloc_calls;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

/* ---- latency histogram: 1 µs .. ~17 s, 64 sub-buckets per power of two ---- */

#define HIST_BUCKETS (24 * 64)
static atomic_uint_fast64_t hist[HIST_BUCKETS];

static uint32_t hist_bucket(uint64_t us)
{
    if (us < 64) {
        return (uint32_t)us;
    }
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(us);
    uint32_t sub = (uint32_t)(us >> (msb - 6)) & 63u;
    uint32_t b = (msb - 5) * 64 + sub;
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static uint64_t hist_value(uint32_t b)
{
    if (b < 64) {
        return b;
    }
    uint32_t msb = b / 64 + 5;
    return ((uint64_t)(64 + b % 64)) << (msb - 6);
}

static uint64_t hist_percentile(const uint64_t *h, uint64_t total, double p)
{
    uint64_t want = (uint64_t)((double)total * p);
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        seen += h[b];
        if (seen > want) {
            return hist_value(b);
        }
    }
    return hist_value(HIST_BUCKETS - 1);
}

/* ---- the state machine: counts and hashes commands ---- */

struct sm {
    uint64_t applied;
    uint64_t hash;
};

static void sm_apply(void *ctx, const struct yggr_command *cmd, struct yggr_reply *reply)
{
    struct sm *s = ctx;
    (void)reply;
    s->applied++;
    s->hash = (s->hash ^ cmd->index) * 0x100000001b3ull;
}

/* ---- load ---- */

struct bench {
    struct yggr_node *nodes[9];
    struct sm sms[9];
    uint32_t n;
    int leader;
    uint32_t size;
    uint32_t inflight;
    atomic_bool measuring;
    atomic_bool stop;
    atomic_uint_fast64_t done;
    atomic_uint_fast64_t errors;
    atomic_int outstanding;
    uint8_t cmd[4096];
};

static struct bench B;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void submit(void);

static void on_commit(void *ctx, int err, uint64_t index, uint64_t hint, const uint8_t *reply,
                      uint32_t len)
{
    (void)index;
    (void)hint;
    (void)reply;
    (void)len;
    uint64_t t0 = (uint64_t)(uintptr_t)ctx;
    if (err != 0) {
        if (atomic_fetch_add(&B.errors, 1) == 0) {
            fprintf(stderr, "bench-runtime: first error: %s\n", yggr_strerror(err));
        }
    } else if (atomic_load_explicit(&B.measuring, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&hist[hist_bucket(now_us() - t0)], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&B.done, 1, memory_order_relaxed);
    }
    atomic_fetch_sub(&B.outstanding, 1);
    /* On an error (e.g. a leader change) do not resubmit here: the main loop finds the
     * leader again and tops the window up. */
    if (err == 0 && !atomic_load_explicit(&B.stop, memory_order_relaxed)) {
        submit();
    }
}

static void submit(void)
{
    atomic_fetch_add(&B.outstanding, 1);
    uint64_t t0 = now_us();
    int rc = yggr_propose(B.nodes[B.leader], B.cmd, B.size, on_commit, (void *)(uintptr_t)t0);
    if (rc != 0) {
        atomic_fetch_sub(&B.outstanding, 1);
        if (atomic_fetch_add(&B.errors, 1) == 0) {
            fprintf(stderr, "bench-runtime: first refusal: %s\n", yggr_strerror(rc));
        }
    }
}

static int start_cluster(const char *dir, uint16_t port, uint32_t tick_ms)
{
    static char addrs[9][32];
    static char dirs[9][512];
    static struct yggr_peer peers[9][9];
    for (uint32_t i = 0; i < B.n; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%u", (unsigned)(port + i));
    }
    for (uint32_t i = 0; i < B.n; i++) {
        struct yggr_config cfg;
        yggr_config_init(&cfg, i + 1);
        uint32_t k = 0;
        for (uint32_t j = 0; j < B.n; j++) {
            if (j != i) {
                peers[i][k].id = j + 1;
                peers[i][k++].addr = addrs[j];
            }
        }
        snprintf(dirs[i], sizeof(dirs[i]), "%.480s/n%u", dir, i + 1);
        cfg.data_dir = dirs[i];
        cfg.listen_addr = addrs[i];
        cfg.peers = peers[i];
        cfg.peer_count = B.n - 1;
        cfg.bootstrap = YGGR_BOOTSTRAP_NEW;
        cfg.tick_ms = tick_ms;
        cfg.max_pending_proposals = B.inflight + 1024;
        cfg.max_pending_applies = 1u << 16;
        cfg.snapshot_threshold_entries = 0;
        cfg.sm = (struct yggr_state_machine){.ctx = &B.sms[i], .apply = sm_apply};
        char why[256];
        int rc = yggr_node_start(&cfg, &B.nodes[i], why, sizeof(why));
        if (rc != 0) {
            fprintf(stderr, "bench-runtime: node %u: %s (%s)\n", i + 1, why, yggr_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int wait_leader(void)
{
    for (int t = 0; t < 1000; t++) {
        for (uint32_t i = 0; i < B.n; i++) {
            struct yggr_status st;
            if (yggr_status(B.nodes[i], &st) == 0 && st.role == YGGR_ROLE_LEADER) {
                return (int)i;
            }
        }
        usleep(10000);
    }
    return -1;
}

static int wait_leader(void);

/* Every 10 ms: follow the leader and top the window up to `inflight`. */
static void tend_for(double seconds)
{
    for (int i = 0; i < (int)(seconds * 100); i++) {
        usleep(10000);
        struct yggr_status st;
        if (yggr_status(B.nodes[B.leader], &st) == 0 && st.role != YGGR_ROLE_LEADER) {
            int l = wait_leader();
            if (l >= 0) {
                B.leader = l;
            }
        }
        while (atomic_load(&B.outstanding) < (int)B.inflight &&
               !atomic_load_explicit(&B.stop, memory_order_relaxed)) {
            uint64_t before = atomic_load(&B.errors);
            submit();
            if (atomic_load(&B.errors) != before) {
                break;
            }
        }
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void run(double warmup, double duration)
{
    for (uint32_t i = 0; i < B.inflight; i++) {
        submit();
    }
    tend_for(warmup);
    uint64_t allocs0 = atomic_load(&alloc_calls);
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_us();
    atomic_store(&B.measuring, true);
    uint64_t last = 0;
    for (int s = 1; s <= (int)duration; s++) {
        tend_for(1.0);
        uint64_t d = atomic_load(&B.done);
        printf("  t=%ds commits/s=%llu total=%llu errors=%llu\n", s,
               (unsigned long long)(d - last), (unsigned long long)d,
               (unsigned long long)atomic_load(&B.errors));
        fflush(stdout);
        last = d;
    }
    atomic_store(&B.measuring, false);
    double secs = (double)(now_us() - t0) / 1e6;
    double cpu = cpu_seconds() - cpu0;
    uint64_t allocs = atomic_load(&alloc_calls) - allocs0;
    uint64_t done = atomic_load(&B.done);
    uint64_t h[HIST_BUCKETS];
    for (uint32_t b = 0; b < HIST_BUCKETS; b++) {
        h[b] = atomic_load(&hist[b]);
    }
    printf("bench-runtime: nodes=%u size=%uB inflight=%u: %.0f commits/s, p50 %llu us, "
           "p99 %llu us, p99.9 %llu us, cpu %.2f us/commit, allocs %.4f/commit, errors %llu\n",
           B.n, B.size, B.inflight, (double)done / secs,
           (unsigned long long)hist_percentile(h, done, 0.50),
           (unsigned long long)hist_percentile(h, done, 0.99),
           (unsigned long long)hist_percentile(h, done, 0.999),
           done > 0 ? cpu * 1e6 / (double)done : 0.0,
           done > 0 ? (double)allocs / (double)done : 0.0,
           (unsigned long long)atomic_load(&B.errors));
}

int main(int argc, char **argv)
{
    double duration = 5;
    double warmup = 1;
    uint32_t tick_ms = 10;
    uint16_t port = 27000;
    const char *parent = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    B.n = 3;
    B.size = 64;
    B.inflight = 4096;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "bench-runtime: %s needs a value\n%s", a, usage);
            return 2;
        }
        i++;
        if (strcmp(a, "--nodes") == 0) {
            B.n = (uint32_t)atoi(v);
        } else if (strcmp(a, "--duration") == 0) {
            duration = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            warmup = atof(v);
        } else if (strcmp(a, "--inflight") == 0) {
            B.inflight = (uint32_t)atoi(v);
        } else if (strcmp(a, "--size") == 0) {
            B.size = (uint32_t)atoi(v);
        } else if (strcmp(a, "--tick-ms") == 0) {
            tick_ms = (uint32_t)atoi(v);
        } else if (strcmp(a, "--dir") == 0) {
            parent = v;
        } else if (strcmp(a, "--port") == 0) {
            port = (uint16_t)atoi(v);
        } else {
            fprintf(stderr, "bench-runtime: unknown option %s\n%s", a, usage);
            return 2;
        }
    }
    if (B.n < 1 || B.n > 9 || B.size == 0 || B.size > sizeof(B.cmd) || B.inflight == 0) {
        fprintf(stderr, "bench-runtime: invalid --nodes, --size or --inflight\n");
        return 2;
    }
    memset(B.cmd, 'x', sizeof(B.cmd));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/yggr-bench-XXXXXX", parent);
    if (mkdtemp(dir) == NULL) {
        perror("bench-runtime: mkdtemp");
        return 1;
    }
    printf("bench-runtime: %u nodes, data in %s, %u proposals of %u bytes in flight\n", B.n, dir,
           B.inflight, B.size);
    if (start_cluster(dir, port, tick_ms) != 0 || (B.leader = wait_leader()) < 0) {
        fprintf(stderr, "bench-runtime: cluster did not start / elect a leader\n");
        return 1;
    }
    run(warmup, duration);
    atomic_store(&B.stop, true);
    while (atomic_load(&B.outstanding) > 0) {
        usleep(1000);
    }
    for (uint32_t i = 0; i < B.n; i++) {
        yggr_node_stop(B.nodes[i]);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
