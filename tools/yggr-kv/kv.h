/* SPDX-License-Identifier: MIT */
/* yggr-kv internals shared by its files. */
#ifndef YGGR_TOOLS_KV_H
#define YGGR_TOOLS_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/yggr.h"

/* ---- The replicated map (state machine; touched only on yggr's apply thread). ---- */

struct kv_map;

struct kv_map *kv_map_new(void);
void kv_map_free(struct kv_map *m);
/* Lookup: returns the value (valid until the next mutation) or NULL. */
const char *kv_map_get(struct kv_map *m, const char *key, uint32_t klen, uint32_t *vlen);
uint64_t kv_map_size(struct kv_map *m);
uint64_t kv_map_digest(struct kv_map *m);

/* Command encoding (the reference kv's): "S\n<key>\n<value>" and "D\n<key>". */
size_t kv_encode_set(uint8_t *out, size_t cap, const char *k, uint32_t kl, const char *v,
                     uint32_t vl);
size_t kv_encode_del(uint8_t *out, size_t cap, const char *k, uint32_t kl);

/* Replies of apply(): "O" (set ok), "P<old value>" (delete: previous), "N" (delete: none). */
struct yggr_state_machine kv_state_machine(struct kv_map *m);

/* ---- Client server (line protocol and RESP on one port). ---- */

enum kv_read_mode {
    KV_READ_LINEARIZABLE = 0,
    KV_READ_LEASE = 1,
    KV_READ_LOCAL = 2,
};

struct kv_server_options {
    const char *client_addr;       /* host:port */
    struct yggr_node *node;
    struct kv_map *map;
    enum kv_read_mode read_mode;
    uint64_t node_id;
    uint32_t max_conns;
    int verbose;
};

struct kv_server;

int kv_server_start(const struct kv_server_options *o, struct kv_server **out, char *why,
                    size_t n);
/* Answer every new request with "shutting down" and wait until the server thread and
 * every JOIN job stopped issuing yggr calls (call before yggr_node_stop). */
void kv_server_quiesce(struct kv_server *s);
/* Stop serving (closes the listener and all connections) and free. */
void kv_server_stop(struct kv_server *s);

/* Parse "host:port" into a sockaddr_in; 0 or -1. */
struct sockaddr_in;
int kv_parse_addr(const char *addr, struct sockaddr_in *out);

#endif /* YGGR_TOOLS_KV_H */
