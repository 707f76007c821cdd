/* SPDX-License-Identifier: MIT */
/* Wire codec: yggr_msg and yggr_entry <-> the reference's raft.proto bytes, and frames. */
#ifndef YGGR_CORE_CODEC_H
#define YGGR_CORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/engine.h"
#include "yggr/types.h"

/*
 * Frames: [u64 BE sender id][u32 BE body length][body = protobuf logos.raft.v1.Message].
 *
 * The protobuf is written and read by hand, byte-for-byte what protoc-generated proto3
 * code emits for the reference schema (tests/transport/fixtures/raft.proto): default
 * values omitted, fields in field-number order, set oneof members and present optional
 * sub-messages always written (even when empty). Our protocol extensions use new field
 * numbers only (docs/wire.md); a reference decoder skips them as unknown fields and our
 * decoder reads 0/false when they are absent.
 *
 * Encoding never fails: size first (codec_msg_size), then encode into a caller buffer of
 * at least that size. The caller's records must satisfy the engine's invariants (asserted).
 *
 * Decoding never allocates. Entries go into a caller array; payload bytes (commands, config
 * addresses, snapshot data) are REFERENCED in the input: data points into the body and
 * buf is set to the caller's `buf` (not retained: the caller owns the bytes). Decoding
 * validates exactly what the reference validates (REFERENCE 2.3) except two relaxations
 * (REFERENCE 8.1 #13): AppendConflict.next_index_hint 0 decodes as 1 and a present
 * AppendSuccess.last_appended of 0 decodes as 0, so a stale leader or an empty follower's
 * reply is understood instead of killing the connection. Our encoder never emits either.
 * Decode errors are values, never assertions: the input is hostile.
 */

#define CODEC_FRAME_HEADER_BYTES 12u

/* Why a decode failed (REFERENCE 2.3 kinds plus protobuf-level faults). */
enum codec_fault {
    CODEC_FAULT_NONE = 0,
    CODEC_FAULT_TRUNCATED,        /* a varint, length or fixed field runs past the end */
    CODEC_FAULT_VARINT,           /* varint over 10 bytes or over 64 bits */
    CODEC_FAULT_TAG,              /* field number 0 or over 2^29-1, or a bad group */
    CODEC_FAULT_WIRE_TYPE,        /* wire type 6/7, or the wrong one for a known field */
    CODEC_FAULT_ZERO_NODE_ID,     /* a node id is 0 */
    CODEC_FAULT_ZERO_LOG_INDEX,   /* a present LogId has index 0 */
    CODEC_FAULT_MISSING_FIELD,    /* a required field or oneof is absent */
    CODEC_FAULT_UNKNOWN_ENUM,     /* VoteResult unspecified or unknown */
    CODEC_FAULT_TOO_MANY_MEMBERS, /* more than YGGR_MAX_MEMBERS distinct ids in a set */
    CODEC_FAULT_TOO_LARGE,        /* a payload over 4 GiB - 1 (does not fit a record) */
    CODEC_FAULT_NO_ROOM,          /* more entries than the caller's array holds */
};

struct codec_error {
    enum codec_fault fault;
    const char *field;            /* static: "RequestVote.candidate_id", ... */
    uint64_t value;               /* UNKNOWN_ENUM: the number; NO_ROOM: entries needed */
    size_t offset;                /* byte offset in the decoded input */
};

/* Where a decoded message's variable parts go. All borrowed from the caller. */
struct codec_space {
    struct yggr_entry *entries;   /* AppendEntries entries */
    uint32_t entry_cap;
    uint32_t entry_count;         /* out: used; on -ENOBUFS: how many are needed */
    struct yggr_membership *config; /* InstallSnapshot configuration; must not be NULL */
};

/* Size of the protobuf Message body for `msg` (borrowed). */
size_t codec_msg_size(const struct yggr_msg *msg);

/* Write the body into `out` (cap >= codec_msg_size(msg), asserted). Returns bytes written. */
size_t codec_msg_encode(const struct yggr_msg *msg, uint8_t *out, size_t cap);

/* Decode a Message body into `out` (type, term and `as`; from/to are the framing's and are
 * set to 0). Returns 0, -EBADMSG (invalid; `err` says why) or -ENOBUFS (more entries than
 * space->entry_cap: space->entry_count and err->value say how many are needed). `buf` is
 * stored in every entry/snapshot payload that points into `body` (may be NULL). */
int codec_msg_decode(const uint8_t *body, size_t len, struct yggr_buf *buf,
                     struct codec_space *space, struct yggr_msg *out, struct codec_error *err);

/* Frame = header + body. codec_frame_size may exceed UINT32_MAX + 12 for absurd records:
 * callers compare it with their frame limit before encoding. */
size_t codec_frame_size(const struct yggr_msg *msg);
size_t codec_frame_encode(uint64_t sender, const struct yggr_msg *msg, uint8_t *out, size_t cap);
void codec_frame_header_put(uint8_t *out, uint64_t sender, uint32_t body_len);
void codec_frame_header_get(const uint8_t *in, uint64_t *sender, uint32_t *body_len);

/* The LogEntry message alone (the reference's disk record body). The entry's index must
 * be >= 1. Decoding validates as inside AppendEntries; payloads reference `in`. */
size_t codec_entry_size(const struct yggr_entry *entry);
size_t codec_entry_encode(const struct yggr_entry *entry, uint8_t *out, size_t cap);
int codec_entry_decode(const uint8_t *in, size_t len, struct yggr_buf *buf,
                       struct yggr_entry *out, struct codec_error *err);

/* Semantic equality of two records as the wire sees them: type, term, every field and
 * payload BYTES (not buffer pointers); from/to are ignored. For tests and fuzzers. */
bool codec_entry_equal(const struct yggr_entry *a, const struct yggr_entry *b);
bool codec_msg_equal(const struct yggr_msg *a, const struct yggr_msg *b);

/* "zero node id in RequestVote.candidate_id at byte 5"; returns snprintf's count. */
int codec_error_format(const struct codec_error *err, char *out, size_t size);

/* Static name of a fault ("zero node id", ...). */
const char *codec_fault_name(enum codec_fault fault);

#endif /* YGGR_CORE_CODEC_H */
