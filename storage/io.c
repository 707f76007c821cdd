/* SPDX-License-Identifier: MIT */
/* The plain-system-call executor behind io.h, and the prepare/exec helpers. */

/*
 * Design notes
 * ------------
 * io_syscall() is the one place that turns an io_op into a system call. The io_uring
 * implementation uses it for exec() (synchronous callers: recovery, bootstrap, the apply
 * thread's snapshot files) and for the few ops liburing 2.1 cannot submit (ftruncate,
 * fstat); the fault injector uses it for everything, after deciding whether to fail,
 * shorten or tear the op. EINTR is retried here for every op (a signal never fails an
 * operation); every other errno is returned unchanged for the caller to map.
 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yggr_assert.h"

static int64_t retry_neg(int64_t rc)
{
    return rc < 0 ? -(int64_t)errno : rc;
}

static int64_t syscall_once(struct io_op *op)
{
    switch (op->type) {
    case IO_OPEN:
        return retry_neg(open(op->path, op->open_flags, (mode_t)op->mode));
    case IO_CLOSE:
        /* close() must not be retried on EINTR (the fd is gone on Linux). */
        return close(op->fd) == 0 || errno == EINTR ? 0 : -(int64_t)errno;
    case IO_WRITEV:
        return retry_neg(pwritev2(op->fd, op->iov, (int)op->iov_count, (off_t)op->offset,
                                  (op->flags & IO_DSYNC) ? RWF_DSYNC : 0));
    case IO_READ:
        return retry_neg(pread(op->fd, op->buf, op->len, (off_t)op->offset));
    case IO_FSYNC:
        return retry_neg(fsync(op->fd));
    case IO_FDATASYNC:
        return retry_neg(fdatasync(op->fd));
    case IO_FTRUNCATE:
        return retry_neg(ftruncate(op->fd, (off_t)op->length));
    case IO_FALLOCATE:
        return retry_neg(fallocate(op->fd, 0, (off_t)op->offset, (off_t)op->length));
    case IO_RENAME:
        return retry_neg(rename(op->path, op->path2));
    case IO_UNLINK:
        return retry_neg(unlink(op->path));
    case IO_MKDIR:
        return retry_neg(mkdir(op->path, (mode_t)op->mode));
    case IO_FSTAT: {
        struct stat st;
        if (fstat(op->fd, &st) != 0) {
            return -(int64_t)errno;
        }
        return (int64_t)st.st_size;
    }
    }
    YGGR_UNREACHABLE();
}

int64_t io_syscall(struct io_op *op)
{
    YGGR_ASSERT(op != NULL);
    YGGR_ASSERT(op->type >= IO_OPEN && op->type <= IO_FSTAT);
    int64_t rc;
    do {
        rc = syscall_once(op);
    } while (rc == -EINTR && op->type != IO_CLOSE);
    op->result = rc;
    return rc;
}

int io_syscall_list(const char *dir, io_list_fn fn, void *ctx)
{
    YGGR_ASSERT(dir != NULL);
    YGGR_ASSERT(fn != NULL);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        rc = fn(ctx, e->d_name);
    }
    if (rc == 0 && errno != 0) {
        rc = -errno;
    }
    closedir(d);
    return rc;
}

const char *io_op_name(enum io_op_type type)
{
    switch (type) {
    case IO_OPEN: return "open";
    case IO_CLOSE: return "close";
    case IO_WRITEV: return "write";
    case IO_READ: return "read";
    case IO_FSYNC: return "fsync";
    case IO_FDATASYNC: return "fdatasync";
    case IO_FTRUNCATE: return "ftruncate";
    case IO_FALLOCATE: return "fallocate";
    case IO_RENAME: return "rename";
    case IO_UNLINK: return "unlink";
    case IO_MKDIR: return "mkdir";
    case IO_FSTAT: return "fstat";
    }
    YGGR_UNREACHABLE();
}

static void prep(struct io_op *op, enum io_op_type type, int fd)
{
    YGGR_ASSERT(op != NULL);
    memset(op, 0, sizeof(*op));
    op->type = type;
    op->fd = fd;
}

void io_prep_open(struct io_op *op, const char *path, int flags, uint32_t mode)
{
    YGGR_ASSERT(path != NULL);
    prep(op, IO_OPEN, -1);
    op->path = path;
    op->open_flags = flags | O_CLOEXEC;
    op->mode = mode;
}

void io_prep_close(struct io_op *op, int fd)
{
    YGGR_ASSERT(fd >= 0);
    prep(op, IO_CLOSE, fd);
}

void io_prep_writev(struct io_op *op, int fd, const struct iovec *iov, uint32_t count,
                    uint64_t offset)
{
    YGGR_ASSERT(fd >= 0);
    YGGR_ASSERT(iov != NULL && count > 0);
    prep(op, IO_WRITEV, fd);
    op->iov = iov;
    op->iov_count = count;
    op->offset = offset;
}

void io_prep_read(struct io_op *op, int fd, void *buf, uint32_t len, uint64_t offset)
{
    YGGR_ASSERT(fd >= 0);
    YGGR_ASSERT(buf != NULL || len == 0);
    prep(op, IO_READ, fd);
    op->buf = buf;
    op->len = len;
    op->offset = offset;
}

void io_prep_sync(struct io_op *op, enum io_op_type type, int fd)
{
    YGGR_ASSERT(type == IO_FSYNC || type == IO_FDATASYNC);
    YGGR_ASSERT(fd >= 0);
    prep(op, type, fd);
}

void io_prep_ftruncate(struct io_op *op, int fd, uint64_t length)
{
    YGGR_ASSERT(fd >= 0);
    prep(op, IO_FTRUNCATE, fd);
    op->length = length;
}

void io_prep_fallocate(struct io_op *op, int fd, uint64_t offset, uint64_t length)
{
    YGGR_ASSERT(fd >= 0);
    YGGR_ASSERT(length > 0);
    prep(op, IO_FALLOCATE, fd);
    op->offset = offset;
    op->length = length;
}

void io_prep_rename(struct io_op *op, const char *from, const char *to)
{
    YGGR_ASSERT(from != NULL && to != NULL);
    prep(op, IO_RENAME, -1);
    op->path = from;
    op->path2 = to;
}

void io_prep_unlink(struct io_op *op, const char *path)
{
    YGGR_ASSERT(path != NULL);
    prep(op, IO_UNLINK, -1);
    op->path = path;
}

void io_prep_mkdir(struct io_op *op, const char *path, uint32_t mode)
{
    YGGR_ASSERT(path != NULL);
    prep(op, IO_MKDIR, -1);
    op->path = path;
    op->mode = mode;
}

void io_prep_fstat(struct io_op *op, int fd)
{
    YGGR_ASSERT(fd >= 0);
    prep(op, IO_FSTAT, fd);
}

int64_t io_exec_open(struct storage_io *io, const char *path, int flags, uint32_t mode)
{
    struct io_op op;
    io_prep_open(&op, path, flags, mode);
    return io->ops->exec(io, &op);
}

int io_exec_close(struct storage_io *io, int fd)
{
    struct io_op op;
    io_prep_close(&op, fd);
    return (int)io->ops->exec(io, &op);
}

int io_exec_pwrite(struct storage_io *io, int fd, const void *buf, size_t len, uint64_t off)
{
    YGGR_ASSERT(len > 0 && len <= UINT32_MAX);
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    struct io_op op;
    io_prep_writev(&op, fd, &iov, 1, off);
    int64_t rc = io->ops->exec(io, &op);
    if (rc >= 0 && (size_t)rc != len) {
        return -EIO;
    }
    return rc < 0 ? (int)rc : 0;
}

int64_t io_exec_pread(struct storage_io *io, int fd, void *buf, size_t len, uint64_t off)
{
    YGGR_ASSERT(len <= UINT32_MAX);
    size_t done = 0;
    while (done < len) {
        struct io_op op;
        io_prep_read(&op, fd, (uint8_t *)buf + done, (uint32_t)(len - done), off + done);
        int64_t rc = io->ops->exec(io, &op);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0) {
            break;
        }
        done += (size_t)rc;
    }
    return (int64_t)done;
}

int io_exec_sync(struct storage_io *io, enum io_op_type type, int fd)
{
    struct io_op op;
    io_prep_sync(&op, type, fd);
    return (int)io->ops->exec(io, &op);
}

int io_exec_rename(struct storage_io *io, const char *from, const char *to)
{
    struct io_op op;
    io_prep_rename(&op, from, to);
    return (int)io->ops->exec(io, &op);
}

int io_exec_unlink(struct storage_io *io, const char *path)
{
    struct io_op op;
    io_prep_unlink(&op, path);
    return (int)io->ops->exec(io, &op);
}

int64_t io_exec_size(struct storage_io *io, int fd)
{
    struct io_op op;
    io_prep_fstat(&op, fd);
    return io->ops->exec(io, &op);
}

int io_exec_sync_dir(struct storage_io *io, const char *path)
{
    int64_t fd = io_exec_open(io, path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        return (int)fd;
    }
    int rc = io_exec_sync(io, IO_FSYNC, (int)fd);
    io_exec_close(io, (int)fd);
    return rc;
}
