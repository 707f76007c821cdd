/* SPDX-License-Identifier: MIT */
/* Fault-injecting io for tests: errors, short writes, and power cuts that revert every
 * change not yet made durable by fsync/fdatasync/RWF_DSYNC or a directory fsync. */

/*
 * Design notes
 * ------------
 * Durability model (strict POSIX, stricter than ext4 in ordered mode):
 *   1. file data written by a write is durable after an fsync/fdatasync of that file, or
 *      at once for an IO_DSYNC write (that range only);
 *   2. size changes (extending writes, fallocate, ftruncate) follow the same rule;
 *   3. a name (create, rename, unlink) is durable only after an fsync of its directory;
 *      fsyncing the file does NOT make its name durable.
 * Everything not durable is recorded so that a power cut can put the old state back:
 *   - per inode, a stack of undo records {offset, old bytes, old size}; a DSYNC write
 *     patches the older records overlapping its range with the new bytes so reverting
 *     them cannot destroy what it made durable; an fsync drops the inode's stack;
 *   - per directory, a stack of name changes; a replaced or unlinked file is kept as a
 *     hidden hard link (".faultio-trash-N", filtered out of list()) until its directory
 *     is synced, so the change can be undone.
 * A power cut reverts names newest first, then data newest first, then writes the kept
 * prefix of the in-flight write (a random 512-byte boundary of the file, possibly
 * nothing), and marks the io dead: every later op fails with EIO (close still closes).
 *
 * Chains: after an op with IO_LINK fails or is short, the following op completes with
 * -ECANCELED without running, as io_uring does.
 *
 * Threads: one mutex serialises every op, except that an fsync/fdatasync releases it for
 * the duration of the system call, so a power cut from another thread can land while a
 * flush is in progress (the flush then fails with EIO and makes nothing durable). Each
 * file is written and synced by one thread (the disk thread, or the apply thread for a
 * snapshot's temp file), so nothing else changes that file's undo records meanwhile.
 */
#include "fault_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yggr_assert.h"

#define FAULT_MAX_FDS 4096
#define TRASH_PREFIX  ".faultio-trash-"

struct fault_undo {
    uint64_t offset;
    uint64_t old_size;        /* file size before the change */
    uint64_t len;             /* saved bytes (the part of the range below old_size) */
    uint8_t *bytes;
    struct fault_undo *next;  /* older */
};

struct fault_file {
    dev_t dev;
    ino_t ino;
    int fd;                   /* our dup, to revert even after close/unlink */
    struct fault_undo *undo;  /* newest first */
    struct fault_file *next;
};

enum fault_name_type { NAME_CREATE, NAME_RENAME, NAME_UNLINK };

struct fault_name {
    enum fault_name_type type;
    char *dir;
    char *path;
    char *path2;              /* RENAME target */
    char *trash;              /* replaced/unlinked file kept here; NULL when none */
    struct fault_name *next;  /* older */
};

struct fault_arm {
    uint64_t nth;             /* 0 = disarmed */
    uint64_t seen;
    int err;
    char *filter;
};

struct fault_io {
    struct storage_io base;
    pthread_mutex_t mu;
    uint64_t rng;
    char *fd_path[FAULT_MAX_FDS];
    bool fd_dir[FAULT_MAX_FDS];
    struct fault_file *files;
    struct fault_name *names;
    struct fault_arm arm[FAULT_KIND_COUNT];
    bool dead;
    bool cancel_next;         /* the previous op was linked and failed */
    uint64_t trash_seq;
    struct fault_io_stats stats;
    struct io_op *done_head;  /* owner: the submitting thread */
    struct io_op *done_tail;
    struct {                  /* the newest write not yet synced (power_cut_tear_last) */
        bool valid;
        dev_t dev;
        ino_t ino;
        uint64_t offset;
        uint64_t len;
    } last;
};

static struct fault_io *to_fault(struct storage_io *io)
{
    YGGR_ASSERT(io != NULL);
    return (struct fault_io *)io;
}

static uint64_t next_rand(struct fault_io *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static char *dup_str(const char *s)
{
    char *d = strdup(s);
    YGGR_ASSERT(d != NULL);
    return d;
}

static char *dir_of(const char *path)
{
    char *d = dup_str(path);
    char *slash = strrchr(d, '/');
    if (slash == NULL) {
        strcpy(d, ".");
    } else if (slash == d) {
        d[1] = '\0';
    } else {
        *slash = '\0';
    }
    return d;
}

/* Does this op on `path` trigger the armed fault `kind`? Counts matching ops. */
static bool fires(struct fault_io *f, enum fault_kind kind, const char *path)
{
    struct fault_arm *a = &f->arm[kind];
    if (a->nth == 0) {
        return false;
    }
    if (a->filter != NULL && (path == NULL || strstr(path, a->filter) == NULL)) {
        return false;
    }
    if (++a->seen < a->nth) {
        return false;
    }
    a->nth = 0;
    f->stats.faults_fired++;
    return true;
}

static struct fault_file *file_for(struct fault_io *f, int fd)
{
    struct stat st;
    int rc = fstat(fd, &st);
    YGGR_ASSERT(rc == 0);
    for (struct fault_file *ff = f->files; ff != NULL; ff = ff->next) {
        if (ff->dev == st.st_dev && ff->ino == st.st_ino) {
            return ff;
        }
    }
    struct fault_file *ff = calloc(1, sizeof(*ff));
    YGGR_ASSERT(ff != NULL);
    ff->dev = st.st_dev;
    ff->ino = st.st_ino;
    ff->fd = dup(fd);
    YGGR_ASSERT(ff->fd >= 0);
    ff->next = f->files;
    f->files = ff;
    return ff;
}

static void free_undo(struct fault_undo *u)
{
    while (u != NULL) {
        struct fault_undo *older = u->next;
        free(u->bytes);
        free(u);
        u = older;
    }
}

/* Record the bytes [offset, offset + len) and the size, before a change. */
static struct fault_undo *record_undo(struct fault_io *f, int fd, uint64_t offset, uint64_t len)
{
    struct fault_file *ff = file_for(f, fd);
    struct stat st;
    int rc = fstat(fd, &st);
    YGGR_ASSERT(rc == 0);
    struct fault_undo *u = calloc(1, sizeof(*u));
    YGGR_ASSERT(u != NULL);
    u->offset = offset;
    u->old_size = (uint64_t)st.st_size;
    u->len = offset < u->old_size ? (u->old_size - offset < len ? u->old_size - offset : len) : 0;
    if (u->len > 0) {
        u->bytes = malloc(u->len);
        YGGR_ASSERT(u->bytes != NULL);
        ssize_t n = pread(fd, u->bytes, u->len, (off_t)offset);
        YGGR_ASSERT(n == (ssize_t)u->len);
    }
    u->next = ff->undo;
    ff->undo = u;
    return u;
}

/* [offset, offset + len) of `fd` is now durable: older undo records must not revert it. */
static void make_range_durable(struct fault_io *f, int fd, uint64_t offset, uint64_t len)
{
    struct fault_file *ff = file_for(f, fd);
    for (struct fault_undo *u = ff->undo; u != NULL; u = u->next) {
        uint64_t lo = offset > u->offset ? offset : u->offset;
        uint64_t hi_u = u->offset + u->len;
        uint64_t hi = offset + len < hi_u ? offset + len : hi_u;
        if (lo < hi) {
            ssize_t n = pread(fd, u->bytes + (lo - u->offset), hi - lo, (off_t)lo);
            YGGR_ASSERT(n == (ssize_t)(hi - lo));
        }
        if (u->old_size < offset + len) {
            u->old_size = offset + len;
        }
    }
}

static void make_file_durable(struct fault_io *f, int fd)
{
    struct stat st;
    int rc = fstat(fd, &st);
    YGGR_ASSERT(rc == 0);
    if (f->last.valid && f->last.dev == st.st_dev && f->last.ino == st.st_ino) {
        f->last.valid = false;
    }
    for (struct fault_file **pp = &f->files; *pp != NULL; pp = &(*pp)->next) {
        struct fault_file *ff = *pp;
        if (ff->dev == st.st_dev && ff->ino == st.st_ino) {
            *pp = ff->next;
            free_undo(ff->undo);
            close(ff->fd);
            free(ff);
            return;
        }
    }
}

static void add_name(struct fault_io *f, enum fault_name_type type, const char *path,
                     const char *path2, char *trash)
{
    struct fault_name *n = calloc(1, sizeof(*n));
    YGGR_ASSERT(n != NULL);
    n->type = type;
    n->dir = dir_of(path);
    n->path = dup_str(path);
    n->path2 = path2 != NULL ? dup_str(path2) : NULL;
    n->trash = trash;
    n->next = f->names;
    f->names = n;
}

/* Keep `path` reachable under a hidden name until its directory is synced. */
static char *keep_trash(struct fault_io *f, const char *path)
{
    char *dir = dir_of(path);
    size_t n = strlen(dir) + sizeof(TRASH_PREFIX) + 24;
    char *trash = malloc(n);
    YGGR_ASSERT(trash != NULL);
    snprintf(trash, n, "%s/" TRASH_PREFIX "%llu", dir, (unsigned long long)++f->trash_seq);
    free(dir);
    if (link(path, trash) != 0) {
        free(trash);
        return NULL;
    }
    return trash;
}

static void free_name(struct fault_name *n)
{
    free(n->dir);
    free(n->path);
    free(n->path2);
    free(n->trash);
    free(n);
}

/* fsync of directory `dir`: its name changes are final. */
static void commit_names(struct fault_io *f, const char *dir)
{
    struct fault_name **pp = &f->names;
    while (*pp != NULL) {
        struct fault_name *n = *pp;
        if (dir == NULL || strcmp(n->dir, dir) == 0) {
            if (n->trash != NULL) {
                unlink(n->trash);
            }
            *pp = n->next;
            free_name(n);
        } else {
            pp = &n->next;
        }
    }
}

static void revert_names(struct fault_io *f)
{
    while (f->names != NULL) {
        struct fault_name *n = f->names;
        f->names = n->next;
        switch (n->type) {
        case NAME_CREATE:
            unlink(n->path);
            break;
        case NAME_RENAME:
            rename(n->path2, n->path);
            if (n->trash != NULL) {
                rename(n->trash, n->path2);
                free(n->trash);
                n->trash = NULL;
            }
            break;
        case NAME_UNLINK:
            if (n->trash != NULL) {
                rename(n->trash, n->path);
                free(n->trash);
                n->trash = NULL;
            }
            break;
        }
        f->stats.reverted_names++;
        free_name(n);
    }
}

static void revert_data(struct fault_io *f)
{
    while (f->files != NULL) {
        struct fault_file *ff = f->files;
        f->files = ff->next;
        for (struct fault_undo *u = ff->undo; u != NULL; u = u->next) {
            if (u->len > 0) {
                ssize_t n = pwrite(ff->fd, u->bytes, u->len, (off_t)u->offset);
                YGGR_ASSERT(n == (ssize_t)u->len);
            }
            int rc = ftruncate(ff->fd, (off_t)u->old_size);
            YGGR_ASSERT(rc == 0);
            f->stats.reverted_writes++;
        }
        free_undo(ff->undo);
        close(ff->fd);
        free(ff);
    }
}

static uint64_t iov_total(const struct io_op *op)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < op->iov_count; i++) {
        total += op->iov[i].iov_len;
    }
    return total;
}

/* pwritev of the first `len` bytes of op's iovecs at op->offset. */
static int64_t write_prefix(const struct io_op *op, uint64_t len)
{
    uint64_t off = op->offset;
    uint64_t left = len;
    for (uint32_t i = 0; i < op->iov_count && left > 0; i++) {
        size_t n = op->iov[i].iov_len < left ? op->iov[i].iov_len : (size_t)left;
        ssize_t w = pwrite(op->fd, op->iov[i].iov_base, n, (off_t)off);
        if (w < 0) {
            return -errno;
        }
        YGGR_ASSERT((size_t)w == n);
        off += n;
        left -= n;
    }
    return (int64_t)len;
}

static void cut_power(struct fault_io *f, const struct io_op *torn)
{
    revert_names(f);
    revert_data(f);
    if (torn != NULL) {
        uint64_t total = iov_total(torn);
        uint64_t first = (torn->offset / 512 + 1) * 512; /* first boundary after offset */
        uint64_t boundaries = first < torn->offset + total
                                  ? (torn->offset + total - first + 511) / 512 : 0;
        uint64_t pick = next_rand(f) % (boundaries + 1); /* 0 = nothing persisted */
        uint64_t keep = pick == 0 ? 0 : first + (pick - 1) * 512 - torn->offset;
        YGGR_ASSERT(keep < total);
        if (keep > 0) {
            write_prefix(torn, keep);
        }
        f->stats.torn_kept_bytes = keep;
    }
    f->dead = true;
    f->stats.power_cuts++;
}

/* The newest write that is not durable yet: what a power cut could catch in flight. */
static void remember_last(struct fault_io *f, int fd, uint64_t offset, uint64_t len)
{
    struct stat st;
    int rc = fstat(fd, &st);
    YGGR_ASSERT(rc == 0);
    YGGR_ASSERT(len > 0);
    f->last.valid = true;
    f->last.dev = st.st_dev;
    f->last.ino = st.st_ino;
    f->last.offset = offset;
    f->last.len = len;
}

static int64_t fault_write(struct fault_io *f, struct io_op *op)
{
    const char *path = f->fd_path[op->fd];
    uint64_t total = iov_total(op);
    f->stats.writes++;
    if (fires(f, FAULT_POWER_CUT, path)) {
        cut_power(f, op);
        return -EIO;
    }
    if (fires(f, FAULT_WRITE_ERROR, path)) {
        return -(int64_t)f->arm[FAULT_WRITE_ERROR].err;
    }
    uint64_t len = total;
    if (fires(f, FAULT_SHORT_WRITE, path)) {
        len = (total / 2) & ~(uint64_t)511;
    }
    record_undo(f, op->fd, op->offset, len);
    int64_t rc = write_prefix(op, len);
    if (rc < 0 || !(op->flags & IO_DSYNC)) {
        if (rc > 0) {
            remember_last(f, op->fd, op->offset, (uint64_t)rc);
        }
        return rc;
    }
    f->stats.syncs++;
    if (fires(f, FAULT_SYNC_ERROR, path)) {
        return -(int64_t)f->arm[FAULT_SYNC_ERROR].err;
    }
    /* The range is durable: drop the undo record just made and protect the range. */
    struct fault_file *ff = file_for(f, op->fd);
    struct fault_undo *mine = ff->undo;
    ff->undo = mine->next;
    mine->next = NULL;
    free_undo(mine);
    make_range_durable(f, op->fd, op->offset, len);
    return rc;
}

/* Called and returns with f->mu held, but drops it during the flush itself: a flush takes
 * real time, and a power cut that lands during it (fault_io_power_cut*() from another
 * thread) must lose what the flush was making durable, as on a real machine. */
static int64_t fault_sync(struct fault_io *f, struct io_op *op)
{
    f->stats.syncs++;
    if (fires(f, FAULT_SYNC_ERROR, f->fd_path[op->fd])) {
        return -(int64_t)f->arm[FAULT_SYNC_ERROR].err;
    }
    pthread_mutex_unlock(&f->mu);
    int64_t rc = io_syscall(op);
    pthread_mutex_lock(&f->mu);
    if (f->dead) {
        return -EIO; /* the power went during the flush: nothing of it counts */
    }
    if (rc == 0) {
        if (f->fd_dir[op->fd]) {
            commit_names(f, f->fd_path[op->fd]);
        } else {
            make_file_durable(f, op->fd);
        }
    }
    return rc;
}

static int64_t fault_open(struct fault_io *f, struct io_op *op)
{
    bool existed = access(op->path, F_OK) == 0;
    YGGR_ASSERT(!(existed && (op->open_flags & O_TRUNC))); /* not modelled: unlink instead */
    int64_t rc = io_syscall(op);
    if (rc < 0) {
        return rc;
    }
    YGGR_ASSERT(rc < FAULT_MAX_FDS);
    struct stat st;
    int src = fstat((int)rc, &st);
    YGGR_ASSERT(src == 0);
    free(f->fd_path[rc]);
    f->fd_path[rc] = dup_str(op->path);
    f->fd_dir[rc] = S_ISDIR(st.st_mode);
    if (!existed && (op->open_flags & O_CREAT)) {
        add_name(f, NAME_CREATE, op->path, NULL, NULL);
    }
    return rc;
}

static int64_t fault_names(struct fault_io *f, struct io_op *op)
{
    if (op->type == IO_RENAME) {
        char *trash = access(op->path2, F_OK) == 0 ? keep_trash(f, op->path2) : NULL;
        int64_t rc = io_syscall(op);
        if (rc == 0) {
            add_name(f, NAME_RENAME, op->path, op->path2, trash);
            for (int fd = 0; fd < FAULT_MAX_FDS; fd++) { /* path filters follow the file */
                if (f->fd_path[fd] != NULL && strcmp(f->fd_path[fd], op->path) == 0) {
                    free(f->fd_path[fd]);
                    f->fd_path[fd] = dup_str(op->path2);
                }
            }
        } else if (trash != NULL) {
            unlink(trash);
            free(trash);
        }
        return rc;
    }
    YGGR_ASSERT(op->type == IO_UNLINK);
    char *trash = keep_trash(f, op->path);
    int64_t rc = io_syscall(op);
    if (rc == 0) {
        add_name(f, NAME_UNLINK, op->path, NULL, trash);
    } else if (trash != NULL) {
        unlink(trash);
        free(trash);
    }
    return rc;
}

static int64_t execute(struct fault_io *f, struct io_op *op)
{
    if (f->dead) {
        if (op->type == IO_CLOSE) {
            free(f->fd_path[op->fd]);
            f->fd_path[op->fd] = NULL;
            return io_syscall(op);
        }
        return -EIO;
    }
    switch (op->type) {
    case IO_OPEN:
        return fault_open(f, op);
    case IO_CLOSE:
        YGGR_ASSERT(op->fd >= 0 && op->fd < FAULT_MAX_FDS);
        free(f->fd_path[op->fd]);
        f->fd_path[op->fd] = NULL;
        return io_syscall(op);
    case IO_WRITEV:
        return fault_write(f, op);
    case IO_READ:
    case IO_FSTAT:
    case IO_MKDIR:
        return io_syscall(op);
    case IO_FSYNC:
    case IO_FDATASYNC:
        return fault_sync(f, op);
    case IO_FTRUNCATE: {
        struct stat st;
        int rc = fstat(op->fd, &st);
        YGGR_ASSERT(rc == 0);
        uint64_t size = (uint64_t)st.st_size;
        record_undo(f, op->fd, op->length < size ? op->length : size,
                    op->length < size ? size - op->length : 0);
        return io_syscall(op);
    }
    case IO_FALLOCATE:
        record_undo(f, op->fd, op->offset, 0);
        return io_syscall(op);
    case IO_RENAME:
    case IO_UNLINK:
        return fault_names(f, op);
    }
    YGGR_UNREACHABLE();
}

static bool op_failed(const struct io_op *op)
{
    if (op->result < 0) {
        return true;
    }
    if (op->type == IO_WRITEV) {
        return (uint64_t)op->result != iov_total(op);
    }
    if (op->type == IO_READ) {
        return (uint64_t)op->result != op->len;
    }
    return false;
}

static int64_t run_one(struct fault_io *f, struct io_op *op)
{
    pthread_mutex_lock(&f->mu);
    if (f->cancel_next) {
        op->result = -ECANCELED;
    } else {
        op->result = execute(f, op);
    }
    f->cancel_next = (op->flags & IO_LINK) && op_failed(op);
    pthread_mutex_unlock(&f->mu);
    return op->result;
}

static int fault_thread_init(struct storage_io *io, uint32_t depth)
{
    YGGR_ASSERT(io != NULL);
    YGGR_ASSERT(depth > 0);
    return 0;
}

static void fault_thread_exit(struct storage_io *io)
{
    struct fault_io *f = to_fault(io);
    YGGR_ASSERT(f->done_head == NULL);
}

static void fault_submit(struct storage_io *io, struct io_op *op)
{
    struct fault_io *f = to_fault(io);
    YGGR_ASSERT(op != NULL && op->done != NULL);
    run_one(f, op);
    op->next = NULL;
    if (f->done_tail != NULL) {
        f->done_tail->next = op;
    } else {
        f->done_head = op;
    }
    f->done_tail = op;
}

static int fault_run(struct storage_io *io, int wake_fd, bool block)
{
    struct fault_io *f = to_fault(io);
    int count = 0;
    struct io_op *op;
    while ((op = f->done_head) != NULL) {
        f->done_head = op->next;
        if (f->done_head == NULL) {
            f->done_tail = NULL;
        }
        op->next = NULL;
        op->done(op);
        count++;
    }
    if (count == 0 && block && wake_fd >= 0) {
        struct pollfd p = {.fd = wake_fd, .events = POLLIN};
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
    }
    return count;
}

static int64_t fault_exec(struct storage_io *io, struct io_op *op)
{
    YGGR_ASSERT(op != NULL);
    YGGR_ASSERT(!(op->flags & IO_LINK));
    return run_one(to_fault(io), op);
}

struct list_filter {
    io_list_fn fn;
    void *ctx;
};

static int list_visible(void *ctx, const char *name)
{
    struct list_filter *lf = ctx;
    if (strncmp(name, TRASH_PREFIX, sizeof(TRASH_PREFIX) - 1) == 0) {
        return 0;
    }
    return lf->fn(lf->ctx, name);
}

static int fault_list(struct storage_io *io, const char *dir, io_list_fn fn, void *ctx)
{
    struct fault_io *f = to_fault(io);
    pthread_mutex_lock(&f->mu);
    bool dead = f->dead;
    pthread_mutex_unlock(&f->mu);
    if (dead) {
        return -EIO;
    }
    struct list_filter lf = {.fn = fn, .ctx = ctx};
    return io_syscall_list(dir, list_visible, &lf);
}

static void fault_destroy_io(struct storage_io *io)
{
    fault_io_destroy(to_fault(io));
}

static const struct storage_io_ops fault_ops = {
    .thread_init = fault_thread_init,
    .thread_exit = fault_thread_exit,
    .submit = fault_submit,
    .run = fault_run,
    .exec = fault_exec,
    .list = fault_list,
    .destroy = fault_destroy_io,
};

struct fault_io *fault_io_create(uint64_t seed)
{
    struct fault_io *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->base.ops = &fault_ops;
    f->rng = seed | 1u;
    pthread_mutex_init(&f->mu, NULL);
    YGGR_ASSERT(!f->dead);
    return f;
}

struct storage_io *fault_io_base(struct fault_io *f)
{
    YGGR_ASSERT(f != NULL);
    return &f->base;
}

void fault_io_arm(struct fault_io *f, enum fault_kind kind, uint64_t nth, int err,
                  const char *path_filter)
{
    YGGR_ASSERT(f != NULL);
    YGGR_ASSERT(kind < FAULT_KIND_COUNT);
    pthread_mutex_lock(&f->mu);
    struct fault_arm *a = &f->arm[kind];
    free(a->filter);
    a->filter = path_filter != NULL ? dup_str(path_filter) : NULL;
    a->nth = nth;
    a->seen = 0;
    a->err = err != 0 ? err : EIO;
    pthread_mutex_unlock(&f->mu);
}

void fault_io_power_cut(struct fault_io *f)
{
    YGGR_ASSERT(f != NULL);
    pthread_mutex_lock(&f->mu);
    if (!f->dead) {
        cut_power(f, NULL);
    }
    pthread_mutex_unlock(&f->mu);
}

/* Cut the power with the newest unsynced write as the one in flight: its new bytes are
 * read back before everything is reverted, then cut_power() keeps a random 512-byte
 * aligned prefix of them, exactly as for a write that FAULT_POWER_CUT interrupts. */
void fault_io_power_cut_tear_last(struct fault_io *f)
{
    YGGR_ASSERT(f != NULL);
    pthread_mutex_lock(&f->mu);
    if (!f->dead) {
        struct io_op torn = {.type = IO_WRITEV, .fd = -1};
        struct iovec iov = {0};
        struct fault_file *ff = f->files;
        while (f->last.valid && ff != NULL && (ff->dev != f->last.dev || ff->ino != f->last.ino)) {
            ff = ff->next;
        }
        if (ff != NULL && f->last.valid) {
            iov.iov_base = malloc(f->last.len);
            ssize_t n = iov.iov_base != NULL
                            ? pread(ff->fd, iov.iov_base, f->last.len, (off_t)f->last.offset)
                            : -1;
            torn.fd = n > 0 ? dup(ff->fd) : -1;
            iov.iov_len = n > 0 ? (size_t)n : 0;
        }
        torn.iov = &iov;
        torn.iov_count = 1;
        torn.offset = f->last.offset;
        cut_power(f, torn.fd >= 0 ? &torn : NULL);
        if (torn.fd >= 0) {
            close(torn.fd);
        }
        free(iov.iov_base);
        f->last.valid = false;
    }
    YGGR_ASSERT(f->dead);
    pthread_mutex_unlock(&f->mu);
}

bool fault_io_dead(struct fault_io *f)
{
    YGGR_ASSERT(f != NULL);
    pthread_mutex_lock(&f->mu);
    bool dead = f->dead;
    pthread_mutex_unlock(&f->mu);
    return dead;
}

void fault_io_get_stats(struct fault_io *f, struct fault_io_stats *out)
{
    YGGR_ASSERT(f != NULL && out != NULL);
    pthread_mutex_lock(&f->mu);
    *out = f->stats;
    pthread_mutex_unlock(&f->mu);
}

void fault_io_destroy(struct fault_io *f)
{
    if (f == NULL) {
        return;
    }
    YGGR_ASSERT(f->done_head == NULL);
    commit_names(f, NULL);
    while (f->files != NULL) {
        struct fault_file *ff = f->files;
        f->files = ff->next;
        free_undo(ff->undo);
        close(ff->fd);
        free(ff);
    }
    for (int i = 0; i < FAULT_MAX_FDS; i++) {
        free(f->fd_path[i]);
    }
    for (int k = 0; k < FAULT_KIND_COUNT; k++) {
        free(f->arm[k].filter);
    }
    pthread_mutex_destroy(&f->mu);
    free(f);
}
