/* SPDX-License-Identifier: MIT */
/* loadgen command line: flags, defaults, validation and --help. Errors say what to do. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static const char usage_text[] =
    "usage: loadgen --targets HOST:PORT[,HOST:PORT...] [options]\n"
    "\n"
    "Drive a yggr-kv cluster (or any server speaking the reference kv line protocol or RESP)\n"
    "and measure throughput and latency. Follows leader redirects; never silently re-sends a\n"
    "write whose outcome is unknown.\n"
    "\n"
    "Target and protocol:\n"
    "  --targets LIST        comma-separated HOST:PORT client addresses; node i = i-th target\n"
    "  --node-map LIST       ID=HOST:PORT,... explicit node ids for REDIRECT node:<id>\n"
    "                        (every target must appear in it)\n"
    "  --protocol line|resp  line: SET/GET/DEL text lines (default); resp: redis protocol\n"
    "Load shape:\n"
    "  --connections N       client connections (default 16)\n"
    "  --depth D             pipelined requests in flight per connection (default 1)\n"
    "  --threads T           worker threads, 1..8 (default 1)\n"
    "  --value-size B        bytes per written value (default 64)\n"
    "  --keys K              key space k0..k<K-1>, uniform (default 1000)\n"
    "  --key-offset O        use keys k<O>..k<O+K-1> instead (a fresh key space for a new\n"
    "                        history against a cluster that already holds data)\n"
    "  --read-ratio R        fraction of GETs, 0..1 (default 0.5)\n"
    "  --delete-ratio R      fraction of the non-reads sent as DEL, 0..1 (default 0)\n"
    "  --duration S          measured seconds after warmup (default 10)\n"
    "  --requests N          stop after N measured requests instead of --duration\n"
    "  --rate R              open loop: R requests/s in total, latency measured from the\n"
    "                        intended send time (default: closed loop)\n"
    "  --warmup S            seconds run but not measured (default 0)\n"
    "  --timeout-ms MS       a request without reply after MS fails its connection\n"
    "                        (writes in flight become indeterminate; default 2000)\n"
    "  --seed N              PRNG seed for keys and op mix (default 1)\n"
    "Output:\n"
    "  --json FILE           summary as JSON (ops_per_sec, p50_us, p99_us, p999_us, errors...)\n"
    "  --history FILE        every operation as JSON lines for lincheck; writes carry unique\n"
    "                        values c<client>-s<seq>-<filler>\n"
    "  --plot FILE.svg       self-contained SVG: ops/s and p99 over time, latency\n"
    "                        distribution, errors and leader changes marked\n"
    "  --quiet               no per-second progress lines\n"
    "  --help                this text\n"
    "\n"
    "Exit status: 0 on a completed run, 1 when the run could not reach any target or\n"
    "writing an output file failed, 2 on bad usage. Details: docs/loadgen.md\n";

enum {
    OPT_TARGETS = 256,
    OPT_NODE_MAP,
    OPT_PROTOCOL,
    OPT_CONNECTIONS,
    OPT_DEPTH,
    OPT_THREADS,
    OPT_VALUE_SIZE,
    OPT_KEYS,
    OPT_KEY_OFFSET,
    OPT_READ_RATIO,
    OPT_DELETE_RATIO,
    OPT_DURATION,
    OPT_REQUESTS,
    OPT_RATE,
    OPT_WARMUP,
    OPT_TIMEOUT,
    OPT_SEED,
    OPT_JSON,
    OPT_HISTORY,
    OPT_PLOT,
    OPT_QUIET,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"targets", required_argument, NULL, OPT_TARGETS},
    {"node-map", required_argument, NULL, OPT_NODE_MAP},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"depth", required_argument, NULL, OPT_DEPTH},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"value-size", required_argument, NULL, OPT_VALUE_SIZE},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"key-offset", required_argument, NULL, OPT_KEY_OFFSET},
    {"read-ratio", required_argument, NULL, OPT_READ_RATIO},
    {"delete-ratio", required_argument, NULL, OPT_DELETE_RATIO},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"rate", required_argument, NULL, OPT_RATE},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"json", required_argument, NULL, OPT_JSON},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void defaults(struct lg_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->protocol = PROTO_KIND_LINE;
    opt->connections = 16;
    opt->depth = 1;
    opt->threads = 1;
    opt->value_size = 64;
    opt->keys = 1000;
    opt->read_ratio = 0.5;
    opt->duration_s = 10.0;
    opt->timeout_us = 2000u * 1000u;
    opt->seed = 1;
}

static int bad(const char *flag, const char *value, const char *want)
{
    tool_warn("bad value '%s' for --%s: %s (see --help)", value, flag, want);
    return -1;
}

/* Parse "A,B,C" of HOST:PORT into a node table with ids 1..n. */
static int parse_targets(const char *list, struct tool_addr *addrs, uint32_t *count)
{
    char buf[4096];
    char err[256];
    if (strlen(list) >= sizeof(buf)) {
        return bad("targets", "...", "list too long");
    }
    snprintf(buf, sizeof(buf), "%s", list);
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (*count == LG_NODES_MAX) {
            return bad("targets", list, "at most 64 targets");
        }
        if (tool_resolve(tok, &addrs[*count], err, sizeof(err)) != 0) {
            return bad("targets", tok, err);
        }
        (*count)++;
    }
    return *count == 0 ? bad("targets", list, "need at least one HOST:PORT") : 0;
}

/* Parse "ID=HOST:PORT,..." into opt->nodes / node_ids. */
static int parse_node_map(const char *list, struct lg_options *opt)
{
    char buf[4096];
    char err[256];
    if (strlen(list) >= sizeof(buf)) {
        return bad("node-map", "...", "list too long");
    }
    snprintf(buf, sizeof(buf), "%s", list);
    opt->node_count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        uint64_t id = 0;
        if (eq == NULL || opt->node_count == LG_NODES_MAX) {
            return bad("node-map", tok, "expected ID=HOST:PORT (at most 64 entries)");
        }
        *eq = '\0';
        if (!tool_parse_u64(tok, 1, UINT32_MAX, &id)) {
            return bad("node-map", tok, "node id must be a positive integer");
        }
        for (uint32_t i = 0; i < opt->node_count; i++) {
            if (opt->node_ids[i] == id) {
                return bad("node-map", tok, "node id listed twice");
            }
        }
        if (tool_resolve(eq + 1, &opt->nodes[opt->node_count], err, sizeof(err)) != 0) {
            return bad("node-map", eq + 1, err);
        }
        opt->node_ids[opt->node_count++] = (uint32_t)id;
    }
    return opt->node_count == 0 ? bad("node-map", list, "empty") : 0;
}

/* Numeric flags. Returns 0, or -1 after printing the reason. */
static int parse_number(int code, const char *arg, struct lg_options *opt)
{
    uint64_t u = 0;
    switch (code) {
    case OPT_CONNECTIONS:
        if (!tool_parse_u64(arg, 1, 100000, &u)) {
            return bad("connections", arg, "an integer in 1..100000");
        }
        opt->connections = (uint32_t)u;
        return 0;
    case OPT_DEPTH:
        if (!tool_parse_u64(arg, 1, 4096, &u)) {
            return bad("depth", arg, "an integer in 1..4096");
        }
        opt->depth = (uint32_t)u;
        return 0;
    case OPT_THREADS:
        if (!tool_parse_u64(arg, 1, LG_THREADS_MAX, &u)) {
            return bad("threads", arg, "an integer in 1..8");
        }
        opt->threads = (uint32_t)u;
        return 0;
    case OPT_VALUE_SIZE:
        if (!tool_parse_u64(arg, 1, 1u << 20, &u)) {
            return bad("value-size", arg, "bytes in 1..1048576");
        }
        opt->value_size = (uint32_t)u;
        return 0;
    case OPT_KEYS:
        if (!tool_parse_u64(arg, 1, UINT32_MAX, &u)) {
            return bad("keys", arg, "a positive integer");
        }
        opt->keys = (uint32_t)u;
        return 0;
    case OPT_KEY_OFFSET:
        if (!tool_parse_u64(arg, 0, UINT32_MAX, &u)) {
            return bad("key-offset", arg, "an integer in 0..4294967295");
        }
        opt->key_offset = (uint32_t)u;
        return 0;
    case OPT_REQUESTS:
        if (!tool_parse_u64(arg, 1, UINT64_MAX, &u)) {
            return bad("requests", arg, "a positive integer");
        }
        opt->requests = u;
        return 0;
    case OPT_TIMEOUT:
        if (!tool_parse_u64(arg, 1, 3600000, &u)) {
            return bad("timeout-ms", arg, "milliseconds in 1..3600000");
        }
        opt->timeout_us = u * 1000u;
        return 0;
    case OPT_SEED:
        if (!tool_parse_u64(arg, 0, UINT64_MAX, &u)) {
            return bad("seed", arg, "a non-negative integer");
        }
        opt->seed = u;
        return 0;
    default:
        return 1; /* not a numeric integer flag */
    }
}

static int parse_real(int code, const char *arg, struct lg_options *opt)
{
    switch (code) {
    case OPT_READ_RATIO:
        return tool_parse_double(arg, 0.0, 1.0, &opt->read_ratio)
                   ? 0
                   : bad("read-ratio", arg, "a number in 0..1");
    case OPT_DELETE_RATIO:
        return tool_parse_double(arg, 0.0, 1.0, &opt->delete_ratio)
                   ? 0
                   : bad("delete-ratio", arg, "a number in 0..1");
    case OPT_DURATION:
        return tool_parse_double(arg, 0.001, 1e7, &opt->duration_s)
                   ? 0
                   : bad("duration", arg, "seconds > 0");
    case OPT_WARMUP:
        return tool_parse_double(arg, 0.0, 1e7, &opt->warmup_s)
                   ? 0
                   : bad("warmup", arg, "seconds >= 0");
    case OPT_RATE:
        return tool_parse_double(arg, 0.001, 1e9, &opt->rate) ? 0
                                                              : bad("rate", arg, "requests/s > 0");
    default:
        return 1;
    }
}

/* Map every target to a node of the --node-map table (or build the table from targets). */
static int resolve_nodes(struct lg_options *opt, const struct tool_addr *targets,
                         uint32_t target_count, bool have_map)
{
    if (!have_map) {
        for (uint32_t i = 0; i < target_count; i++) {
            opt->nodes[i] = targets[i];
            opt->node_ids[i] = i + 1;
        }
        opt->node_count = target_count;
        return 0;
    }
    for (uint32_t t = 0; t < target_count; t++) {
        bool found = false;
        for (uint32_t i = 0; i < opt->node_count && !found; i++) {
            found = tool_addr_equal(&targets[t], &opt->nodes[i]);
        }
        if (!found) {
            tool_warn("target %s is not in --node-map; add it as ID=%s", targets[t].text,
                      targets[t].text);
            return -1;
        }
    }
    /* The first target is where connections start: move it to index 0. */
    for (uint32_t i = 0; i < opt->node_count; i++) {
        if (tool_addr_equal(&targets[0], &opt->nodes[i]) && i != 0) {
            struct tool_addr a = opt->nodes[0];
            uint32_t id = opt->node_ids[0];
            opt->nodes[0] = opt->nodes[i];
            opt->node_ids[0] = opt->node_ids[i];
            opt->nodes[i] = a;
            opt->node_ids[i] = id;
        }
    }
    return 0;
}

static int check_combinations(struct lg_options *opt, bool have_duration)
{
    if (opt->requests > 0 && have_duration) {
        tool_warn("--duration and --requests are exclusive: give one of them");
        return -1;
    }
    if (opt->threads > opt->connections) {
        tool_warn("--threads %u exceeds --connections %u: use at most one thread per "
                  "connection",
                  opt->threads, opt->connections);
        return -1;
    }
    return 0;
}

/* Returns 0 to run, 1 when --help was printed, -1 on a usage error (already reported). */
int options_parse(int argc, char **argv, struct lg_options *opt)
{
    static struct tool_addr targets[LG_NODES_MAX];
    uint32_t target_count = 0;
    bool have_map = false;
    bool have_duration = false;
    defaults(opt);
    int code;
    optind = 1;
    while ((code = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        const char *arg = optarg;
        int rc = parse_number(code, arg, opt);
        if (rc == 1) {
            rc = parse_real(code, arg, opt);
        }
        if (rc == 1) {
            rc = 0;
            switch (code) {
            case OPT_TARGETS:
                rc = parse_targets(arg, targets, &target_count);
                break;
            case OPT_NODE_MAP:
                rc = parse_node_map(arg, opt);
                have_map = true;
                break;
            case OPT_PROTOCOL:
                if (strcmp(arg, "line") == 0) {
                    opt->protocol = PROTO_KIND_LINE;
                } else if (strcmp(arg, "resp") == 0) {
                    opt->protocol = PROTO_KIND_RESP;
                } else {
                    rc = bad("protocol", arg, "line or resp");
                }
                break;
            case OPT_JSON:
                opt->json_path = arg;
                break;
            case OPT_HISTORY:
                opt->history_path = arg;
                break;
            case OPT_PLOT:
                opt->plot_path = arg;
                break;
            case OPT_QUIET:
                opt->quiet = true;
                break;
            case OPT_HELP:
            case 'h':
                fputs(usage_text, stdout);
                return 1;
            default:
                tool_warn("unknown option; run 'loadgen --help' for the list");
                return -1;
            }
        } else if (code == OPT_DURATION) {
            have_duration = true;
        }
        if (rc != 0) {
            return -1;
        }
    }
    if (optind < argc) {
        tool_warn("unexpected argument '%s'; run 'loadgen --help'", argv[optind]);
        return -1;
    }
    if (target_count == 0) {
        tool_warn("--targets is required, e.g. --targets 127.0.0.1:8001,127.0.0.1:8002");
        return -1;
    }
    if (resolve_nodes(opt, targets, target_count, have_map) != 0) {
        return -1;
    }
    return check_combinations(opt, have_duration);
}
