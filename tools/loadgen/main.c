/* SPDX-License-Identifier: MIT */
/* loadgen: drive a yggr-kv cluster (line protocol or RESP) and measure it. This file wires
 * the run: options, workers (threads), the once-a-second reporter, the final report. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    if (interrupted) {
        /* Second Ctrl-C: quit now (the history, if any, is left incomplete). */
        static const char msg[] = "\nloadgen: interrupted twice, exiting\n";
        ssize_t rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)rc;
        _exit(130);
    }
    interrupted = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int run_init(struct lg_run *run, const struct lg_options *opt)
{
    memset(run, 0, sizeof(*run));
    run->opt = opt;
    run->history_fd = -1;
    pthread_mutex_init(&run->lock, NULL);
    for (size_t i = 0; i < LG_SLOTS; i++) {
        run->slots[i].second = UINT64_MAX;
    }
    run->filler = malloc(opt->value_size);
    if (run->filler == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < opt->value_size; i++) {
        run->filler[i] = (char)('a' + i % 26);
    }
    if (opt->history_path != NULL) {
        run->history_fd =
            open(opt->history_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        if (run->history_fd < 0) {
            tool_warn("cannot create --history %s: %s", opt->history_path, strerror(errno));
            return -1;
        }
    }
    atomic_init(&run->leader, 0);
    atomic_init(&run->confirmed, LG_NODE_NONE);
    atomic_init(&run->rediscoveries, 0);
    atomic_init(&run->claimed, 0);
    atomic_init(&run->stop, false);
    run->start_us = tool_now_us();
    run->warm_end_us = run->start_us + (uint64_t)(opt->warmup_s * 1e6);
    run->stop_us =
        opt->requests > 0 ? UINT64_MAX : run->warm_end_us + (uint64_t)(opt->duration_s * 1e6);
    return 0;
}

static int start_workers(struct lg_run *run)
{
    const struct lg_options *opt = run->opt;
    run->worker_count = opt->threads;
    run->workers = calloc(opt->threads, sizeof(*run->workers));
    if (run->workers == NULL) {
        return -1;
    }
    sigset_t block;
    sigset_t old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* workers inherit the mask: main handles them */
    uint32_t first = 0;
    for (uint32_t i = 0; i < opt->threads; i++) {
        uint32_t count = opt->connections / opt->threads + (i < opt->connections % opt->threads);
        if (worker_init(&run->workers[i], run, i, first, count) != 0) {
            tool_warn("out of memory or file descriptors setting up %u connections",
                      opt->connections);
            return -1;
        }
        first += count;
        int rc = pthread_create(&run->workers[i].thread, NULL, worker_main, &run->workers[i]);
        if (rc != 0) {
            tool_warn("pthread_create: %s", strerror(rc));
            return -1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

/* Slot `second` is complete when every worker flushed it or finished. Called locked. */
static bool slot_complete(const struct lg_run *run, uint64_t second)
{
    for (uint32_t i = 0; i < run->worker_count; i++) {
        const struct lg_worker *w = &run->workers[i];
        if (!w->done && w->flushed_second <= second) {
            return false;
        }
    }
    return run->slots[second % LG_SLOTS].second == second;
}

/* Summarize and free a slot. Returns false for a final sliver (< 250 ms, the drain after the
 * last full second) whose ops/s would be noise; its requests still count in the totals. */
static bool summarize_slot(struct lg_run *run, struct lg_slot *slot, struct lg_second *out)
{
    memset(out, 0, sizeof(*out));
    if (slot->second > 0 && slot->span_us < 250000u) {
        slot->second = UINT64_MAX;
        return false;
    }
    double span = slot->span_us > 0 ? (double)slot->span_us : 1.0;
    out->t_s = ((double)slot->second * 1e6 + span) / 1e6;
    out->ops_per_sec = (double)slot->counts.ok * 1e6 / span;
    out->p50_us = hdr_percentile(&slot->hist, 50);
    out->p99_us = hdr_percentile(&slot->hist, 99);
    out->max_us = slot->hist.max;
    out->errors = counts_errors(&slot->counts);
    out->redirects = slot->counts.redirects;
    out->leader = run_leader(run);
    out->warmup = run->start_us + slot->second * 1000000u < run->warm_end_us;
    slot->second = UINT64_MAX;
    return true;
}

/* Print a progress line per completed second until every worker is done. */
static struct lg_second *report_loop(struct lg_run *run, size_t *count)
{
    size_t cap = 64;
    struct lg_second *series = malloc(cap * sizeof(*series));
    uint64_t next = 0;
    bool announced = false;
    TOOL_ASSERT(series != NULL);
    *count = 0;
    for (bool all_done = false; !all_done;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (interrupted && !announced) {
            atomic_store(&run->stop, true);
            fprintf(stderr, "\nloadgen: interrupted, draining requests in flight (Ctrl-C again "
                            "to quit now)\n");
            announced = true;
        }
        pthread_mutex_lock(&run->lock);
        size_t first = *count;
        while (slot_complete(run, next)) {
            if (*count == cap) {
                cap *= 2;
                series = realloc(series, cap * sizeof(*series));
                TOOL_ASSERT(series != NULL);
            }
            if (summarize_slot(run, &run->slots[next % LG_SLOTS], &series[*count])) {
                (*count)++;
            }
            next++;
        }
        all_done = true;
        for (uint32_t i = 0; i < run->worker_count; i++) {
            all_done = all_done && run->workers[i].done;
        }
        pthread_mutex_unlock(&run->lock);
        for (size_t i = first; i < *count && !run->opt->quiet; i++) {
            report_progress(run, &series[i]);
        }
    }
    return series;
}

static void merge_stats(const struct lg_run *run, struct lg_stats *total)
{
    memset(total, 0, sizeof(*total));
    hdr_reset(&total->total);
    hdr_reset(&total->reads);
    hdr_reset(&total->writes);
    for (uint32_t i = 0; i < run->worker_count; i++) {
        const struct lg_stats *s = &run->workers[i].stats;
        counts_add(&total->counts, &s->counts);
        counts_add(&total->all, &s->all);
        hdr_merge(&total->total, &s->total);
        hdr_merge(&total->reads, &s->reads);
        hdr_merge(&total->writes, &s->writes);
        total->last_ok_us = s->last_ok_us > total->last_ok_us ? s->last_ok_us : total->last_ok_us;
    }
}

static void announce(const struct lg_options *opt)
{
    printf("loadgen: %u node(s) starting at %s, %u connections x depth %u, %s, ", opt->node_count,
           opt->nodes[0].text, opt->connections, opt->depth,
           opt->protocol == PROTO_KIND_LINE ? "line protocol" : "RESP");
    if (opt->requests > 0) {
        printf("%llu requests", (unsigned long long)opt->requests);
    } else {
        printf("%.1f s", opt->duration_s);
    }
    printf("%s%s\n", opt->rate > 0 ? ", open loop" : ", closed loop",
           opt->history_path != NULL ? ", recording history" : "");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct lg_options opt;
    static struct lg_run run;
    tool_set_name("loadgen");
    int rc = options_parse(argc, argv, &opt);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    install_signals();
    announce(&opt);
    if (run_init(&run, &opt) != 0 || start_workers(&run) != 0) {
        return 1;
    }
    size_t series_count = 0;
    struct lg_second *series = report_loop(&run, &series_count);
    for (uint32_t i = 0; i < run.worker_count; i++) {
        pthread_join(run.workers[i].thread, NULL);
    }
    static struct lg_stats stats;
    merge_stats(&run, &stats);
    int status = report_final(&run, &stats, series, series_count) == 0 ? 0 : 1;
    if (opt.plot_path != NULL && plot_write(opt.plot_path, &run, &stats.total, series,
                                            series_count) != 0) {
        status = 1;
    }
    if (stats.all.ok == 0 && stats.all.connect_failures > 0) {
        tool_warn("no request succeeded and connecting failed %llu times: check --targets and "
                  "that the servers are running",
                  (unsigned long long)stats.all.connect_failures);
        status = 1;
    }
    if (run.history_fd >= 0 && close(run.history_fd) != 0) {
        tool_warn("closing --history %s: %s", opt.history_path, strerror(errno));
        status = 1;
    }
    for (uint32_t i = 0; i < run.worker_count; i++) {
        worker_deinit(&run.workers[i]);
    }
    free(run.workers);
    free(run.filler);
    free(series);
    return status;
}
