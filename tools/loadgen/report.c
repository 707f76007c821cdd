/* SPDX-License-Identifier: MIT */
/* loadgen reports: the per-second progress line, the final summary and the --json file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loadgen.h"

/* "123us", "12.3ms" or "1.23s" into buf. */
static const char *fmt_latency(char *buf, size_t size, uint64_t us)
{
    if (us < 10000u) {
        snprintf(buf, size, "%lluus", (unsigned long long)us);
    } else if (us < 10000000u) {
        snprintf(buf, size, "%.1fms", (double)us / 1000.0);
    } else {
        snprintf(buf, size, "%.2fs", (double)us / 1e6);
    }
    return buf;
}

void report_progress(const struct lg_run *run, const struct lg_second *s)
{
    const struct lg_options *opt = run->opt;
    char p50[32];
    char p99[32];
    printf("[%6.1fs] %10.0f ops/s  p50 %8s  p99 %8s  errors %llu  redirects %llu  leader %u "
           "(%s)%s\n",
           s->t_s, s->ops_per_sec, fmt_latency(p50, sizeof(p50), s->p50_us),
           fmt_latency(p99, sizeof(p99), s->p99_us), (unsigned long long)s->errors,
           (unsigned long long)s->redirects, opt->node_ids[s->leader], opt->nodes[s->leader].text,
           s->warmup ? "  warmup" : "");
    fflush(stdout);
}

static double measured_seconds(const struct lg_run *run, const struct lg_stats *stats)
{
    if (stats->last_ok_us <= run->warm_end_us) {
        return 0.0;
    }
    return (double)(stats->last_ok_us - run->warm_end_us) / 1e6;
}

static void print_summary(const struct lg_run *run, const struct lg_stats *st, double secs)
{
    const struct lg_options *opt = run->opt;
    const struct lg_counts *c = &st->counts;
    uint32_t leader = run_leader(run);
    printf("\nloadgen: %u connections x depth %u, %s protocol, %s, %.1f s measured "
           "(+%.1f s warmup), %u thread(s)\n",
           opt->connections, opt->depth, opt->protocol == PROTO_KIND_LINE ? "line" : "resp",
           opt->rate > 0 ? "open loop" : "closed loop", secs, opt->warmup_s, opt->threads);
    printf("ops:      %llu ok (reads %llu, writes %llu, deletes %llu)  %.1f ops/s\n",
           (unsigned long long)c->ok, (unsigned long long)c->reads,
           (unsigned long long)c->writes, (unsigned long long)c->deletes,
           secs > 0 ? (double)c->ok / secs : 0.0);
    printf("latency:  p50 %lluus  p90 %lluus  p99 %lluus  p99.9 %lluus  max %lluus  "
           "mean %.1fus\n",
           (unsigned long long)hdr_percentile(&st->total, 50),
           (unsigned long long)hdr_percentile(&st->total, 90),
           (unsigned long long)hdr_percentile(&st->total, 99),
           (unsigned long long)hdr_percentile(&st->total, 99.9),
           (unsigned long long)st->total.max, hdr_mean(&st->total));
    printf("          reads p50 %lluus p99 %lluus; writes p50 %lluus p99 %lluus\n",
           (unsigned long long)hdr_percentile(&st->reads, 50),
           (unsigned long long)hdr_percentile(&st->reads, 99),
           (unsigned long long)hdr_percentile(&st->writes, 50),
           (unsigned long long)hdr_percentile(&st->writes, 99));
    printf("errors:   %llu (", (unsigned long long)counts_errors(c));
    for (int i = 0; i < LG_ERR_COUNT; i++) {
        printf("%s%s %llu", i == 0 ? "" : ", ", lg_err_names[i],
               (unsigned long long)c->errors[i]);
    }
    printf(")\nindeterminate writes %llu, redirects %llu, connect failures %llu, leader "
           "changes %u (leader searches %llu); leader now node %u (%s)\n",
           (unsigned long long)st->all.indeterminate, (unsigned long long)c->redirects,
           (unsigned long long)c->connect_failures, run->event_count,
           (unsigned long long)atomic_load(&run->rediscoveries), opt->node_ids[leader],
           opt->nodes[leader].text);
}

static void json_latency(FILE *f, const char *name, const struct hdr *h)
{
    fprintf(f,
            "  \"%s\": {\"count\": %llu, \"p50_us\": %llu, \"p90_us\": %llu, \"p99_us\": %llu, "
            "\"p999_us\": %llu, \"max_us\": %llu, \"mean_us\": %.1f},\n",
            name, (unsigned long long)h->count, (unsigned long long)hdr_percentile(h, 50),
            (unsigned long long)hdr_percentile(h, 90), (unsigned long long)hdr_percentile(h, 99),
            (unsigned long long)hdr_percentile(h, 99.9), (unsigned long long)h->max,
            hdr_mean(h));
}

static void json_config(FILE *f, const struct lg_options *opt)
{
    fprintf(f, "  \"config\": {\"nodes\": [");
    for (uint32_t i = 0; i < opt->node_count; i++) {
        fprintf(f, "%s{\"id\": %u, \"addr\": \"%s\"}", i == 0 ? "" : ", ", opt->node_ids[i],
                opt->nodes[i].text);
    }
    fprintf(f,
            "], \"protocol\": \"%s\", \"connections\": %u, \"depth\": %u, \"threads\": %u, "
            "\"value_size\": %u, \"keys\": %u, \"read_ratio\": %g, \"delete_ratio\": %g, "
            "\"rate\": %g, \"warmup_s\": %g, \"timeout_ms\": %llu, \"seed\": %llu},\n",
            opt->protocol == PROTO_KIND_LINE ? "line" : "resp", opt->connections, opt->depth,
            opt->threads, opt->value_size, opt->keys, opt->read_ratio, opt->delete_ratio,
            opt->rate, opt->warmup_s, (unsigned long long)(opt->timeout_us / 1000u),
            (unsigned long long)opt->seed);
}

static void json_timeline(FILE *f, const struct lg_run *run, const struct lg_second *series,
                          size_t count)
{
    const struct lg_options *opt = run->opt;
    fprintf(f, "  \"timeline\": [");
    for (size_t i = 0; i < count; i++) {
        const struct lg_second *s = &series[i];
        fprintf(f,
                "%s\n    {\"t_s\": %.3f, \"ops_per_sec\": %.1f, \"p50_us\": %llu, \"p99_us\": "
                "%llu, \"max_us\": %llu, \"errors\": %llu, \"redirects\": %llu, \"leader\": %u, "
                "\"warmup\": %s}",
                i == 0 ? "" : ",", s->t_s, s->ops_per_sec, (unsigned long long)s->p50_us,
                (unsigned long long)s->p99_us, (unsigned long long)s->max_us,
                (unsigned long long)s->errors, (unsigned long long)s->redirects,
                opt->node_ids[s->leader], s->warmup ? "true" : "false");
    }
    fprintf(f, "\n  ],\n  \"leader_events\": [");
    for (uint32_t i = 0; i < run->event_count; i++) {
        const struct lg_event *e = &run->events[i];
        fprintf(f, "%s\n    {\"t_s\": %.6f, \"from\": %u, \"to\": %u}", i == 0 ? "" : ",",
                (double)e->at_us / 1e6, opt->node_ids[e->from], opt->node_ids[e->to]);
    }
    fprintf(f, "\n  ]\n");
}

static int write_json(const struct lg_run *run, const struct lg_stats *st, double secs,
                      const struct lg_second *series, size_t count)
{
    const struct lg_options *opt = run->opt;
    const struct lg_counts *c = &st->counts;
    FILE *f = fopen(opt->json_path, "w");
    if (f == NULL) {
        tool_warn("cannot write --json %s: %s", opt->json_path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"ops_per_sec\": %.1f,\n", secs > 0 ? (double)c->ok / secs : 0.0);
    fprintf(f, "  \"p50_us\": %llu,\n  \"p90_us\": %llu,\n  \"p99_us\": %llu,\n",
            (unsigned long long)hdr_percentile(&st->total, 50),
            (unsigned long long)hdr_percentile(&st->total, 90),
            (unsigned long long)hdr_percentile(&st->total, 99));
    fprintf(f, "  \"p999_us\": %llu,\n  \"max_us\": %llu,\n  \"mean_us\": %.1f,\n",
            (unsigned long long)hdr_percentile(&st->total, 99.9),
            (unsigned long long)st->total.max, hdr_mean(&st->total));
    fprintf(f, "  \"errors\": %llu,\n  \"errors_by_kind\": {", (unsigned long long)counts_errors(c));
    for (int i = 0; i < LG_ERR_COUNT; i++) {
        fprintf(f, "%s\"%s\": %llu", i == 0 ? "" : ", ", lg_err_names[i],
                (unsigned long long)c->errors[i]);
    }
    fprintf(f,
            "},\n  \"ops\": %llu,\n  \"reads\": %llu,\n  \"writes\": %llu,\n  \"deletes\": %llu,"
            "\n  \"indeterminate_writes\": %llu,\n  \"redirects\": %llu,\n"
            "  \"connect_failures\": %llu,\n  \"leader_changes\": %u,\n"
            "  \"leader_searches\": %llu,\n  \"duration_s\": %.3f,\n",
            (unsigned long long)c->ok, (unsigned long long)c->reads,
            (unsigned long long)c->writes, (unsigned long long)c->deletes,
            (unsigned long long)st->all.indeterminate, (unsigned long long)c->redirects,
            (unsigned long long)c->connect_failures, run->event_count,
            (unsigned long long)atomic_load(&run->rediscoveries), secs);
    uint32_t leader = run_leader(run);
    fprintf(f, "  \"leader\": {\"id\": %u, \"addr\": \"%s\"},\n", opt->node_ids[leader],
            opt->nodes[leader].text);
    json_latency(f, "read_latency", &st->reads);
    json_latency(f, "write_latency", &st->writes);
    json_config(f, opt);
    json_timeline(f, run, series, count);
    fprintf(f, "}\n");
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        tool_warn("writing --json %s failed: %s", opt->json_path, strerror(errno));
    }
    return rc;
}

int report_final(const struct lg_run *run, const struct lg_stats *stats,
                 const struct lg_second *series, size_t series_count)
{
    double secs = measured_seconds(run, stats);
    print_summary(run, stats, secs);
    if (run->opt->json_path != NULL) {
        return write_json(run, stats, secs, series, series_count);
    }
    return 0;
}
