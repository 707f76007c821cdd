/* SPDX-License-Identifier: MIT */
/* bench-storage: raw durable-write bandwidth of this disk (io_uring + O_DSYNC) next to yggr's
 * disk storage append throughput and latency, driven through the public plugin API. */

/*
 * Design notes
 * ------------
 * For each entry size (default 64 B, 1 KiB, 4 KiB), in one run:
 *   raw   sequential O_DSYNC writes of that size into a pre-zeroed file with io_uring,
 *         `--inflight` writes in flight (capped at 64);
 *   yggr  APPEND requests of one entry each through yggr_disk_storage_create()'s vtable,
 *         keeping `--inflight` requests not yet reported durable; latency is measured from
 *         submit() to the DURABLE completion that covers the request (each case uses a
 *         fresh directory, removed afterwards);
 *   raw@batch  O_DSYNC writes of yggr's mean batch size (bytes per DURABLE) at the same
 *         depth: the disk's bandwidth for the write size yggr actually issues.
 * Printed ratios: yggr/raw at the same entry size (what group commit buys over one durable
 * write per entry) and yggr/raw@batch (how much of the disk's bandwidth yggr reaches for the
 * writes it issues: framing, pre-zeroing and its own overheads are in the gap).
 * Bounded: `--seconds` per case (default 2), progress lines once per second.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "yggr/plugin.h"

#define RAW_FILE_BYTES (256u << 20)
#define MAX_INFLIGHT 65536u
#define LAT_SAMPLES (1u << 22)

struct opts {
    const char *dir;
    double seconds;
    uint32_t inflight;
    uint32_t sizes[8];
    uint32_t size_count;
    uint64_t segment_bytes;
};

struct result {
    double ops_per_s;
    double mb_per_s;
    double p50_us;
    double p99_us;
    double batch_bytes;            /* yggr: payload bytes per DURABLE */
    double batches_per_s;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void percentiles(double *lat, size_t n, struct result *r)
{
    if (n == 0) {
        return;
    }
    qsort(lat, n, sizeof(*lat), cmp_double);
    r->p50_us = lat[n / 2] * 1e6;
    r->p99_us = lat[(size_t)((double)n * 0.99)] * 1e6;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-storage [options]\n"
            "  --dir DIR          where to write (default: $TMPDIR or /tmp); needs ~1 GiB free\n"
            "  --seconds S        duration of each case (default 2)\n"
            "  --inflight N       appends / raw writes in flight (default 1024; raw capped at 64)\n"
            "  --sizes A,B,...    entry sizes in bytes (default 64,1024,4096)\n"
            "  --segment-mib M    yggr segment size (default 64)\n"
            "  --help             this text\n"
            "Measures raw io_uring+O_DSYNC write bandwidth and yggr's disk storage append\n"
            "throughput/latency at the same sizes, and prints yggr/raw ratios. Set\n"
            "YGGR_DISK_SYNC=dsync to make yggr use RWF_DSYNC instead of fdatasync.\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    const char *tmp = getenv("TMPDIR");
    *o = (struct opts){.dir = tmp != NULL ? tmp : "/tmp", .seconds = 2, .inflight = 1024,
                       .sizes = {64, 1024, 4096}, .size_count = 3, .segment_bytes = 64u << 20};
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--dir") == 0 && v != NULL) {
            o->dir = v;
        } else if (strcmp(argv[i], "--seconds") == 0 && v != NULL) {
            o->seconds = atof(v);
        } else if (strcmp(argv[i], "--inflight") == 0 && v != NULL) {
            o->inflight = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(argv[i], "--segment-mib") == 0 && v != NULL) {
            o->segment_bytes = strtoull(v, NULL, 10) << 20;
        } else if (strcmp(argv[i], "--sizes") == 0 && v != NULL) {
            o->size_count = 0;
            for (char *p = (char *)v; *p != '\0' && o->size_count < 8;) {
                o->sizes[o->size_count++] = (uint32_t)strtoul(p, &p, 10);
                p += *p == ',';
            }
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (o->seconds <= 0 || o->seconds > 60 || o->inflight == 0 || o->inflight > MAX_INFLIGHT) {
        fprintf(stderr, "bench-storage: --seconds must be in (0, 60], --inflight in [1, %u]\n",
                MAX_INFLIGHT);
        return -1;
    }
    return 0;
}

/* ---- raw ------------------------------------------------------------------------------------ */

static int make_raw_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        return -errno;
    }
    char *zero = calloc(1, 1u << 20);
    for (uint64_t off = 0; zero != NULL && off < RAW_FILE_BYTES; off += 1u << 20) {
        if (pwrite(fd, zero, 1u << 20, (off_t)off) != (ssize_t)(1u << 20)) {
            free(zero);
            close(fd);
            return -EIO;
        }
    }
    free(zero);
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : -errno;
}

static int raw_case(const char *path, uint32_t size, uint32_t depth, double seconds,
                    struct result *r, double *lat, const char *label)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(128, &ring, 0);
    int fd = rc == 0 ? open(path, O_RDWR | O_DSYNC) : -1;
    void *buf = NULL;
    if (rc < 0 || fd < 0 || posix_memalign(&buf, 4096, size < 4096 ? 4096 : size) != 0) {
        fprintf(stderr, "bench-storage: raw setup failed: %s\n", strerror(rc < 0 ? -rc : errno));
        return -1;
    }
    memset(buf, 0xA5, size);
    double *started = calloc(depth, sizeof(*started));
    uint64_t off = 0, done = 0;
    size_t nlat = 0;
    uint32_t inflight = 0;
    double t0 = now_s(), next_report = t0 + 1, end = t0 + seconds;
    while (now_s() < end || inflight > 0) {
        while (inflight < depth && now_s() < end) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            uint32_t slot = (uint32_t)(done + inflight) % depth;
            io_uring_prep_write(sqe, fd, buf, size, off);
            io_uring_sqe_set_data64(sqe, slot);
            started[slot] = now_s();
            off = off + 2 * (uint64_t)size > RAW_FILE_BYTES ? 0 : off + size;
            inflight++;
        }
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        double t = now_s();
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            if (cqe->res != (int)size) {
                fprintf(stderr, "bench-storage: raw write failed: %d\n", cqe->res);
                exit(1);
            }
            if (nlat < LAT_SAMPLES) {
                lat[nlat++] = t - started[io_uring_cqe_get_data64(cqe)];
            }
            n++;
        }
        io_uring_cq_advance(&ring, n);
        inflight -= n;
        done += n;
        if (t >= next_report && t < end) {
            printf("  [%s %u B] %.0f s: %.0f writes/s\n", label, size, t - t0,
                   (double)done / (t - t0));
            fflush(stdout);
            next_report += 1;
        }
    }
    double elapsed = now_s() - t0;
    r->ops_per_s = (double)done / elapsed;
    r->mb_per_s = (double)done * size / elapsed / 1e6;
    percentiles(lat, nlat, r);
    free(started);
    free(buf);
    close(fd);
    io_uring_queue_exit(&ring);
    return 0;
}

/* ---- yggr ------------------------------------------------------------------------------------ */

struct ybench {
    const struct yggr_storage_ops *ops;
    struct yggr_storage *s;
    int wake_fd;
    struct yggr_buf payload;
    double *submitted;                 /* by tag % ring */
    uint32_t ring;
    uint64_t next_tag;
    uint64_t durable_tag;
    uint64_t durables;
    double *lat;
    size_t nlat;
};

static void wake(void *ctx)
{
    uint64_t one = 1;
    ssize_t n = write(*(int *)ctx, &one, sizeof(one));
    (void)n;
}

static int yggr_open(struct ybench *y, const struct opts *o, const char *dir)
{
    struct yggr_disk_options d = {.dir = dir, .segment_bytes = o->segment_bytes,
                                  .queue_entries = 1u << 16};
    char why[256] = "";
    struct yggr_storage_meta meta = {.cluster_id = 1, .node_id = 1};
    meta.bootstrap_config.voter_count = 1;
    meta.bootstrap_config.voters[0] = 1;
    struct yggr_storage_state st;
    int rc = yggr_disk_storage_create(&d, &y->ops, &y->s, why, sizeof(why));
    rc = rc == 0 ? y->ops->bootstrap(y->s, &meta, why, sizeof(why)) : rc;
    rc = rc == 0 ? y->ops->recover(y->s, &st, why, sizeof(why)) : rc;
    y->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    rc = rc == 0 ? y->ops->start(y->s, wake, &y->wake_fd, -1) : rc;
    if (rc != 0) {
        fprintf(stderr, "bench-storage: %s: %s (%s)\n", dir, yggr_strerror(rc), why);
    }
    return rc;
}

/* Take every completion available; returns false on FAILED. */
static bool yggr_drain(struct ybench *y, uint64_t *batch_bytes, uint32_t size)
{
    struct yggr_storage_done done;
    double t = now_s();
    while (y->ops->poll(y->s, &done)) {
        if (done.type == YGGR_STORAGE_FAILED) {
            fprintf(stderr, "bench-storage: storage failed: %s\n", done.why);
            return false;
        }
        if (done.type != YGGR_STORAGE_DURABLE || done.tag <= y->durable_tag) {
            continue;
        }
        *batch_bytes += (done.tag - y->durable_tag) * size;
        for (uint64_t tag = y->durable_tag + 1; tag <= done.tag; tag++) {
            if (y->nlat < LAT_SAMPLES) {
                y->lat[y->nlat++] = t - y->submitted[tag % y->ring];
            }
        }
        y->durable_tag = done.tag;
        y->durables++;
    }
    return true;
}

static void yggr_wait(struct ybench *y)
{
    struct pollfd p = {.fd = y->wake_fd, .events = POLLIN};
    poll(&p, 1, 100);
    uint64_t v;
    ssize_t n = read(y->wake_fd, &v, sizeof(v));
    (void)n;
}

static bool yggr_submit(struct ybench *y, uint32_t size, uint64_t tag)
{
    struct yggr_entry e = {.index = tag, .term = 1, .type = YGGR_ENTRY_COMMAND,
                           .data = y->payload.data, .buf = &y->payload, .len = size};
    struct yggr_storage_req req = {.type = YGGR_STORAGE_APPEND, .tag = tag};
    req.as.append.entries = &e;
    req.as.append.count = 1;
    int rc = y->ops->submit(y->s, &req);
    if (rc == 0) {
        y->submitted[tag % y->ring] = now_s();
    }
    return rc == 0;
}

static int yggr_case(const struct opts *o, uint32_t size, struct result *r, double *lat)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/bench-storage-yggr-XXXXXX", o->dir);
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    struct ybench y = {.ring = 2 * MAX_INFLIGHT, .lat = lat};
    y.submitted = calloc(y.ring, sizeof(*y.submitted));
    y.payload.data = malloc(size);
    memset(y.payload.data, 0x5A, size);
    y.payload.size = size;
    atomic_init(&y.payload.refs, 1); /* free_fn NULL: static for the run */
    if (yggr_open(&y, o, dir) != 0) {
        return -1;
    }
    uint64_t batch_bytes = 0;
    double t0 = now_s(), next_report = t0 + 1, end = t0 + o->seconds;
    bool ok = true;
    while (ok && (now_s() < end || y.durable_tag < y.next_tag)) {
        bool submitted = false;
        while (now_s() < end && y.next_tag - y.durable_tag < o->inflight &&
               yggr_submit(&y, size, y.next_tag + 1)) {
            y.next_tag++;
            submitted = true;
        }
        if (submitted) {
            y.ops->flush(y.s);
        }
        ok = yggr_drain(&y, &batch_bytes, size);
        if (ok && y.next_tag - y.durable_tag >= o->inflight) {
            yggr_wait(&y);
        } else if (ok && now_s() >= end) {
            yggr_wait(&y);
        }
        double t = now_s();
        if (t >= next_report && t < end) {
            printf("  [yggr %u B] %.0f s: %.0f entries/s, %.0f batches/s\n", size, t - t0,
                   (double)y.durable_tag / (t - t0), (double)y.durables / (t - t0));
            fflush(stdout);
            next_report += 1;
        }
    }
    double elapsed = now_s() - t0;
    r->ops_per_s = (double)y.durable_tag / elapsed;
    r->mb_per_s = (double)y.durable_tag * size / elapsed / 1e6;
    r->batches_per_s = (double)y.durables / elapsed;
    r->batch_bytes = y.durables > 0 ? (double)batch_bytes / (double)y.durables : 0;
    percentiles(y.lat, y.nlat, r);
    y.ops->close(y.s);
    close(y.wake_fd);
    free(y.submitted);
    free(y.payload.data);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench-storage: could not remove %s\n", dir);
    }
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o) != 0) {
        return 2;
    }
    double *lat = malloc(LAT_SAMPLES * sizeof(*lat));
    char raw[512];
    snprintf(raw, sizeof(raw), "%s/bench-storage-raw.%d", o.dir, (int)getpid());
    printf("bench-storage: dir %s, %.1f s per case, %u in flight, yggr sync mode %s\n", o.dir,
           o.seconds, o.inflight, getenv("YGGR_DISK_SYNC") ? getenv("YGGR_DISK_SYNC") : "fdatasync");
    if (lat == NULL || make_raw_file(raw) != 0) {
        fprintf(stderr, "bench-storage: cannot prepare %s\n", raw);
        return 1;
    }
    uint32_t depth = o.inflight < 64 ? o.inflight : 64;
    struct result rr[8], yr[8], rb[8];
    memset(rr, 0, sizeof(rr));
    memset(yr, 0, sizeof(yr));
    memset(rb, 0, sizeof(rb));
    int rc = 0;
    for (uint32_t i = 0; i < o.size_count && rc == 0; i++) {
        uint32_t size = o.sizes[i];
        rc = raw_case(raw, size, depth, o.seconds, &rr[i], lat, "raw");
        rc = rc == 0 ? yggr_case(&o, size, &yr[i], lat) : rc;
        uint32_t bsize = ((uint32_t)yr[i].batch_bytes + 4095) & ~4095u;
        bsize = bsize < 4096 ? 4096 : bsize > (16u << 20) ? 16u << 20 : bsize;
        rc = rc == 0 ? raw_case(raw, bsize, depth, o.seconds, &rb[i], lat, "raw@batch") : rc;
        rb[i].batch_bytes = bsize;
    }
    unlink(raw);
    printf("\n%-6s | %-34s | %-52s | %-26s | %s\n", "size", "raw O_DSYNC (writes/s, MB/s, p50/p99 us)",
           "yggr (entries/s, MB/s, p50/p99 us, entries/batch)", "raw@batch size (MB/s)",
           "yggr/raw  yggr/raw@batch");
    for (uint32_t i = 0; i < o.size_count; i++) {
        printf("%-6u | %8.0f %8.1f %7.0f %7.0f | %9.0f %8.1f %7.0f %7.0f %7.1f | %8.0f B %9.1f | "
               "%7.2fx %8.0f%%\n",
               o.sizes[i], rr[i].ops_per_s, rr[i].mb_per_s, rr[i].p50_us, rr[i].p99_us,
               yr[i].ops_per_s, yr[i].mb_per_s, yr[i].p50_us, yr[i].p99_us,
               yr[i].batch_bytes / o.sizes[i], rb[i].batch_bytes, rb[i].mb_per_s,
               rr[i].mb_per_s > 0 ? yr[i].mb_per_s / rr[i].mb_per_s : 0,
               rb[i].mb_per_s > 0 ? 100 * yr[i].mb_per_s / rb[i].mb_per_s : 0);
    }
    free(lat);
    return rc == 0 ? 0 : 1;
}
