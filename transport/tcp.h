/* SPDX-License-Identifier: MIT */
/* TCP transport internals shared by tcp.c (driver side), net.c, outbound.c, inbound.c. */
#ifndef YGGR_TRANSPORT_TCP_H
#define YGGR_TRANSPORT_TCP_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <ck_ring.h>
#include <liburing.h>

#include "auth.h"
#include "yggr/plugin.h"

/*
 * Threads: the DRIVER calls the vtable (tcp.c); the NETWORK thread `yggr-net` (net.c)
 * owns every socket and its io_uring. They share only:
 *   cmd ring     drv -> net  struct tcp_cmd: chunks to send, peer set/remove, batch release
 *   batch ring   net -> drv  decoded inbound batches (never full: more slots than batches)
 *   chunk ring   net -> drv  sent or discarded chunks (net keeps an overflow list when full)
 *   stats        per peer slot, written by net, read by the driver (relaxed atomics, with a
 *                generation so a reused slot never shows the previous peer's counters)
 *   doorbell     eventfd read by net's io_uring; written by the driver only when net parked
 * Fields are marked owner: drv / owner: net; everything else is set before start().
 *
 * With a cluster secret (`auth`), links and connections run the handshake of auth.c in
 * their HANDSHAKE state before any frame moves (docs/wire.md, "Authenticated peers").
 */

#define TCP_MAX_PEERS 64u          /* peer slots (2 x YGGR_MAX_MEMBERS) */
#define TCP_MAX_CONNS 128u         /* accepted connections */
#define TCP_CMD_SLOTS 4096u        /* drv -> net ring (power of two) */
#define TCP_CHUNK_RING_SLOTS 8192u /* net -> drv returned chunks */
#define TCP_BATCHES 4u             /* inbound batches (memory: ~0.5 MiB each) */
#define TCP_BATCH_RING_SLOTS 8u    /* > TCP_BATCHES: never full */
#define TCP_BATCH_MSGS 1024u
#define TCP_BATCH_ENTRIES 8192u
#define TCP_BATCH_CONFIGS 32u
#define TCP_BATCH_BUFS 128u
#define TCP_IOV_MAX 64u            /* chunks per sendmsg */
#define TCP_TINY_CHUNK 256u        /* first chunk of a flush: one small message */
#define TCP_SMALL_CHUNK 4096u      /* first chunk of a flush: a few messages */
#define TCP_RBUF_BYTES (256u * 1024u)
#define TCP_HEARTBEAT_MAX 160u     /* a parked heartbeat frame (real ones are < 100 bytes) */
#define TCP_BACKOFF_MIN_MS 50u     /* reference: 50 ms doubling to 2 s */
#define TCP_BACKOFF_MAX_MS 2000u
#define TCP_CQE_BATCH 256u

_Static_assert((TCP_CMD_SLOTS & (TCP_CMD_SLOTS - 1)) == 0, "power of two");
_Static_assert((TCP_CHUNK_RING_SLOTS & (TCP_CHUNK_RING_SLOTS - 1)) == 0, "power of two");
_Static_assert((TCP_BATCH_RING_SLOTS & (TCP_BATCH_RING_SLOTS - 1)) == 0, "power of two");
_Static_assert(TCP_BATCH_RING_SLOTS - 1 >= TCP_BATCHES, "batch ring never full");

/* A numeric socket address. */
struct tcp_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
};

/* Outbound frames for one peer, encoded on the driver thread. Ownership moves drv -> net
 * (cmd ring) -> drv (chunk ring); the driver recycles it. */
struct tcp_chunk {
    struct tcp_chunk *next;
    uint32_t slot;
    uint32_t gen;
    uint32_t cap;
    uint32_t len;                  /* bytes of whole frames */
    uint32_t frames;
    uint32_t sent;                 /* owner: net; bytes written so far */
    bool dropped;                  /* owner: net; discarded unsent (frames counted) */
    uint8_t data[];
};

enum tcp_cmd_type {
    TCP_CMD_SEND = 1,              /* ptr = chunk */
    TCP_CMD_PEER_SET,              /* id, addr */
    TCP_CMD_PEER_REMOVE,
    TCP_CMD_RELEASE,               /* ptr = batch, back to the pool */
    TCP_CMD_STOP,
};

struct tcp_cmd {
    uint32_t type;
    uint32_t slot;
    uint32_t gen;
    uint64_t id;
    void *ptr;
    struct tcp_addr addr;
};

/* One in-flight io_uring operation; user_data = its address (0 = ignore: cancels). */
enum tcp_op_kind {
    TCP_OP_DOORBELL = 1,
    TCP_OP_ACCEPT,
    TCP_OP_CONNECT,
    TCP_OP_SEND,
    TCP_OP_PROBE,                  /* recv on an outbound link: EOF or bytes end it */
    TCP_OP_RECV,
    TCP_OP_HS_SEND,                /* send of a handshake message on an accepted connection */
};

struct tcp_op {
    enum tcp_op_kind kind;
    bool busy;
    void *owner;
};

enum tcp_link_state {
    TCP_LINK_UNUSED = 0,
    TCP_LINK_BACKOFF,              /* waiting for retry_at_ns */
    TCP_LINK_CONNECTING,
    TCP_LINK_HANDSHAKE,            /* authenticating (left at once without a secret) */
    TCP_LINK_ESTABLISHED,
    TCP_LINK_CLOSING,              /* waiting for in-flight ops before close(fd) */
};

/* What the driver can see of a link (tcp_stats.link). */
enum tcp_link_view { TCP_VIEW_PENDING = 0, TCP_VIEW_UP = 1, TCP_VIEW_DOWN = 2 };

struct tcp_stats {
    _Atomic uint32_t gen;          /* generation these counters belong to */
    _Atomic uint32_t link;         /* enum tcp_link_view */
    _Atomic uint64_t bytes_out, frames_out, bytes_in, frames_in;
    _Atomic uint64_t reconnects, drops, decode_errors;
};

/* The network thread's view of a peer: its outbound link. owner: net. */
struct tcp_net_peer {
    uint64_t id;
    uint32_t gen;
    bool used;
    bool removing;                 /* close, then free the slot */
    bool readdress;                /* close, then dial the new address */
    bool pending_set;              /* a PEER_SET arrived while removing */
    struct tcp_cmd pending;
    struct tcp_addr addr;
    enum tcp_link_state state;
    int fd;
    uint32_t inflight;
    struct tcp_op op_connect, op_send, op_probe;
    struct tcp_chunk *head, *tail; /* queued chunks, head possibly partly sent */
    uint32_t iov_chunks;           /* chunks in the sendmsg in flight */
    struct iovec iov[TCP_IOV_MAX];
    struct msghdr mh;
    uint64_t retry_at_ns;
    uint32_t backoff_ms;
    bool ever_connected;
    bool auth_failing;             /* a handshake failure was logged; quiet until success */
    uint8_t probe_buf[64];
    struct auth_hs hs;             /* HANDSHAKE: the dialer side (send on op_send, recv on
                                    * op_probe) */
};

/* The driver's view of a peer. owner: drv. */
struct tcp_drv_peer {
    uint64_t id;
    uint32_t gen;
    bool used;
    struct tcp_chunk *open;        /* being filled by send() */
    struct tcp_chunk *staged, *staged_tail; /* closed, waiting for cmd ring room */
    uint64_t outstanding;          /* chunk bytes not yet returned by net */
    uint32_t hb_len;               /* parked newest heartbeat frame (0 = none) */
    uint8_t hb[TCP_HEARTBEAT_MAX];
    uint64_t drops;
};

enum tcp_conn_state {
    TCP_CONN_FREE = 0,
    TCP_CONN_HANDSHAKE,            /* authenticating (left at once without a secret) */
    TCP_CONN_ESTABLISHED,
    TCP_CONN_CLOSING,
};

/* An accepted connection. owner: net. */
struct tcp_conn {
    enum tcp_conn_state state;
    int fd;
    uint32_t inflight;
    struct tcp_op op_recv;
    struct tcp_op op_send;         /* HANDSHAKE only: CHALLENGE */
    uint64_t sender;               /* fixed by the handshake or the first frame; 0 = none yet */
    uint32_t slot;                 /* sender's peer slot */
    bool blocked;                  /* waiting for a free batch */
    struct yggr_buf *rbuf;         /* NULL until ESTABLISHED */
    uint32_t head;                 /* parse offset */
    uint32_t tail;                 /* received bytes */
    struct tcp_addr remote;        /* for logs */
    struct auth_hs hs;             /* HANDSHAKE: the listener side */
};

enum tcp_batch_state { TCP_BATCH_FREE = 0, TCP_BATCH_FILLING, TCP_BATCH_OUT };

struct tcp_batch {
    enum tcp_batch_state state;    /* FREE/FILLING owner: net; OUT owner: drv */
    struct yggr_msg *msgs;
    uint32_t count;
    struct yggr_entry *entries;
    uint32_t entry_count;
    struct yggr_membership *configs;
    uint32_t config_count;
    struct yggr_buf *bufs[TCP_BATCH_BUFS]; /* one reference each */
    uint32_t buf_count;
    struct yggr_entry *extra;      /* malloc'd entries of one oversized message */
};

CK_RING_PROTOTYPE(tcp_cmd, tcp_cmd)

struct tcp_ptr {
    void *ptr;
};
CK_RING_PROTOTYPE(tcp_ptr, tcp_ptr)

/* ThreadSanitizer cannot see ck_pr's inline-assembly fences, so it would report every
 * hand-over through a ring as a race. In TSan builds only, each ring operation also takes
 * one global mutex: TSan then sees exactly the happens-before the ring guarantees (push
 * before the matching pop) and checks everything else we share. */
#if defined(__SANITIZE_THREAD__)
#define TCP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TCP_TSAN 1
#endif
#endif
#ifdef TCP_TSAN
extern pthread_mutex_t tcp_tsan_ring_lock;
#define TCP_RING_LOCK() pthread_mutex_lock(&tcp_tsan_ring_lock)
#define TCP_RING_UNLOCK() pthread_mutex_unlock(&tcp_tsan_ring_lock)
#else
#define TCP_RING_LOCK() ((void)0)
#define TCP_RING_UNLOCK() ((void)0)
#endif

static inline bool tcp_cmd_push(struct ck_ring *r, struct tcp_cmd *slots, struct tcp_cmd *v)
{
    TCP_RING_LOCK();
    bool ok = ck_ring_enqueue_spsc_tcp_cmd(r, slots, v);
    TCP_RING_UNLOCK();
    return ok;
}

static inline bool tcp_cmd_pop(struct ck_ring *r, struct tcp_cmd *slots, struct tcp_cmd *v)
{
    TCP_RING_LOCK();
    bool ok = ck_ring_dequeue_spsc_tcp_cmd(r, slots, v);
    TCP_RING_UNLOCK();
    return ok;
}

static inline bool tcp_ptr_push(struct ck_ring *r, struct tcp_ptr *slots, void *ptr)
{
    struct tcp_ptr v = {ptr};
    TCP_RING_LOCK();
    bool ok = ck_ring_enqueue_spsc_tcp_ptr(r, slots, &v);
    TCP_RING_UNLOCK();
    return ok;
}

static inline void *tcp_ptr_pop(struct ck_ring *r, struct tcp_ptr *slots)
{
    struct tcp_ptr v = {NULL};
    TCP_RING_LOCK();
    bool ok = ck_ring_dequeue_spsc_tcp_ptr(r, slots, &v);
    TCP_RING_UNLOCK();
    return ok ? v.ptr : NULL;
}

static inline unsigned tcp_ring_size(struct ck_ring *r)
{
    TCP_RING_LOCK();
    unsigned n = ck_ring_size(r);
    TCP_RING_UNLOCK();
    return n;
}

struct yggr_transport {
    /* Set at create, read-only afterwards. */
    uint64_t self;
    uint32_t max_frame_bytes;
    uint64_t peer_queue_bytes;
    uint32_t chunk_bytes;
    struct tcp_addr listen_addr;
    bool bind_outgoing;            /* listen host is not a wildcard */
    void (*log_fn)(void *ctx, int level, const char *msg);
    void *log_ctx;
    yggr_wake_fn wake;
    void *wake_ctx;
    int cpu;
    bool auth;                     /* a cluster secret is configured: handshake first */
    struct auth_key key;           /* derived from the secret and cluster id (auth.c) */

    /* Rings and doorbell. */
    struct ck_ring cmd_ring;
    struct tcp_cmd *cmd_slots;
    struct ck_ring batch_ring;
    struct tcp_ptr *batch_slots;
    struct ck_ring chunk_ring;
    struct tcp_ptr *chunk_slots;
    int bell_fd;
    _Atomic bool parked;           /* net is (about to be) asleep in io_uring_wait */
    _Atomic bool bell_pending;     /* a doorbell write is not yet consumed */

    /* Driver side. owner: drv */
    struct tcp_drv_peer dpeers[TCP_MAX_PEERS];
    struct tcp_chunk *free_list[3];   /* tiny, small, chunk_bytes */
    uint32_t free_count[3];
    struct tcp_batch *unreleased[TCP_BATCHES]; /* released, cmd ring was full */
    uint32_t unreleased_count;
    bool started;
    pthread_t thread;

    /* Thread start handshake. */
    pthread_mutex_t init_lock;
    pthread_cond_t init_cond;
    int init_rc;                   /* 1 = pending, else 0 or -errno */

    /* Network side. owner: net */
    struct io_uring ring;
    int listen_fd;
    struct tcp_op op_accept, op_bell;
    uint64_t bell_value;
    uint64_t accept_retry_at_ns;
    struct tcp_addr accept_addr;   /* filled by the accept in flight */
    bool stopping;
    bool publish_retry;            /* a ring was full: retry soon */
    struct tcp_net_peer npeers[TCP_MAX_PEERS];
    struct tcp_conn conns[TCP_MAX_CONNS];
    uint32_t conn_count;
    struct tcp_batch batches[TCP_BATCHES];
    struct tcp_batch *filling;
    struct tcp_chunk *ret_head, *ret_tail; /* chunks waiting for chunk ring room */
    bool wake_driver;
    uint64_t rng;
    uint64_t log_window_ns;
    uint32_t log_count, log_suppressed;

    /* Shared counters (net writes, driver reads). */
    struct tcp_stats stats[TCP_MAX_PEERS];
    struct tcp_stats unknown;      /* frames from unknown senders, junk connections, and
                                    * bytes_in of every handshake (read before auth) */
};

/* tcp.c */
void tcp_log(struct yggr_transport *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* addr.c */
int addr_parse(const char *text, struct tcp_addr *out);
bool addr_is_wildcard(const struct tcp_addr *a);
bool addr_equal(const struct tcp_addr *a, const struct tcp_addr *b);
int addr_listen(const struct tcp_addr *a, int *fd_out);
int addr_socket_for(const struct tcp_addr *peer, const struct tcp_addr *bind_to, int *fd_out);
uint16_t addr_port(const struct tcp_addr *a);
void addr_format(const struct tcp_addr *a, char *out, size_t size);

/* net.c */
void *net_main(void *arg);
struct io_uring_sqe *net_sqe(struct yggr_transport *t, struct tcp_op *op);
void net_cancel(struct yggr_transport *t, struct tcp_op *op);
uint64_t net_now_ns(void);
void net_return_chunk(struct yggr_transport *t, struct tcp_chunk *c);

/* outbound.c */
void outbound_set(struct yggr_transport *t, const struct tcp_cmd *cmd);
void outbound_remove(struct yggr_transport *t, const struct tcp_cmd *cmd);
void outbound_enqueue(struct yggr_transport *t, struct tcp_chunk *c);
void outbound_complete(struct yggr_transport *t, struct tcp_op *op, int res);
void outbound_timers(struct yggr_transport *t, uint64_t now_ns, uint64_t *next_ns);
void outbound_stop_all(struct yggr_transport *t);
struct tcp_net_peer *outbound_find(struct yggr_transport *t, uint64_t id);

/* inbound.c */
void inbound_accept_arm(struct yggr_transport *t);
void inbound_timers(struct yggr_transport *t, uint64_t now_ns, uint64_t *next_ns);
void inbound_complete(struct yggr_transport *t, struct tcp_op *op, int res);
void inbound_release(struct yggr_transport *t, struct tcp_batch *b);
void inbound_publish(struct yggr_transport *t);
void inbound_close_sender(struct yggr_transport *t, uint64_t id);
void inbound_stop_all(struct yggr_transport *t);
bool inbound_idle(const struct yggr_transport *t);

/* Test hooks (internal; tests link the static library). */
uint16_t tcp_transport_port(const struct yggr_transport *t);
uint64_t tcp_transport_queued_bytes(const struct yggr_transport *t, uint64_t id);

#endif /* YGGR_TRANSPORT_TCP_H */
