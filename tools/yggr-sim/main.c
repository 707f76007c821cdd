/* SPDX-License-Identifier: MIT */
/* yggr-sim: run the deterministic Raft simulator over many seeds and report violations. */

/*
 * Design notes
 * - Seeds run one after another in this process; each is an independent simulation
 *   (struct sim) built from the same options with its own seed, so any failing seed
 *   replays alone with the printed command line.
 * - Output contract: a progress line every --progress seconds on stderr, one line per
 *   violation (plus the last trace records of the first few), and ONE final summary line
 *   on stdout ending in "N seeds, V violations". Exit status 1 when V > 0, 2 on usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

struct cli {
    struct sim_options opt;
    uint64_t seeds;
    uint64_t first_seed;
    bool single;
    bool trace;
    bool stop;
    double progress_s;
    double time_limit_s;
    uint32_t trace_records;
    char features[256];
};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: yggr-sim [options]\n"
        "Runs N Raft engines on a simulated network and disk from one seeded PRNG and checks\n"
        "Raft's safety invariants after every step.\n\n"
        "  --seeds N         run N seeds (default 100)\n"
        "  --first-seed S    first seed of the range (default 1)\n"
        "  --seed S          run only seed S and print its full trace\n"
        "  --steps M         scheduler steps per seed (default 2000)\n"
        "  --nodes K         founding nodes, ids 1..K (1..%d, default 3)\n"
        "  --spares P        extra ids that may join via membership changes (0..%d, default 2)\n"
        "  --features LIST   comma-separated; presets happy|basic|all (default basic);\n"
        "                    names: propose prevote checkquorum vary crash torn slowdisk\n"
        "                    netfault partition reads lease membership transfer snapshot\n"
        "                    refwire drift garbage bigcmd shortread; '-name' removes one\n"
        "                    (e.g. all,-lease)\n"
        "  --heal-at STEP    at STEP stop every fault, restart crashed nodes and require the\n"
        "                    cluster to converge (one leader, all members applied its commit)\n"
        "  --converge N      steps allowed for convergence after --heal-at (default 20000)\n"
        "  --clock-skew N    force the clock drift bound to N ticks and give nodes\n"
        "                    different clock rates (lease reads assume bounded drift:\n"
        "                    beyond the lease margin they are no longer guaranteed)\n"
        "  --trace           print every trace record of every seed\n"
        "  --trace-lines N   trace records printed with a violation (default 200)\n"
        "  --stop            stop at the first violation\n"
        "  --progress SECS   progress line interval on stderr (default 2, 0 = off)\n"
        "  --time-limit SECS stop starting new seeds after SECS (0 = none, the default);\n"
        "                    the summary counts the seeds actually run\n"
        "  --help            this text\n\n"
        "The last line is a summary ending in \"N seeds, V violations\"; exit status 1 when\n"
        "V > 0. A violation prints the seed, the step, the last trace records and the exact\n"
        "command line that replays it.\n",
        SIM_MAX_NODES, SIM_MAX_SPARES);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* Returns 0 on success, 1 after --help, 2 on a usage error. */
static int parse(struct cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool takes = strcmp(a, "--trace") != 0 && strcmp(a, "--stop") != 0 &&
                     strcmp(a, "--help") != 0 && strcmp(a, "-h") != 0;
        if (takes && v == NULL) {
            fprintf(stderr, "yggr-sim: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--trace") == 0) {
            c->trace = true;
            continue;
        } else if (strcmp(a, "--stop") == 0) {
            c->stop = true;
            continue;
        } else if (strcmp(a, "--features") == 0) {
            char why[128];
            if (!sim_features_parse(v, &c->opt.features, why, sizeof(why))) {
                fprintf(stderr, "yggr-sim: %s\n", why);
                return 2;
            }
            snprintf(c->features, sizeof(c->features), "%s", v);
        } else if (strcmp(a, "--progress") == 0) {
            c->progress_s = strtod(v, NULL);
        } else if (strcmp(a, "--time-limit") == 0) {
            c->time_limit_s = strtod(v, NULL);
        } else if (!parse_u64(v, &n)) {
            fprintf(stderr, "yggr-sim: bad value '%s' for %s\n", v, a);
            return 2;
        } else if (strcmp(a, "--seeds") == 0) {
            c->seeds = n;
        } else if (strcmp(a, "--first-seed") == 0) {
            c->first_seed = n;
        } else if (strcmp(a, "--seed") == 0) {
            c->first_seed = n;
            c->seeds = 1;
            c->single = true;
        } else if (strcmp(a, "--steps") == 0) {
            c->opt.steps = n;
        } else if (strcmp(a, "--nodes") == 0) {
            c->opt.node_count = (uint32_t)n;
        } else if (strcmp(a, "--spares") == 0) {
            c->opt.spare_count = (uint32_t)n;
        } else if (strcmp(a, "--heal-at") == 0) {
            c->opt.heal_at = n;
        } else if (strcmp(a, "--converge") == 0) {
            c->opt.converge_steps = n;
        } else if (strcmp(a, "--clock-skew") == 0) {
            c->opt.clock_skew = n;
        } else if (strcmp(a, "--trace-lines") == 0) {
            c->trace_records = (uint32_t)n;
        } else {
            fprintf(stderr, "yggr-sim: unknown option %s (see --help)\n", a);
            return 2;
        }
        i++;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void replay_line(const struct cli *c, uint64_t seed, FILE *out)
{
    fprintf(out, "  replay: yggr-sim --seed %" PRIu64 " --steps %" PRIu64 " --nodes %u --spares %u"
            " --features %s", seed, c->opt.steps, c->opt.node_count, c->opt.spare_count,
            c->features);
    if (c->opt.clock_skew != 0) {
        fprintf(out, " --clock-skew %" PRIu64, c->opt.clock_skew);
    }
    if (c->opt.heal_at != 0) {
        fprintf(out, " --heal-at %" PRIu64, c->opt.heal_at);
        if (c->opt.converge_steps != 0) {
            fprintf(out, " --converge %" PRIu64, c->opt.converge_steps);
        }
    }
    fputc('\n', out);
}

/* Run one seed; returns true when clean. */
static bool run_seed(const struct cli *c, uint64_t seed, uint64_t violations,
                     struct sim_stats *sum)
{
    struct sim_options o = c->opt;
    o.seed = seed;
    o.trace_out = (c->trace || c->single) ? stdout : NULL;
    struct sim *sim = sim_create(&o);
    if (sim == NULL) {
        exit(2);
    }
    bool ok = sim_run(sim);
    if (!ok) {
        printf("yggr-sim: VIOLATION %s (seed %" PRIu64 ", step %" PRIu64 ")\n",
               sim_violation(sim), seed, sim_violation_step(sim));
        if (violations < 3 && !c->single) {
            printf("  last trace records:\n");
            sim_dump_trace(sim, stdout, c->trace_records);
        }
        replay_line(c, seed, stdout);
        fflush(stdout);
    }
    struct sim_stats st;
    sim_stats(sim, &st);
    sim_stats_add(sum, &st);
    sim_destroy(sim);
    return ok;
}

int main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof(c));
    sim_options_init(&c.opt);
    c.seeds = 100;
    c.first_seed = 1;
    c.progress_s = 2.0;
    c.trace_records = 200;
    snprintf(c.features, sizeof(c.features), "basic");
    int rc = parse(&c, argc, argv);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    if (c.single || c.trace) {
        setvbuf(stdout, NULL, _IOLBF, 0); /* keep the trace up to an engine abort() */
    }
    struct sim_stats sum;
    memset(&sum, 0, sizeof(sum));
    uint64_t violations = 0;
    uint64_t done = 0;
    double start = now_s();
    double last = start;
    for (uint64_t k = 0; k < c.seeds; k++) {
        if (!run_seed(&c, c.first_seed + k, violations, &sum)) {
            violations++;
        }
        done++;
        double t = now_s();
        if (c.progress_s > 0 && t - last >= c.progress_s) {
            fprintf(stderr, "yggr-sim: progress %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64
                    " violations, %.1fs\n", done, c.seeds, violations, t - start);
            last = t;
        }
        if (violations > 0 && c.stop) {
            break;
        }
        if (c.time_limit_s > 0 && t - start >= c.time_limit_s) {
            fprintf(stderr, "yggr-sim: time limit of %.0fs reached after %" PRIu64 " seeds\n",
                    c.time_limit_s, done);
            break;
        }
    }
    printf("yggr-sim: nodes=%u steps=%" PRIu64 " features=%s elections=%" PRIu64
           " commits=%" PRIu64 " acked=%" PRIu64 " reads=%" PRIu64 " crashes=%" PRIu64
           " torn=%" PRIu64 " partitions=%" PRIu64 " snapshots=%" PRIu64 " installs=%" PRIu64
           " changes=%" PRIu64 " transfers=%" PRIu64 " messages=%" PRIu64 " peak_inflight=%" PRIu64
           " time=%.1fs %" PRIu64
           " seeds, %" PRIu64 " violations\n",
           c.opt.node_count, c.opt.steps, c.features, sum.elections, sum.commits, sum.acked,
           sum.reads, sum.crashes, sum.torn, sum.partitions, sum.snapshots, sum.installs,
           sum.changes, sum.transfers, sum.messages, sum.peak_inflight, now_s() - start, done,
           violations);
    return violations > 0 ? 1 : 0;
}
