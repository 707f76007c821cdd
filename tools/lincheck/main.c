/* SPDX-License-Identifier: MIT */
/* lincheck: check a loadgen --history file for linearizability (per-key register model). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/tool.h"
#include "lincheck.h"

#define DEFAULT_BUDGET 20000000u

static const char usage_text[] =
    "usage: lincheck [--budget STEPS] [--all] [--quiet] HISTORY.jsonl\n"
    "\n"
    "Check a key-value history (loadgen --history; '-' reads stdin) for linearizability.\n"
    "Each key is a register: write sets it, delete sets it to nil, read must return the\n"
    "current value. A write with result \"unknown\" may take effect at any point after its\n"
    "invocation, or never; \"fail\" operations never took effect. Keys whose writes all\n"
    "have distinct values are decided in O(n log n) (Gibbons-Korach zones); other keys by a\n"
    "memoized Wing-Gong-Lowe search, bounded by --budget.\n"
    "\n"
    "  --budget STEPS  search steps allowed per key before giving up on it (default 20000000)\n"
    "  --all           report every non-linearizable key, not only the first\n"
    "  --quiet         print only violations and errors\n"
    "  --help          this text\n"
    "\n"
    "Exit status: 0 linearizable, 1 not linearizable (the first bad key is explained),\n"
    "2 usage or input error, 3 undecided (a key exceeded --budget; nothing wrong was found).\n";

struct cli {
    uint64_t budget;
    bool all;
    bool quiet;
    const char *path;
};

static int parse_cli(int argc, char **argv, struct cli *cli)
{
    static const struct option options[] = {
        {"budget", required_argument, NULL, 'b'}, {"all", no_argument, NULL, 'a'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(cli, 0, sizeof(*cli));
    cli->budget = DEFAULT_BUDGET;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!tool_parse_u64(optarg, 1, UINT64_MAX, &cli->budget)) {
                tool_warn("--budget wants a positive number of steps, not '%s'", optarg);
                return -1;
            }
            break;
        case 'a':
            cli->all = true;
            break;
        case 'q':
            cli->quiet = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        default:
            tool_warn("unknown option; run 'lincheck --help'");
            return -1;
        }
    }
    if (optind != argc - 1) {
        tool_warn("give exactly one history file (or '-' for stdin); run 'lincheck --help'");
        return -1;
    }
    cli->path = argv[optind];
    return 0;
}

static void print_key(void *ctx, const struct lc_history *h, const struct lc_key_result *r)
{
    (void)ctx;
    printf("key %s: %s (%zu operations searched, %llu steps)\n  %s\n", lc_history_key(h, r->key),
           r->verdict == LC_VERDICT_VIOLATION ? lc_anomaly_name(r->anomaly) : "undecided",
           r->op_count, (unsigned long long)r->steps, r->explanation);
}

static int load(const struct cli *cli, struct lc_history *h)
{
    char err[512];
    FILE *f = strcmp(cli->path, "-") == 0 ? stdin : fopen(cli->path, "r");
    if (f == NULL) {
        tool_warn("cannot open %s: %s", cli->path, strerror(errno));
        return -1;
    }
    int rc = lc_history_load(h, f, cli->path, err, sizeof(err));
    if (f != stdin) {
        fclose(f);
    }
    if (rc != 0) {
        tool_warn("%s (expected loadgen --history JSON lines; see docs/loadgen.md)", err);
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct cli cli;
    tool_set_name("lincheck");
    int rc = parse_cli(argc, argv, &cli);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    static struct lc_history h;
    if (lc_history_init(&h) != 0) {
        tool_die(2, "out of memory");
    }
    uint64_t t0 = tool_now_us();
    if (load(&cli, &h) != 0) {
        return 2;
    }
    uint64_t t1 = tool_now_us();
    struct lc_options opt = {.max_steps_per_key = cli.budget, .all_keys = cli.all,
                             .on_key = print_key};
    static struct lc_report report;
    enum lc_verdict verdict = lc_check(&h, &opt, &report);
    uint64_t t2 = tool_now_us();
    static const char *const verdicts[] = {"linearizable", "NOT linearizable",
                                           "undecided (search budget exhausted)"};
    if (!cli.quiet || verdict != LC_VERDICT_OK) {
        printf("lincheck: %zu operations on %u keys: %s%s%s\n", h.count, h.keys.count,
               verdicts[verdict], verdict == LC_VERDICT_VIOLATION ? " at key " : "",
               verdict == LC_VERDICT_VIOLATION ? lc_history_key(&h, report.first.key) : "");
        printf("lincheck: %zu keys checked (%zu by zone check, %zu by search; %zu violating, "
               "%zu undecided), %zu operations checked, %zu pruned, %llu search steps; load "
               "%.3f s, check %.3f s\n",
               report.keys, report.keys_polynomial, report.keys - report.keys_polynomial,
               report.keys_violating, report.keys_undecided, report.ops_searched,
               report.ops_pruned, (unsigned long long)report.steps, (double)(t1 - t0) / 1e6,
               (double)(t2 - t1) / 1e6);
    }
    lc_history_deinit(&h);
    return verdict == LC_VERDICT_OK ? 0 : verdict == LC_VERDICT_VIOLATION ? 1 : 3;
}
