/* SPDX-License-Identifier: MIT */
/* The one interface through which storage/ touches files: asynchronous operations with
 * per-operation completion structs, plus a synchronous form. io_uring-backed by default;
 * tests swap in the fault injector (fault_io.h). */
#ifndef YGGR_STORAGE_IO_H
#define YGGR_STORAGE_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * Model (after TigerBeetle's src/io/linux.zig):
 *   - The caller owns a `struct io_op` for each operation (embedded in its own state, never
 *     allocated by the io), fills it with an io_prep_*() helper, sets `done`/`ctx`, and
 *     calls submit(). The op is borrowed by the io until `done` runs.
 *   - submit() only queues. run() flushes queued ops into the kernel (a full submission
 *     queue is handled by submitting and retrying; a linked chain is never split), copies
 *     completions into a local queue, then runs their `done` callbacks. Callbacks may
 *     submit more ops: they are queued and flushed by the next run(); nothing recurses.
 *   - IO_LINK on an op makes the NEXT submitted op run only if this one succeeded
 *     completely (a short read/write counts as failure); otherwise the rest of the chain
 *     completes with -ECANCELED.
 *   - exec() runs one op synchronously on the calling thread (any thread; recovery,
 *     bootstrap and the apply thread's snapshot files use it) and returns its result.
 *   - Results are >= 0 or -errno, exactly as the system call would report them; the
 *     caller maps every errno per operation (storage/disk.c).
 *   - submit()/run() belong to the one thread that called thread_init(); exec() and list()
 *     may be called from any thread.
 */

enum io_op_type {
    IO_OPEN = 1,      /* path, open_flags, mode -> fd */
    IO_CLOSE,         /* fd */
    IO_WRITEV,        /* fd, iov/iov_count at offset -> bytes written (IO_DSYNC: RWF_DSYNC) */
    IO_READ,          /* fd, buf/len at offset -> bytes read */
    IO_FSYNC,         /* fd (also a directory: makes its entries durable) */
    IO_FDATASYNC,     /* fd */
    IO_FTRUNCATE,     /* fd, length */
    IO_FALLOCATE,     /* fd, offset, length (mode 0: allocate, extends the size) */
    IO_RENAME,        /* path -> path2 (atomic replace) */
    IO_UNLINK,        /* path */
    IO_MKDIR,         /* path, mode */
    IO_FSTAT,         /* fd -> file size in bytes */
};

#define IO_LINK  (1u << 0) /* the next op runs only if this one succeeds */
#define IO_DSYNC (1u << 1) /* IO_WRITEV: the write is durable when it completes */

struct io_op;
typedef void (*io_done_fn)(struct io_op *op);

struct io_op {
    enum io_op_type type;
    uint32_t flags;               /* IO_LINK, IO_DSYNC */
    int fd;
    int open_flags;
    uint32_t mode;
    const char *path;             /* borrowed until done */
    const char *path2;
    const struct iovec *iov;      /* borrowed until done */
    uint32_t iov_count;
    uint32_t len;
    void *buf;
    uint64_t offset;
    uint64_t length;
    int64_t result;               /* out: >= 0 or -errno */
    io_done_fn done;              /* runs inside run() on the submitting thread */
    void *ctx;
    struct io_op *next;           /* owner: io (intrusive queues) */
};

struct storage_io;
typedef int (*io_list_fn)(void *ctx, const char *name);

struct storage_io_ops {
    /* On the thread that will submit: set up (e.g. its io_uring). 0 or -errno. */
    int (*thread_init)(struct storage_io *io, uint32_t depth);
    void (*thread_exit)(struct storage_io *io);
    /* Queue `op` (borrowed until its done callback). Never fails. */
    void (*submit)(struct storage_io *io, struct io_op *op);
    /* Flush queued ops, then run the callbacks of completed ones. With `block`, first wait
     * until something completes or `wake_fd` (when >= 0) becomes readable. Returns the
     * number of callbacks run, or -errno when the io itself failed. */
    int (*run)(struct storage_io *io, int wake_fd, bool block);
    /* Run `op` synchronously on the calling thread; returns op->result. */
    int64_t (*exec)(struct storage_io *io, struct io_op *op);
    /* Call fn for every name in directory `dir` (not "." / ".."); stops at and returns
     * fn's first non-zero return; -errno on failure. */
    int (*list)(struct storage_io *io, const char *dir, io_list_fn fn, void *ctx);
    void (*destroy)(struct storage_io *io);
};

struct storage_io {
    const struct storage_io_ops *ops;
};

/* The io_uring implementation (exec/list use plain system calls). NULL on ENOMEM. */
struct storage_io *uring_io_create(void);

/* Shared by the implementations: run `op` with plain system calls (EINTR retried). */
int64_t io_syscall(struct io_op *op);
int io_syscall_list(const char *dir, io_list_fn fn, void *ctx);
const char *io_op_name(enum io_op_type type);

/* Prepare helpers: reset `op` and fill the arguments (done/ctx/flags left to the caller). */
void io_prep_open(struct io_op *op, const char *path, int flags, uint32_t mode);
void io_prep_close(struct io_op *op, int fd);
void io_prep_writev(struct io_op *op, int fd, const struct iovec *iov, uint32_t count,
                    uint64_t offset);
void io_prep_read(struct io_op *op, int fd, void *buf, uint32_t len, uint64_t offset);
void io_prep_sync(struct io_op *op, enum io_op_type type, int fd);
void io_prep_ftruncate(struct io_op *op, int fd, uint64_t length);
void io_prep_fallocate(struct io_op *op, int fd, uint64_t offset, uint64_t length);
void io_prep_rename(struct io_op *op, const char *from, const char *to);
void io_prep_unlink(struct io_op *op, const char *path);
void io_prep_mkdir(struct io_op *op, const char *path, uint32_t mode);
void io_prep_fstat(struct io_op *op, int fd);

/* Synchronous convenience wrappers over io->ops->exec (any thread). */
int64_t io_exec_open(struct storage_io *io, const char *path, int flags, uint32_t mode);
int io_exec_close(struct storage_io *io, int fd);
/* Write all of buf at offset; a short write is returned as -EIO. */
int io_exec_pwrite(struct storage_io *io, int fd, const void *buf, size_t len, uint64_t off);
/* Read up to len bytes; returns bytes read (short at EOF) or -errno. */
int64_t io_exec_pread(struct storage_io *io, int fd, void *buf, size_t len, uint64_t off);
int io_exec_sync(struct storage_io *io, enum io_op_type type, int fd);
int io_exec_rename(struct storage_io *io, const char *from, const char *to);
int io_exec_unlink(struct storage_io *io, const char *path);
int64_t io_exec_size(struct storage_io *io, int fd);
/* fsync the directory at `path` (open, fsync, close). */
int io_exec_sync_dir(struct storage_io *io, const char *path);

#endif /* YGGR_STORAGE_IO_H */
