/* SPDX-License-Identifier: MIT */
/* loadgen wire protocols: request encoding and allocation-free reply parsing for the
 * reference kv line protocol and for RESP (redis protocol). */
#ifndef YGGR_TOOLS_LOADGEN_PROTO_H
#define YGGR_TOOLS_LOADGEN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_kind { PROTO_KIND_LINE, PROTO_KIND_RESP };

enum op_kind { OP_KIND_READ, OP_KIND_WRITE, OP_KIND_DELETE };

enum reply_kind {
    REPLY_KIND_OK,       /* line "OK", RESP +OK (any simple string) */
    REPLY_KIND_NIL,      /* line "<nil>", RESP $-1 / *-1 / _ */
    REPLY_KIND_VALUE,    /* any other line; RESP bulk string */
    REPLY_KIND_INTEGER,  /* RESP :N */
    REPLY_KIND_REDIRECT, /* "REDIRECT node:<id>" / -REDIRECT node:<id> / -MOVED slot host:port */
    REPLY_KIND_ERROR,    /* ERROR ..., PARSE_ERROR ..., RESP -... */
};

/* One parsed reply. Pointers are borrowed from the parsed buffer and valid until it changes. */
struct reply {
    enum reply_kind kind;
    const char *text; /* value, simple string or error text (without ERROR / '-' prefix) */
    size_t len;
    int64_t integer;
    /* Redirects: node id (0 = not given) or address text (NULL = not given). */
    uint32_t redirect_id;
    const char *redirect_addr;
    size_t redirect_addr_len;
    /* Errors: true when the error means "definitely not applied" (see proto_error_is_definite) */
    bool definite;
};

/* Upper bound of one encoded request for a key of key_len and a value of value_len bytes. */
size_t proto_request_max(size_t key_len, size_t value_len);

/* Encode one request into dst (at least proto_request_max() bytes). The write value is the
 * concatenation head + tail (either may be empty), so callers need not assemble it.
 * Returns the number of bytes written. */
size_t proto_encode(enum proto_kind proto, char *dst, enum op_kind op, const char *key,
                    size_t key_len, const char *head, size_t head_len, const char *tail,
                    size_t tail_len);

/* Parse one reply at the start of buf. Returns the bytes consumed (> 0), 0 when the reply is
 * not complete yet, or -1 when the bytes are not a valid reply (the connection is unusable). */
long proto_parse(enum proto_kind proto, const char *buf, size_t len, struct reply *out);

/* True when an error reply text means the request was definitely NOT applied: one ending in
 * "(not applied)" (yggr-kv's marker), PARSE_ERROR, NOTLEADER, NOLEADER, BUSY, "too many
 * in-flight proposals", and the RESP parser errors "ERR unknown command", "ERR wrong number
 * of arguments", "ERR syntax". A text containing "outcome unknown" never is. Every other
 * error leaves a write's outcome unknown (e.g. STEPPEDDOWN). */
bool proto_error_is_definite(const char *text, size_t len);

#endif /* YGGR_TOOLS_LOADGEN_PROTO_H */
