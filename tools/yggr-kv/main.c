/* SPDX-License-Identifier: MIT */
/* yggr-kv: a replicated key-value server on libyggr_rt (drop-in for the reference kv). */
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv.h"

static const char usage[] =
    "usage: yggr-kv --node-id N --peer-addr HOST:PORT --client-addr HOST:PORT\n"
    "               --data-dir PATH [--peer ID=HOST:PORT]... [options]\n"
    "\n"
    "A replicated key-value server. Clients speak the reference kv line protocol\n"
    "(SET k v / GET k / DEL k / INFO) or RESP (redis-cli, redis-benchmark) on --client-addr.\n"
    "Admin: JOIN <id> <raft-addr> and REMOVE <id> (on the leader), DIGEST (this replica's\n"
    "applied index and state digest); INFO lists voter_ids and learner_ids.\n"
    "\n"
    "Required:\n"
    "  --node-id N              this node's id (non-zero, stable across restarts)\n"
    "  --peer-addr HOST:PORT    Raft listen address\n"
    "  --client-addr HOST:PORT  client listen address\n"
    "  --data-dir PATH          data directory (created when missing)\n"
    "Cluster:\n"
    "  --peer ID=HOST:PORT      another member's Raft address (repeat for each)\n"
    "  --bootstrap MODE         new | join | recover | auto (default auto: recover when the\n"
    "                           data dir holds state, else new with the --peer founders)\n"
    "  --join ADDR[,ADDR...]    after starting (as a joiner), ask a running member's client\n"
    "                           port to add this node (learner, catch up, promote)\n"
    "  --cluster-secret FILE    shared secret file: authenticate peers (HMAC-SHA256)\n"
    "Reads and timing:\n"
    "  --read-mode MODE         linearizable (default, ReadIndex) | lease | local (stale)\n"
    "  --lease-ticks N          lease duration for --read-mode lease (default 5)\n"
    "  --tick-ms N              tick length in ms (default 10)\n"
    "  --election-ticks MIN:MAX election timeout range in ticks (default 10:20)\n"
    "  --heartbeat-ticks N      heartbeat interval in ticks (default 3)\n"
    "Capacity:\n"
    "  --max-pending N          proposals in flight before BUSY (default 16384)\n"
    "  --snapshot-entries N     snapshot every N applied entries (default 1000000; 0 = off)\n"
    "  --log-cache N            in-memory log entries, power of two (default 65536)\n"
    "  --cpus D,A,N,K           pin driver, apply, network, disk threads (needs >= 4 cpus)\n"
    "  --max-conns N            client connections (default 10000)\n"
    "  --verbose                log more (repeat for debug)\n"
    "  --help                   this text\n"
    "Testing only:\n"
    "  --test-power-cut-signal  run the disk through yggr's fault injector; on SIGUSR2,\n"
    "                           cut the power (writes not yet durable are lost, the last\n"
    "                           one torn) and _exit(137) at once, without any shutdown\n"
    "\n"
    "Stops cleanly on SIGINT or SIGTERM.\n";

struct kv_args {
    struct yggr_config cfg;
    struct yggr_peer peers[YGGR_MAX_MEMBERS];
    char *peer_addrs[YGGR_MAX_MEMBERS];
    const char *client_addr;
    const char *join;
    enum kv_read_mode read_mode;
    uint32_t max_conns;
    int verbose;
    bool power_cut_signal;
    uint8_t secret[1024];
};

static int die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "yggr-kv: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nrun 'yggr-kv --help' for usage\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_peer(struct kv_args *a, const char *v)
{
    const char *eq = strchr(v, '=');
    uint64_t id = 0;
    char idbuf[32];
    if (eq == NULL || (size_t)(eq - v) >= sizeof(idbuf)) {
        return -1;
    }
    memcpy(idbuf, v, (size_t)(eq - v));
    idbuf[eq - v] = '\0';
    if (parse_u64(idbuf, &id) != 0 || id == 0 || a->cfg.peer_count >= YGGR_MAX_MEMBERS - 1) {
        return -1;
    }
    uint32_t i = a->cfg.peer_count++;
    a->peer_addrs[i] = strdup(eq + 1);
    a->peers[i].id = id;
    a->peers[i].addr = a->peer_addrs[i];
    return 0;
}

static int parse_secret(struct kv_args *a, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "yggr-kv: cannot read --cluster-secret %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = fread(a->secret, 1, sizeof(a->secret), f);
    fclose(f);
    while (n > 0 && (a->secret[n - 1] == '\n' || a->secret[n - 1] == '\r')) {
        n--;
    }
    a->cfg.cluster_secret = a->secret;
    a->cfg.cluster_secret_len = (uint32_t)n;
    return 0;
}

static int parse_cpus(struct kv_args *a, const char *v)
{
    int c[4];
    if (sscanf(v, "%d,%d,%d,%d", &c[0], &c[1], &c[2], &c[3]) != 4) {
        return -1;
    }
    a->cfg.cpu_driver = c[0];
    a->cfg.cpu_apply = c[1];
    a->cfg.cpu_network = c[2];
    a->cfg.cpu_disk = c[3];
    return 0;
}

static int parse_mode(struct kv_args *a, const char *opt, const char *v)
{
    if (strcmp(opt, "--bootstrap") == 0) {
        static const char *names[] = {"new", "join", "recover", "auto"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(v, names[i]) == 0) {
                a->cfg.bootstrap = (enum yggr_bootstrap)(i + 1);
                return 0;
            }
        }
        return -1;
    }
    static const char *modes[] = {"linearizable", "lease", "local"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(v, modes[i]) == 0) {
            a->read_mode = (enum kv_read_mode)i;
            return 0;
        }
    }
    return -1;
}

/* Options taking a number. Returns 1 when `opt` is not one of them. */
static int parse_number_opt(struct kv_args *a, const char *opt, const char *v)
{
    uint64_t n = 0;
    if (strcmp(opt, "--election-ticks") == 0) {
        unsigned lo = 0;
        unsigned hi = 0;
        if (sscanf(v, "%u:%u", &lo, &hi) != 2) {
            return -1;
        }
        a->cfg.election_timeout_min_ticks = lo;
        a->cfg.election_timeout_max_ticks = hi;
        return 0;
    }
    static const char *names[] = {"--node-id",    "--tick-ms",          "--heartbeat-ticks",
                                  "--lease-ticks", "--max-pending",      "--snapshot-entries",
                                  "--log-cache",   "--max-conns"};
    int which = -1;
    for (int i = 0; i < 8; i++) {
        if (strcmp(opt, names[i]) == 0) {
            which = i;
        }
    }
    if (which < 0) {
        return 1;
    }
    if (parse_u64(v, &n) != 0 || n > UINT32_MAX) {
        return -1;
    }
    switch (which) {
    case 0: a->cfg.node_id = n; break;
    case 1: a->cfg.tick_ms = (uint32_t)n; break;
    case 2: a->cfg.heartbeat_interval_ticks = (uint32_t)n; break;
    case 3: a->cfg.lease_duration_ticks = (uint32_t)n; break;
    case 4: a->cfg.max_pending_proposals = (uint32_t)n; break;
    case 5: a->cfg.snapshot_threshold_entries = n; break;
    case 6: a->cfg.log_cache_entries = (uint32_t)n; break;
    default: a->max_conns = (uint32_t)n; break;
    }
    return 0;
}

static int parse_opt(struct kv_args *a, const char *opt, const char *v)
{
    int rc = parse_number_opt(a, opt, v);
    if (rc != 1) {
        return rc;
    }
    if (strcmp(opt, "--peer-addr") == 0) {
        a->cfg.listen_addr = v;
    } else if (strcmp(opt, "--client-addr") == 0) {
        a->client_addr = v;
    } else if (strcmp(opt, "--data-dir") == 0) {
        a->cfg.data_dir = v;
    } else if (strcmp(opt, "--peer") == 0) {
        return parse_peer(a, v);
    } else if (strcmp(opt, "--join") == 0) {
        a->join = v;
    } else if (strcmp(opt, "--bootstrap") == 0 || strcmp(opt, "--read-mode") == 0) {
        return parse_mode(a, opt, v);
    } else if (strcmp(opt, "--cpus") == 0) {
        return parse_cpus(a, v);
    } else if (strcmp(opt, "--cluster-secret") == 0) {
        return parse_secret(a, v);
    } else {
        return 1;
    }
    return 0;
}

static int parse_args(struct kv_args *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strcmp(opt, "--verbose") == 0 || strcmp(opt, "-v") == 0) {
            a->verbose++;
            continue;
        }
        if (strcmp(opt, "--test-power-cut-signal") == 0) {
            a->power_cut_signal = true;
            a->cfg.test_fault_injection = true;
            continue;
        }
        if (i + 1 >= argc) {
            return die_usage("option %s needs a value", opt);
        }
        int rc = parse_opt(a, opt, argv[++i]);
        if (rc == 1) {
            return die_usage("unknown option %s", opt);
        }
        if (rc != 0) {
            return die_usage("invalid value for %s", opt);
        }
    }
    if (a->cfg.node_id == 0 || a->cfg.listen_addr == NULL || a->client_addr == NULL ||
        a->cfg.data_dir == NULL) {
        return die_usage("%s", "--node-id, --peer-addr, --client-addr and --data-dir are required");
    }
    if (a->join != NULL && a->cfg.bootstrap == YGGR_BOOTSTRAP_AUTO) {
        a->cfg.bootstrap = YGGR_BOOTSTRAP_JOIN;
    }
    return 0;
}

/* Ask each --join address in turn to add us; retries until one succeeds (60 s). */
static void *join_cluster(void *arg)
{
    struct kv_args *a = arg;
    char req[256];
    snprintf(req, sizeof(req), "JOIN %llu %s\n", (unsigned long long)a->cfg.node_id,
             a->cfg.listen_addr);
    for (int attempt = 0; attempt < 120; attempt++) {
        char list[1024];
        snprintf(list, sizeof(list), "%s", a->join);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            struct sockaddr_in sa;
            int fd = kv_parse_addr(t, &sa) == 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
            char line[256] = "";
            if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
                ssize_t n = read(fd, line, sizeof(line) - 1);
                line[n > 0 ? n : 0] = '\0';
            }
            if (fd >= 0) {
                close(fd);
            }
            if (strncmp(line, "OK", 2) == 0) {
                fprintf(stderr, "yggr-kv: joined the cluster through %s\n", t);
                return NULL;
            }
        }
        sleep(1);
    }
    fprintf(stderr, "yggr-kv: could not join through %s after 120 attempts\n", a->join);
    return NULL;
}

/* Wait for SIGINT or SIGTERM and return it. SIGUSR2 (only in the set with
 * --test-power-cut-signal) is a power loss: nothing after it may reach the disk, and the
 * process dies at once like a machine without power (137 = killed by SIGKILL). */
static int wait_signal(const sigset_t *set, struct yggr_node *node)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0) {
            continue;
        }
        if (sig != SIGUSR2) {
            return sig;
        }
        int rc = yggr_node_power_cut(node);
        if (rc != 0) {
            fprintf(stderr, "yggr-kv: power cut failed: %s\n", yggr_strerror(rc));
            _exit(1);
        }
        static const char msg[] = "yggr-kv: SIGUSR2: power cut, exiting without shutdown\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)n;
        _exit(137);
    }
}

static void defaults(struct kv_args *a)
{
    memset(a, 0, sizeof(*a));
    yggr_config_init(&a->cfg, 0);
    a->cfg.tick_ms = 10;
    a->cfg.max_pending_proposals = 16384;
    a->cfg.max_pending_applies = 16384;
    a->cfg.max_pending_reads = 16384;
    a->cfg.snapshot_threshold_entries = 1000000;
    a->cfg.lease_duration_ticks = 0;
    a->cfg.peers = a->peers;
    a->max_conns = 10000;
}

int main(int argc, char **argv)
{
    static struct kv_args a;
    defaults(&a);
    int rc = parse_args(&a, argc, argv);
    if (rc != 0) {
        return rc;
    }
    if (a.read_mode == KV_READ_LEASE && a.cfg.lease_duration_ticks == 0) {
        a.cfg.lease_duration_ticks = 5;
    }
    a.cfg.log_level = a.verbose + 1;
    struct kv_map *map = kv_map_new();
    a.cfg.sm = kv_state_machine(map);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (a.power_cut_signal) {
        sigaddset(&set, SIGUSR2);
    }
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits: only sigwait sees them */
    signal(SIGPIPE, SIG_IGN);
    struct yggr_node *node = NULL;
    char why[512];
    rc = yggr_node_start(&a.cfg, &node, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "yggr-kv: cannot start node %llu: %s (%s)\n",
                (unsigned long long)a.cfg.node_id, why, yggr_strerror(rc));
        return 1;
    }
    struct kv_server_options so = {
        .client_addr = a.client_addr,
        .node = node,
        .map = map,
        .read_mode = a.read_mode,
        .node_id = a.cfg.node_id,
        .max_conns = a.max_conns,
        .verbose = a.verbose,
    };
    struct kv_server *server = NULL;
    if (kv_server_start(&so, &server, why, sizeof(why)) != 0) {
        fprintf(stderr, "yggr-kv: %s\n", why);
        yggr_node_stop(node);
        return 1;
    }
    fprintf(stderr, "yggr-kv: node %llu serving clients on %s, raft on %s\n",
            (unsigned long long)a.cfg.node_id, a.client_addr, a.cfg.listen_addr);
    if (a.join != NULL) {
        pthread_t t;
        pthread_create(&t, NULL, join_cluster, &a);
        pthread_detach(t);
    }
    int sig = wait_signal(&set, node);
    fprintf(stderr, "yggr-kv: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kv_server_quiesce(server);
    yggr_node_stop(node);
    kv_server_stop(server);
    kv_map_free(map);
    for (uint32_t i = 0; i < a.cfg.peer_count; i++) {
        free(a.peer_addrs[i]);
    }
    return 0;
}
