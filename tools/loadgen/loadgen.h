/* SPDX-License-Identifier: MIT */
/* loadgen: shared types of the load generator (options, run state, workers, connections). */
#ifndef YGGR_TOOLS_LOADGEN_LOADGEN_H
#define YGGR_TOOLS_LOADGEN_LOADGEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tool.h"
#include "hdr.h"
#include "proto.h"

#define LG_NODES_MAX    64
#define LG_THREADS_MAX  8
#define LG_SLOTS        64 /* per-second slots in flight between workers and the reporter */
#define LG_EVENTS_MAX   4096
#define LG_RETRIES_MAX  8 /* redirect retries of one request before giving up */
#define LG_KEY_TEXT_MAX 24

/* Failure kinds counted per request (the JSON "errors_by_kind" keys, in this order). */
enum lg_err {
    LG_ERR_ERROR_REPLY,   /* ERROR / PARSE_ERROR / RESP -ERR reply */
    LG_ERR_TIMEOUT,       /* no reply within --timeout (connection closed) */
    LG_ERR_CONN_LOST,     /* connection closed or reset with the request in flight */
    LG_ERR_BAD_REPLY,     /* unparsable reply or a reply that does not fit the request */
    LG_ERR_CORRUPT_VALUE, /* a read returned a value loadgen never wrote (filler mismatch) */
    LG_ERR_REDIRECTS,     /* gave up after LG_RETRIES_MAX redirects */
    LG_ERR_COUNT,
};

extern const char *const lg_err_names[LG_ERR_COUNT];

struct lg_options {
    struct tool_addr nodes[LG_NODES_MAX];
    uint32_t node_ids[LG_NODES_MAX];
    uint32_t node_count;
    enum proto_kind protocol;
    uint32_t connections;
    uint32_t depth;
    uint32_t threads;
    uint32_t value_size;
    uint32_t keys;
    uint32_t key_offset;
    double read_ratio;
    double delete_ratio;
    double duration_s;
    double warmup_s;
    uint64_t requests; /* 0 = run for duration_s */
    double rate;       /* 0 = closed loop */
    uint64_t timeout_us;
    uint64_t seed;
    const char *json_path;
    const char *history_path;
    const char *plot_path;
    bool quiet;
};

/* Counters of one interval or of the whole run. */
struct lg_counts {
    uint64_t ok;
    uint64_t reads;
    uint64_t writes;
    uint64_t deletes;
    uint64_t redirects;
    uint64_t indeterminate;
    uint64_t connect_failures;
    uint64_t errors[LG_ERR_COUNT];
};

/* One per-second slot filled by the workers and consumed by the reporter. */
struct lg_slot {
    uint64_t second; /* UINT64_MAX = free */
    uint64_t span_us;
    struct lg_counts counts;
    struct hdr hist;
};

/* One reported second (reporter-owned; also drives the plot and the JSON). */
struct lg_second {
    double t_s; /* end of the second, since start */
    double ops_per_sec;
    uint64_t p50_us;
    uint64_t p99_us;
    uint64_t max_us;
    uint64_t errors;
    uint64_t redirects;
    uint32_t leader;
    bool warmup;
};

/* A leader change: a write succeeded on another node than the previous successful write
 * (so redirect ping-pong while searching for the leader does not count). */
struct lg_event {
    uint64_t at_us;
    uint32_t from;
    uint32_t to;
};

#define LG_NODE_NONE UINT32_MAX

struct lg_worker;

/* Shared run state. Fields marked "shared" are touched by several threads. */
struct lg_run {
    const struct lg_options *opt;
    uint64_t start_us;
    uint64_t warm_end_us;
    uint64_t stop_us;        /* issuing stops here (UINT64_MAX with --requests) */
    _Atomic uint32_t leader;    /* shared: node index where connections go (leader hint) */
    _Atomic uint32_t confirmed; /* shared: node of the last successful write, or NONE */
    _Atomic uint64_t rediscoveries; /* shared: leader-hint changes (redirects, failures) */
    _Atomic uint64_t claimed; /* shared: requests claimed against --requests */
    _Atomic bool stop;        /* shared: stop issuing (SIGINT or --requests reached) */
    pthread_mutex_t lock;     /* guards slots, events, worker progress, history_fd writes */
    struct lg_slot slots[LG_SLOTS];
    struct lg_event events[LG_EVENTS_MAX];
    uint32_t event_count;
    uint64_t events_dropped;
    int history_fd; /* -1 without --history */
    char *filler;   /* value filler, value_size bytes (owned) */
    struct lg_worker *workers;
    uint32_t worker_count;
};

enum lg_conn_state { LG_CONN_DOWN, LG_CONN_CONNECTING, LG_CONN_READY };

/* One request in flight (or waiting for a redirect retry). */
struct lg_op {
    uint64_t intended_us; /* latency origin: first attempt / open-loop schedule time */
    uint64_t invoke_us;   /* when this attempt was sent (history invoke time) */
    uint64_t seq;
    uint32_t key;
    uint8_t kind; /* enum op_kind */
    uint8_t retries;
};

/* A ring of requests, capacity fixed at init. */
struct lg_ring {
    struct lg_op *ops;
    uint32_t head;
    uint32_t count;
    uint32_t capacity;
};

struct lg_conn {
    int fd;
    enum lg_conn_state state;
    uint32_t client;  /* global client id (history "client") */
    uint32_t node;    /* node index connected (or connecting) to */
    int32_t move_to;  /* node index to move to once drained; -1 = none */
    struct lg_ring inflight;
    struct lg_ring retry;
    char *out;
    size_t out_len;
    size_t out_sent;
    size_t out_cap;
    char *in;
    size_t in_len;
    size_t in_cap;
    bool want_out;
    uint64_t retry_at_us;
    uint64_t backoff_us;
    uint64_t pause_until_us;
    uint64_t connect_started_us;
    uint64_t next_seq;
    uint64_t rng;
    uint32_t redirect_streak;
    uint32_t error_streak;
};

/* Per-thread totals. */
struct lg_stats {
    struct lg_counts counts; /* measured window only (after warmup) */
    struct lg_counts all;    /* whole run, warmup included */
    struct hdr total;
    struct hdr reads;
    struct hdr writes;
    uint64_t last_ok_us;
};

struct lg_worker {
    struct lg_run *run;
    uint32_t index;
    int epfd;
    pthread_t thread;
    struct lg_conn *conns;
    uint32_t conn_count;
    struct lg_stats stats;
    struct hdr interval;
    struct lg_counts interval_counts;
    uint64_t second;         /* current (unflushed) second */
    uint64_t flushed_second; /* guarded by run->lock: seconds < this are flushed */
    bool done;               /* guarded by run->lock */
    /* open loop */
    double op_interval_us;
    uint64_t scheduled;
    uint32_t rr;
    uint64_t next_timeout_scan_us;
    /* history buffer */
    char *hbuf;
    size_t hlen;
    size_t hcap;
};

/* options.c */
int options_parse(int argc, char **argv, struct lg_options *opt);

/* worker.c */
int worker_init(struct lg_worker *w, struct lg_run *run, uint32_t index, uint32_t first_client,
                uint32_t conn_count);
void worker_deinit(struct lg_worker *w);
void *worker_main(void *arg);

/* run.c: shared-state helpers used by workers. */
/* Move the leader hint to `to`: unconditionally (named=true: a redirect named it) or only if
 * it still points at `from` (a failure there). */
void run_set_leader(struct lg_run *run, uint32_t from, uint32_t to, bool named);
/* A write succeeded on `node`: record a leader change when it moved. */
void run_confirm_leader(struct lg_run *run, uint32_t node, uint64_t now_us);
/* The leader to show: the confirmed one, else the hint. */
uint32_t run_leader(const struct lg_run *run);
void run_flush_second(struct lg_run *run, struct lg_worker *w, uint64_t span_us);
void run_worker_done(struct lg_run *run, struct lg_worker *w);
void counts_add(struct lg_counts *dst, const struct lg_counts *src);
uint64_t counts_errors(const struct lg_counts *c);

/* history.c */
void history_record(struct lg_worker *w, const struct lg_conn *c, const struct lg_op *op,
                    uint64_t complete_us, const char *result, const char *read_value,
                    size_t read_len, bool read_raw);
void history_flush(struct lg_worker *w);
/* Format the unique id "c<client>-s<seq>" into dst (>= 48 bytes); returns its length. */
size_t history_value_id(char *dst, uint32_t client, uint64_t seq);

/* report.c */
void report_progress(const struct lg_run *run, const struct lg_second *s);
int report_final(const struct lg_run *run, const struct lg_stats *stats,
                 const struct lg_second *series, size_t series_count);

/* plot.c */
int plot_write(const char *path, const struct lg_run *run, const struct hdr *total,
               const struct lg_second *series, size_t series_count);

#endif /* YGGR_TOOLS_LOADGEN_LOADGEN_H */
