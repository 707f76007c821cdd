/* SPDX-License-Identifier: MIT */
/* loadgen --plot: a self-contained SVG (no scripts, fonts or external tools) with three
 * panels: ops/s over time, p50/p99 latency over time (log scale), and the latency
 * distribution (percentile spectrum, HdrHistogram style). Warmup is shaded; seconds with
 * errors get red marks; leader changes are dashed orange lines labelled with the new leader. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loadgen.h"

#define SVG_W   960.0
#define PANEL_H 220.0
#define LEFT    80.0
#define RIGHT   30.0
#define GAP     70.0
#define TOP     60.0

/* A panel: pixel box and data ranges (y may be log10). */
struct panel {
    double x0, y0, w, h;
    double xmin, xmax, ymin, ymax;
    bool ylog;
};

static double px(const struct panel *p, double x)
{
    double span = p->xmax > p->xmin ? p->xmax - p->xmin : 1.0;
    return p->x0 + (x - p->xmin) / span * p->w;
}

static double py(const struct panel *p, double y)
{
    double lo = p->ymin;
    double hi = p->ymax;
    if (p->ylog) {
        y = log10(y < 1.0 ? 1.0 : y);
        lo = log10(lo);
        hi = log10(hi);
    }
    double span = hi > lo ? hi - lo : 1.0;
    double v = (y - lo) / span;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return p->y0 + p->h - v * p->h;
}

static void draw_frame(FILE *f, const struct panel *p, const char *title, const char *ylabel)
{
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' class='frame'/>\n", p->x0,
            p->y0, p->w, p->h);
    fprintf(f, "<text x='%.1f' y='%.1f' class='title'>%s</text>\n", p->x0, p->y0 - 10, title);
    fprintf(f,
            "<text x='%.1f' y='%.1f' class='axis' transform='rotate(-90 %.1f %.1f)'>%s</text>\n",
            p->x0 - 60, p->y0 + p->h / 2, p->x0 - 60, p->y0 + p->h / 2, ylabel);
}

/* 1-2-5 step giving about `ticks` intervals over range. */
static double nice_step(double range, int ticks)
{
    double raw = range > 0 ? range / ticks : 1.0;
    double mag = pow(10.0, floor(log10(raw)));
    double norm = raw / mag;
    return (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
}

/* 950, 12.5k, 1.2M; with us=true: 950us, 12.5ms, 1.2s. */
static void fmt_value(char *buf, size_t size, double v, bool us)
{
    if (us) {
        if (v < 1000) {
            snprintf(buf, size, "%gus", v);
        } else if (v < 1e6) {
            snprintf(buf, size, "%.3gms", v / 1e3);
        } else {
            snprintf(buf, size, "%.3gs", v / 1e6);
        }
    } else if (v >= 1e6) {
        snprintf(buf, size, "%.3gM", v / 1e6);
    } else if (v >= 1e3) {
        snprintf(buf, size, "%.3gk", v / 1e3);
    } else {
        snprintf(buf, size, "%.3g", v);
    }
}

static void y_tick(FILE *f, const struct panel *p, double v, bool us)
{
    char label[32];
    double y = py(p, v);
    fmt_value(label, sizeof(label), v, us);
    fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='grid'/>\n", p->x0, y,
            p->x0 + p->w, y);
    fprintf(f, "<text x='%.1f' y='%.1f' class='tick' text-anchor='end'>%s</text>\n", p->x0 - 4,
            y + 4, label);
}

/* Round a linear panel's ymax up to a 1-2-5 tick (before anything is drawn). */
static void round_ymax(struct panel *p)
{
    double step = nice_step(p->ymax - p->ymin, 5);
    p->ymax = p->ymin + ceil((p->ymax - p->ymin) / step) * step;
}

/* Linear panels: 1-2-5 ticks. Log panels: powers of ten. */
static void draw_y_ticks(FILE *f, const struct panel *p, bool us)
{
    if (p->ylog) {
        for (double v = p->ymin; v <= p->ymax * 1.0001; v *= 10) {
            y_tick(f, p, v, us);
        }
        return;
    }
    double step = nice_step(p->ymax - p->ymin, 5);
    for (double v = p->ymin; v <= p->ymax + step / 2; v += step) {
        y_tick(f, p, v, us);
    }
}

static void draw_x_ticks(FILE *f, const struct panel *p, const char *unit)
{
    double step = nice_step(p->xmax - p->xmin, 8);
    for (double v = ceil(p->xmin / step) * step; v <= p->xmax + step / 1000; v += step) {
        fprintf(f, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%g%s</text>\n",
                px(p, v), p->y0 + p->h + 14, v, unit);
    }
}

/* Warmup shading, error marks and leader-change lines over a time panel. */
static void draw_marks(FILE *f, const struct panel *p, const struct lg_run *run,
                       const struct lg_second *series, size_t count)
{
    double warm = run->opt->warmup_s;
    if (warm > 0) {
        fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' class='warmup'/>\n",
                p->x0, p->y0, px(p, warm) - p->x0, p->h);
    }
    for (size_t i = 0; i < count; i++) {
        if (series[i].errors > 0) {
            double x = px(p, series[i].t_s - 0.5);
            fprintf(f,
                    "<rect x='%.1f' y='%.1f' width='4' height='8' class='err'><title>%llu "
                    "errors at %.0fs</title></rect>\n",
                    x - 2, p->y0 + p->h - 8, (unsigned long long)series[i].errors,
                    series[i].t_s);
        }
    }
    for (uint32_t i = 0; i < run->event_count; i++) {
        const struct lg_event *e = &run->events[i];
        double x = px(p, (double)e->at_us / 1e6);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' class='leader'/>\n", x, p->y0,
                x, p->y0 + p->h);
        fprintf(f, "<text x='%.1f' y='%.1f' class='leader-label'>n%u</text>\n", x + 2,
                p->y0 + 10, run->opt->node_ids[e->to]);
    }
}

static void draw_series(FILE *f, const struct panel *p, const struct lg_second *series,
                        size_t count, int field, const char *cls)
{
    fprintf(f, "<polyline class='%s' points='", cls);
    for (size_t i = 0; i < count; i++) {
        double v = field == 0   ? series[i].ops_per_sec
                   : field == 1 ? (double)series[i].p99_us
                                : (double)series[i].p50_us;
        fprintf(f, "%.1f,%.1f ", px(p, series[i].t_s), py(p, v));
    }
    fprintf(f, "'/>\n");
}

static double series_max(const struct lg_second *series, size_t count, int field)
{
    double m = 1.0;
    for (size_t i = 0; i < count; i++) {
        double v = field == 0 ? series[i].ops_per_sec : (double)series[i].p99_us;
        m = v > m ? v : m;
    }
    return m;
}

static void time_panels(FILE *f, const struct lg_run *run, const struct lg_second *series,
                        size_t count)
{
    double tmax = count > 0 ? series[count - 1].t_s : 1.0;
    struct panel ops = {LEFT, TOP, SVG_W - LEFT - RIGHT, PANEL_H, 0, tmax, 0,
                        series_max(series, count, 0) * 1.1, false};
    round_ymax(&ops);
    draw_frame(f, &ops, "Throughput (ops/s, per second)", "ops/s");
    draw_y_ticks(f, &ops, false);
    draw_x_ticks(f, &ops, "s");
    draw_marks(f, &ops, run, series, count);
    draw_series(f, &ops, series, count, 0, "ops");

    struct panel lat = ops;
    lat.y0 = TOP + PANEL_H + GAP;
    lat.ylog = true;
    lat.ymin = 1.0;
    lat.ymax = pow(10.0, ceil(log10(series_max(series, count, 1) * 1.5)));
    draw_frame(f, &lat, "Latency over time (log scale): p99 (red), p50 (blue)", "latency");
    draw_y_ticks(f, &lat, true);
    draw_x_ticks(f, &lat, "s");
    draw_marks(f, &lat, run, series, count);
    draw_series(f, &lat, series, count, 1, "p99");
    draw_series(f, &lat, series, count, 2, "p50");
}

/* Percentile spectrum: x = log10(1 / (1 - p)) ("nines"), y = latency (log). */
static void distribution_panel(FILE *f, const struct hdr *total)
{
    struct panel d = {LEFT, TOP + 2 * (PANEL_H + GAP), SVG_W - LEFT - RIGHT, PANEL_H, 0, 5, 1,
                      10, true};
    d.ymax = pow(10.0, ceil(log10((double)(total->max > 1 ? total->max : 10) * 1.5)));
    draw_frame(f, &d, "Latency distribution (measured window; x: percentile)", "latency");
    draw_y_ticks(f, &d, true);
    static const char *const labels[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    for (int i = 0; i <= 5; i++) {
        fprintf(f, "<text x='%.1f' y='%.1f' class='tick' text-anchor='middle'>%s</text>\n",
                px(&d, i), d.y0 + d.h + 14, labels[i]);
    }
    if (total->count == 0) {
        fprintf(f, "<text x='%.1f' y='%.1f' class='title'>no successful operations</text>\n",
                d.x0 + 20, d.y0 + d.h / 2);
        return;
    }
    fprintf(f, "<polyline class='dist' points='");
    uint64_t seen = 0;
    for (size_t i = 0; i < HDR_BUCKETS; i++) {
        if (total->counts[i] == 0) {
            continue;
        }
        double before = (double)seen / (double)total->count;
        seen += total->counts[i];
        double after = (double)seen / (double)total->count;
        double y = py(&d, (double)hdr_bucket_high(i));
        for (int k = 0; k < 2; k++) {
            double q = k == 0 ? before : after;
            double nines = q >= 0.99999 ? 5.0 : log10(1.0 / (1.0 - q));
            fprintf(f, "%.1f,%.1f ", px(&d, nines), y);
        }
    }
    fprintf(f, "'/>\n");
}

int plot_write(const char *path, const struct lg_run *run, const struct hdr *total,
               const struct lg_second *series, size_t series_count)
{
    TOOL_ASSERT(path != NULL);
    TOOL_ASSERT(run != NULL);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        tool_warn("cannot write --plot %s: %s", path, strerror(errno));
        return -1;
    }
    double h = TOP + 3 * PANEL_H + 2 * GAP + 40;
    fprintf(f,
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
            "viewBox='0 0 %.0f %.0f' font-family='sans-serif'>\n"
            "<style>.frame{fill:#fff;stroke:#444}.grid{stroke:#ddd}.title{font-size:14px}"
            ".axis{font-size:12px;text-anchor:middle}.tick{font-size:10px;fill:#444}"
            ".ops{fill:none;stroke:#2a7;stroke-width:1.5}.p99{fill:none;stroke:#c33;"
            "stroke-width:1.5}.p50{fill:none;stroke:#36c;stroke-width:1.5}"
            ".dist{fill:none;stroke:#639;stroke-width:1.5}.warmup{fill:#eee}.err{fill:#d00}"
            ".leader{stroke:#e80;stroke-dasharray:4 3}.leader-label{font-size:10px;fill:#e80}"
            "</style>\n<rect width='100%%' height='100%%' fill='#fafafa'/>\n",
            SVG_W, h, SVG_W, h);
    fprintf(f,
            "<text x='%.0f' y='24' font-size='16'>loadgen: %u connections x depth %u, %s, "
            "%s</text>\n",
            LEFT, run->opt->connections, run->opt->depth,
            run->opt->protocol == PROTO_KIND_LINE ? "line protocol" : "RESP",
            run->opt->rate > 0 ? "open loop" : "closed loop");
    time_panels(f, run, series, series_count);
    distribution_panel(f, total);
    fprintf(f, "</svg>\n");
    int rc = ferror(f) ? -1 : 0;
    if (fclose(f) != 0 || rc != 0) {
        tool_warn("writing --plot %s failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
