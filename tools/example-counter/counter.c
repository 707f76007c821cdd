/* SPDX-License-Identifier: MIT */
#define _DEFAULT_SOURCE /* mkdtemp, usleep */
/* example-counter: three yggr nodes in one process replicating a counter. Built only
 * against the installed <yggr/yggr.h> and `pkg-config yggr` (tools/check-install.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yggr/yggr.h>

/* The state machine: a counter. Commands are 8-byte increments; the reply is the total. */
struct counter {
    uint64_t total;
};

static void counter_apply(void *ctx, const struct yggr_command *cmd, struct yggr_reply *reply)
{
    struct counter *c = ctx;
    uint64_t add = 0;
    memcpy(&add, cmd->data, cmd->len < sizeof(add) ? cmd->len : sizeof(add));
    c->total += add;
    yggr_reply_set(reply, &c->total, sizeof(c->total));
}

static int counter_snapshot(void *ctx, struct yggr_snapshot_writer *w)
{
    struct counter *c = ctx;
    return yggr_snapshot_write(w, &c->total, sizeof(c->total));
}

static int counter_restore(void *ctx, struct yggr_snapshot_reader *r)
{
    struct counter *c = ctx;
    long n = yggr_snapshot_read(r, &c->total, sizeof(c->total));
    return n == (long)sizeof(c->total) ? 0 : YGGR_ERR_CORRUPT;
}

static void on_read(void *ctx, int err, uint64_t leader_hint, void *sm)
{
    (void)leader_hint;
    uint64_t *out = ctx;
    *out = err == 0 ? ((struct counter *)sm)->total : UINT64_MAX;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    unsigned port = argc > 2 ? (unsigned)atoi(argv[2]) : 26100;
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/yggr-example-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char addr[3][32], data[3][300];
    struct yggr_peer peers[3][2];
    struct counter sm[3] = {{0}};
    struct yggr_node *node[3] = {NULL};
    for (int i = 0; i < 3; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%u", port + (unsigned)i);
        snprintf(data[i], sizeof(data[i]), "%s/n%d", dir, i + 1);
    }
    for (int i = 0; i < 3; i++) {
        struct yggr_config cfg;
        yggr_config_init(&cfg, (uint64_t)i + 1);
        for (int j = 0, k = 0; j < 3; j++) {
            if (j != i) {
                peers[i][k].id = (uint64_t)j + 1;
                peers[i][k++].addr = addr[j];
            }
        }
        cfg.peers = peers[i];
        cfg.peer_count = 2;
        cfg.data_dir = data[i];
        cfg.listen_addr = addr[i];
        cfg.tick_ms = 10;
        cfg.sm = (struct yggr_state_machine){.ctx = &sm[i],
                                             .apply = counter_apply,
                                             .snapshot = counter_snapshot,
                                             .restore = counter_restore};
        char why[256];
        int rc = yggr_node_start(&cfg, &node[i], why, sizeof(why));
        if (rc != 0) {
            fprintf(stderr, "node %d: %s (%s)\n", i + 1, why, yggr_strerror(rc));
            return 1;
        }
    }
    /* Propose ten increments through whichever node is leader (follow redirects). */
    uint64_t total = 0;
    int leader = 0;
    for (uint64_t v = 1; v <= 10;) {
        uint64_t hint = 0;
        int rc = yggr_propose_sync(node[leader], &v, sizeof(v), &total, sizeof(total), NULL,
                                   NULL, &hint, 5000);
        if (rc == 0) {
            v++;
        } else if (rc == YGGR_ERR_NOT_LEADER && hint >= 1 && hint <= 3) {
            leader = (int)hint - 1;
        } else {
            leader = (leader + 1) % 3; /* no leader yet: try the next node shortly */
            usleep(20000);
        }
    }
    uint64_t seen = UINT64_MAX;
    yggr_read(node[leader], YGGR_READ_LINEARIZABLE, on_read, &seen);
    for (int i = 0; i < 500 && seen == UINT64_MAX; i++) {
        usleep(10000);
    }
    printf("example-counter: leader is node %d, total %llu, linearizable read %llu\n",
           leader + 1, (unsigned long long)total, (unsigned long long)seen);
    for (int i = 0; i < 3; i++) {
        yggr_node_stop(node[i]);
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        return 1;
    }
    return total == 55 && seen == 55 ? 0 : 1;
}
