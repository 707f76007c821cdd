/* SPDX-License-Identifier: MIT */
/* Wire codec: hand-written proto3 encoder/decoder for the reference's raft.proto. */

/*
 * Design notes
 * ------------
 * Schema (package logos.raft.v1; ours = extension fields, docs/wire.md):
 *
 *   Message        oneof kind {1 vote_request .. 9 pre_vote_response}
 *   RequestVote    1 term, 2 candidate_id, 3 last_log_id LogId, [4 transfer bool]
 *   VoteResponse   1 term, 2 result VoteResult{1 GRANTED, 2 REJECTED}, [3 removed bool]
 *   RequestAppendEntries 1 term, 2 leader_id, 3 prev_log_id, 4 repeated entries,
 *                  5 leader_commit, [6 round]
 *   AppendEntriesResponse 1 term, oneof {2 success{1 optional last_appended},
 *                  3 conflict{1 next_index_hint, [2 conflict_term]}}, [4 round]
 *   RequestInstallSnapshot 1 term, 2 leader_id, 3 last_included, 4 data, 5 offset,
 *                  6 done, 7 leader_commit, 8 repeated peers, 9 repeated learners, [10 round]
 *   InstallSnapshotResponse 1 term, 2 last_included, 3 next_offset, 4 done, [5 round]
 *   TimeoutNow     1 term, 2 leader_id
 *   RequestPreVote as RequestVote;  PreVoteResponse 1 term, 2 granted, [3 removed]
 *   LogEntry       1 id LogId, oneof {2 noop{}, 3 command bytes, 4 config_change}
 *   ConfigChange   oneof {1 add_peer, 2 remove_peer, 3 add_learner, 4 promote_learner}
 *   NodeIdRef      1 id, [2 addr string]          LogId  1 index, 2 term
 *
 * Encoding (what protoc emits): scalars only when non-zero; a present sub-message or a
 * set oneof member always, even empty ("12 00" for Noop); fields in number order.
 * Sizes are computed first by *_size() twins of every writer; the writers assert they
 * stay inside the caller's buffer, and codec_msg_encode asserts the exact size written.
 *
 * Decoding follows protobuf's merge rules, as prost (the reference) does: a repeated
 * singular field overwrites (scalars) or merges (sub-messages); a oneof switching member
 * starts from scratch; unknown fields of every wire type (groups included) are skipped;
 * a known field with the wrong wire type is an error. Records are validated when a
 * message is complete (REFERENCE 2.3). Invariants:
 *   1. A failed decode returns -EBADMSG/-ENOBUFS with err->fault set; `out` is garbage.
 *   2. Every pointer stored in a decoded record points inside [body, body + len).
 *   3. No read ever happens past `end`: every advance is checked against it first.
 */
#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "yggr_assert.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };
enum { GROUP_DEPTH_MAX = 64 };

/* ======================================================================================
 * Encoding
 * ==================================================================================== */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t tag_size(uint32_t field)
{
    return varint_size((uint64_t)field << 3);
}

static size_t u64_field_size(uint32_t field, uint64_t v)
{
    return v != 0 ? tag_size(field) + varint_size(v) : 0;
}

static size_t len_field_size(uint32_t field, size_t len)
{
    return tag_size(field) + varint_size(len) + len;
}

struct pb_out {
    uint8_t *p;
    uint8_t *end;
};

static void put_varint(struct pb_out *o, uint64_t v)
{
    YGGR_ASSERT(o->p != NULL);
    YGGR_ASSERT((size_t)(o->end - o->p) >= varint_size(v));
    while (v >= 0x80) {
        *o->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o->p++ = (uint8_t)v;
}

static void put_tag(struct pb_out *o, uint32_t field, uint32_t wt)
{
    YGGR_ASSERT(field > 0);
    YGGR_ASSERT(wt <= WT_I32);
    put_varint(o, ((uint64_t)field << 3) | wt);
}

static void put_u64_field(struct pb_out *o, uint32_t field, uint64_t v)
{
    if (v != 0) {
        put_tag(o, field, WT_VARINT);
        put_varint(o, v);
    }
}

static void put_len_header(struct pb_out *o, uint32_t field, size_t len)
{
    put_tag(o, field, WT_LEN);
    put_varint(o, len);
    YGGR_ASSERT((size_t)(o->end - o->p) >= len);
}

static void put_bytes_field(struct pb_out *o, uint32_t field, const uint8_t *data, size_t len)
{
    put_len_header(o, field, len);
    if (len > 0) {
        YGGR_ASSERT(data != NULL);
        memcpy(o->p, data, len);
        o->p += len;
    }
}

static size_t log_id_size(struct yggr_log_id id)
{
    return u64_field_size(1, id.index) + u64_field_size(2, id.term);
}

static void put_log_id_field(struct pb_out *o, uint32_t field, struct yggr_log_id id)
{
    YGGR_ASSERT(id.index >= 1); /* a present LogId never has index 0 on the wire */
    put_len_header(o, field, log_id_size(id));
    put_u64_field(o, 1, id.index);
    put_u64_field(o, 2, id.term);
}

/* An optional LogId: index 0 means absent. */
static size_t opt_log_id_field_size(uint32_t field, struct yggr_log_id id)
{
    return id.index != 0 ? len_field_size(field, log_id_size(id)) : 0;
}

static void put_opt_log_id_field(struct pb_out *o, uint32_t field, struct yggr_log_id id)
{
    if (id.index != 0) {
        put_log_id_field(o, field, id);
    }
}

static size_t node_ref_size(uint64_t id, size_t addr_len)
{
    return u64_field_size(1, id) + (addr_len > 0 ? len_field_size(2, addr_len) : 0);
}

static void put_node_ref_field(struct pb_out *o, uint32_t field, uint64_t id,
                               const uint8_t *addr, size_t addr_len)
{
    YGGR_ASSERT(id != 0);
    put_len_header(o, field, node_ref_size(id, addr_len));
    put_u64_field(o, 1, id);
    if (addr_len > 0) {
        put_bytes_field(o, 2, addr, addr_len);
    }
}

static size_t config_change_size(const struct yggr_entry *e)
{
    return len_field_size(e->change, node_ref_size(e->node, e->len));
}

static size_t entry_payload_size(const struct yggr_entry *e)
{
    switch ((enum yggr_entry_type)e->type) {
    case YGGR_ENTRY_NOOP: return len_field_size(2, 0);
    case YGGR_ENTRY_COMMAND: return len_field_size(3, e->len);
    case YGGR_ENTRY_CONFIG: return len_field_size(4, config_change_size(e));
    }
    YGGR_UNREACHABLE();
}

size_t codec_entry_size(const struct yggr_entry *entry)
{
    YGGR_ASSERT(entry != NULL);
    YGGR_ASSERT(entry->index >= 1);
    struct yggr_log_id id = {entry->index, entry->term};
    return len_field_size(1, log_id_size(id)) + entry_payload_size(entry);
}

static void put_entry_body(struct pb_out *o, const struct yggr_entry *e)
{
    YGGR_ASSERT(e->len == 0 || e->data != NULL);
    put_log_id_field(o, 1, (struct yggr_log_id){e->index, e->term});
    switch ((enum yggr_entry_type)e->type) {
    case YGGR_ENTRY_NOOP:
        put_len_header(o, 2, 0);
        return;
    case YGGR_ENTRY_COMMAND:
        put_bytes_field(o, 3, e->data, e->len);
        return;
    case YGGR_ENTRY_CONFIG:
        YGGR_ASSERT(e->change >= YGGR_CHANGE_ADD_VOTER);
        YGGR_ASSERT(e->change <= YGGR_CHANGE_PROMOTE_LEARNER);
        put_len_header(o, 4, config_change_size(e));
        put_node_ref_field(o, e->change, e->node, e->data, e->len);
        return;
    }
    YGGR_UNREACHABLE();
}

size_t codec_entry_encode(const struct yggr_entry *entry, uint8_t *out, size_t cap)
{
    size_t size = codec_entry_size(entry);
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(cap >= size);
    struct pb_out o = {out, out + cap};
    put_entry_body(&o, entry);
    YGGR_ASSERT((size_t)(o.p - out) == size);
    return size;
}

static bool snapshot_learner_listed(const struct yggr_membership *c, uint32_t i)
{
    /* The reference strips learners that are also voters; never send such a learner. */
    return !yggr_membership_is_voter(c, c->learners[i]);
}

static size_t members_size(const struct yggr_membership *c)
{
    size_t n = 0;
    if (c == NULL) {
        return 0;
    }
    YGGR_ASSERT(c->voter_count <= YGGR_MAX_MEMBERS);
    YGGR_ASSERT(c->learner_count <= YGGR_MAX_MEMBERS);
    for (uint32_t i = 0; i < c->voter_count; i++) {
        n += len_field_size(8, node_ref_size(c->voters[i], 0));
    }
    for (uint32_t i = 0; i < c->learner_count; i++) {
        if (snapshot_learner_listed(c, i)) {
            n += len_field_size(9, node_ref_size(c->learners[i], 0));
        }
    }
    return n;
}

static void put_members(struct pb_out *o, const struct yggr_membership *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t i = 0; i < c->voter_count; i++) {
        put_node_ref_field(o, 8, c->voters[i], NULL, 0);
    }
    for (uint32_t i = 0; i < c->learner_count; i++) {
        if (snapshot_learner_listed(c, i)) {
            put_node_ref_field(o, 9, c->learners[i], NULL, 0);
        }
    }
}

static uint64_t conflict_hint(const struct yggr_msg_append_response *r)
{
    /* Never emit hint 0: the reference rejects it (REFERENCE 8.1 #13). */
    return r->hint != 0 ? r->hint : 1;
}

static size_t append_response_result_size(const struct yggr_msg_append_response *r)
{
    if (r->success) {
        return len_field_size(2, u64_field_size(1, r->last_appended));
    }
    return len_field_size(3, u64_field_size(1, conflict_hint(r)) +
                                 u64_field_size(2, r->conflict_term));
}

static size_t entries_size(const struct yggr_msg_append_request *a)
{
    size_t n = 0;
    YGGR_ASSERT(!a->from_storage);
    YGGR_ASSERT(a->entry_count == 0 || a->entries != NULL);
    for (uint32_t i = 0; i < a->entry_count; i++) {
        n += len_field_size(4, codec_entry_size(&a->entries[i]));
    }
    return n;
}

/* Size of the inner message (the Message.kind member's payload). */
static size_t inner_size(const struct yggr_msg *m)
{
    size_t n = u64_field_size(1, m->term);
    switch (m->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        return n + u64_field_size(2, m->as.vote_request.candidate_id) +
               opt_log_id_field_size(3, m->as.vote_request.last) +
               u64_field_size(4, m->as.vote_request.transfer);
    case YGGR_MSG_VOTE_RESPONSE:
        return n + u64_field_size(2, m->as.vote_response.granted ? 1 : 2) +
               u64_field_size(3, m->as.vote_response.removed);
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        return n + u64_field_size(2, m->as.vote_response.granted) +
               u64_field_size(3, m->as.vote_response.removed);
    case YGGR_MSG_APPEND_REQUEST:
        return n + u64_field_size(2, m->as.append.leader_id) +
               opt_log_id_field_size(3, m->as.append.prev) + entries_size(&m->as.append) +
               u64_field_size(5, m->as.append.leader_commit) +
               u64_field_size(6, m->as.append.round);
    case YGGR_MSG_APPEND_RESPONSE:
        return n + append_response_result_size(&m->as.append_response) +
               u64_field_size(4, m->as.append_response.round);
    case YGGR_MSG_SNAPSHOT_REQUEST: {
        const struct yggr_msg_snapshot_request *s = &m->as.snapshot;
        return n + u64_field_size(2, s->leader_id) + len_field_size(3, log_id_size(s->last)) +
               (s->len > 0 ? len_field_size(4, s->len) : 0) + u64_field_size(5, s->offset) +
               u64_field_size(6, s->done) + u64_field_size(7, s->leader_commit) +
               members_size(s->config) + u64_field_size(10, s->round);
    }
    case YGGR_MSG_SNAPSHOT_RESPONSE: {
        const struct yggr_msg_snapshot_response *s = &m->as.snapshot_response;
        return n + len_field_size(2, log_id_size(s->last)) +
               u64_field_size(3, s->next_offset) + u64_field_size(4, s->done) +
               u64_field_size(5, s->round);
    }
    case YGGR_MSG_TIMEOUT_NOW:
        return n + u64_field_size(2, m->as.timeout_now.leader_id);
    }
    YGGR_UNREACHABLE();
}

size_t codec_msg_size(const struct yggr_msg *msg)
{
    YGGR_ASSERT(msg != NULL);
    YGGR_ASSERT(msg->type >= YGGR_MSG_VOTE_REQUEST && msg->type <= YGGR_MSG_PRE_VOTE_RESPONSE);
    return len_field_size((uint32_t)msg->type, inner_size(msg));
}

static void put_append_request(struct pb_out *o, const struct yggr_msg_append_request *a)
{
    YGGR_ASSERT(a->leader_id != 0);
    put_u64_field(o, 2, a->leader_id);
    put_opt_log_id_field(o, 3, a->prev);
    for (uint32_t i = 0; i < a->entry_count; i++) {
        const struct yggr_entry *e = &a->entries[i];
        put_len_header(o, 4, codec_entry_size(e));
        put_entry_body(o, e);
    }
    put_u64_field(o, 5, a->leader_commit);
    put_u64_field(o, 6, a->round);
}

static void put_append_response(struct pb_out *o, const struct yggr_msg_append_response *r)
{
    if (r->success) {
        put_len_header(o, 2, u64_field_size(1, r->last_appended));
        put_u64_field(o, 1, r->last_appended);
    } else {
        uint64_t hint = conflict_hint(r);
        put_len_header(o, 3, u64_field_size(1, hint) + u64_field_size(2, r->conflict_term));
        put_u64_field(o, 1, hint);
        put_u64_field(o, 2, r->conflict_term);
    }
    put_u64_field(o, 4, r->round);
}

static void put_snapshot_request(struct pb_out *o, const struct yggr_msg_snapshot_request *s)
{
    YGGR_ASSERT(s->leader_id != 0);
    YGGR_ASSERT(s->len == 0 || s->data != NULL);
    put_u64_field(o, 2, s->leader_id);
    put_log_id_field(o, 3, s->last);
    if (s->len > 0) {
        put_bytes_field(o, 4, s->data, s->len);
    }
    put_u64_field(o, 5, s->offset);
    put_u64_field(o, 6, s->done);
    put_u64_field(o, 7, s->leader_commit);
    put_members(o, s->config);
    put_u64_field(o, 10, s->round);
}

static void put_inner(struct pb_out *o, const struct yggr_msg *m)
{
    put_u64_field(o, 1, m->term);
    switch (m->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        YGGR_ASSERT(m->as.vote_request.candidate_id != 0);
        put_u64_field(o, 2, m->as.vote_request.candidate_id);
        put_opt_log_id_field(o, 3, m->as.vote_request.last);
        put_u64_field(o, 4, m->as.vote_request.transfer);
        return;
    case YGGR_MSG_VOTE_RESPONSE:
        put_u64_field(o, 2, m->as.vote_response.granted ? 1 : 2);
        put_u64_field(o, 3, m->as.vote_response.removed);
        return;
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        put_u64_field(o, 2, m->as.vote_response.granted);
        put_u64_field(o, 3, m->as.vote_response.removed);
        return;
    case YGGR_MSG_APPEND_REQUEST: put_append_request(o, &m->as.append); return;
    case YGGR_MSG_APPEND_RESPONSE: put_append_response(o, &m->as.append_response); return;
    case YGGR_MSG_SNAPSHOT_REQUEST: put_snapshot_request(o, &m->as.snapshot); return;
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        put_log_id_field(o, 2, m->as.snapshot_response.last);
        put_u64_field(o, 3, m->as.snapshot_response.next_offset);
        put_u64_field(o, 4, m->as.snapshot_response.done);
        put_u64_field(o, 5, m->as.snapshot_response.round);
        return;
    case YGGR_MSG_TIMEOUT_NOW:
        YGGR_ASSERT(m->as.timeout_now.leader_id != 0);
        put_u64_field(o, 2, m->as.timeout_now.leader_id);
        return;
    }
    YGGR_UNREACHABLE();
}

size_t codec_msg_encode(const struct yggr_msg *msg, uint8_t *out, size_t cap)
{
    size_t size = codec_msg_size(msg);
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(cap >= size);
    struct pb_out o = {out, out + cap};
    put_len_header(&o, (uint32_t)msg->type, inner_size(msg));
    put_inner(&o, msg);
    YGGR_ASSERT((size_t)(o.p - out) == size);
    return size;
}

size_t codec_frame_size(const struct yggr_msg *msg)
{
    return CODEC_FRAME_HEADER_BYTES + codec_msg_size(msg);
}

void codec_frame_header_put(uint8_t *out, uint64_t sender, uint32_t body_len)
{
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(sender != 0);
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(sender >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; i++) {
        out[8 + i] = (uint8_t)(body_len >> (24 - 8 * i));
    }
}

void codec_frame_header_get(const uint8_t *in, uint64_t *sender, uint32_t *body_len)
{
    YGGR_ASSERT(in != NULL);
    YGGR_ASSERT(sender != NULL && body_len != NULL);
    uint64_t s = 0;
    uint32_t l = 0;
    for (int i = 0; i < 8; i++) {
        s = (s << 8) | in[i];
    }
    for (int i = 0; i < 4; i++) {
        l = (l << 8) | in[8 + i];
    }
    *sender = s;
    *body_len = l;
}

size_t codec_frame_encode(uint64_t sender, const struct yggr_msg *msg, uint8_t *out, size_t cap)
{
    size_t body = codec_msg_size(msg);
    YGGR_ASSERT(body <= UINT32_MAX);
    YGGR_ASSERT(cap >= CODEC_FRAME_HEADER_BYTES + body);
    codec_frame_header_put(out, sender, (uint32_t)body);
    size_t n = codec_msg_encode(msg, out + CODEC_FRAME_HEADER_BYTES, cap - CODEC_FRAME_HEADER_BYTES);
    YGGR_ASSERT(n == body);
    return CODEC_FRAME_HEADER_BYTES + n;
}

/* ======================================================================================
 * Decoding: protobuf primitives
 * ==================================================================================== */

struct pb_in {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *base;          /* start of the whole input, for error offsets */
    struct codec_error *err;
};

static int fail(const struct pb_in *in, enum codec_fault fault, const char *field)
{
    YGGR_ASSERT(fault != CODEC_FAULT_NONE);
    YGGR_ASSERT(in->err != NULL);
    if (in->err->fault == CODEC_FAULT_NONE) {
        in->err->fault = fault;
        in->err->field = field;
        in->err->offset = (size_t)(in->p - in->base);
    }
    return -EBADMSG;
}

static int get_varint(struct pb_in *in, uint64_t *out, const char *field)
{
    uint64_t v = 0;
    YGGR_ASSERT(in->p <= in->end);
    for (unsigned i = 0; i < 10; i++) {
        if (in->p >= in->end) {
            return fail(in, CODEC_FAULT_TRUNCATED, field);
        }
        uint8_t b = *in->p;
        if (i == 9 && b > 1) {
            return fail(in, CODEC_FAULT_VARINT, field);
        }
        in->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *out = v;
            return 0;
        }
    }
    YGGR_UNREACHABLE(); /* the 10th byte either ends the varint or fails above */
}

static int get_tag(struct pb_in *in, uint32_t *field, uint32_t *wt, const char *msg)
{
    uint64_t key;
    int rc = get_varint(in, &key, msg);
    if (rc != 0) {
        return rc;
    }
    if (key > UINT32_MAX || (key >> 3) == 0) {
        return fail(in, CODEC_FAULT_TAG, msg);
    }
    if ((key & 7) > WT_I32) {
        return fail(in, CODEC_FAULT_WIRE_TYPE, msg);
    }
    *field = (uint32_t)(key >> 3);
    *wt = (uint32_t)(key & 7);
    YGGR_ASSERT(*field > 0);
    return 0;
}

/* Read a LEN payload into `sub` (a view sharing base and err). */
static int get_len(struct pb_in *in, struct pb_in *sub, const char *field)
{
    uint64_t len;
    int rc = get_varint(in, &len, field);
    if (rc != 0) {
        return rc;
    }
    if (len > (uint64_t)(in->end - in->p)) {
        return fail(in, CODEC_FAULT_TRUNCATED, field);
    }
    *sub = (struct pb_in){in->p, in->p + len, in->base, in->err};
    in->p += len;
    YGGR_ASSERT(in->p <= in->end);
    return 0;
}

static int skip_fixed(struct pb_in *in, size_t n, const char *msg)
{
    if ((size_t)(in->end - in->p) < n) {
        return fail(in, CODEC_FAULT_TRUNCATED, msg);
    }
    in->p += n;
    return 0;
}

/* Skip one field whose tag was just read; groups are skipped iteratively up to a depth. */
static int skip_field(struct pb_in *in, uint32_t field, uint32_t wt, const char *msg)
{
    uint32_t open[GROUP_DEPTH_MAX];
    unsigned depth = 0;
    for (;;) {
        uint64_t v;
        struct pb_in sub;
        int rc = 0;
        switch (wt) {
        case WT_VARINT: rc = get_varint(in, &v, msg); break;
        case WT_I64: rc = skip_fixed(in, 8, msg); break;
        case WT_LEN: rc = get_len(in, &sub, msg); break;
        case WT_I32: rc = skip_fixed(in, 4, msg); break;
        case WT_SGROUP:
            if (depth == GROUP_DEPTH_MAX) {
                return fail(in, CODEC_FAULT_TAG, msg);
            }
            open[depth++] = field;
            break;
        case WT_EGROUP:
            if (depth == 0 || open[depth - 1] != field) {
                return fail(in, CODEC_FAULT_TAG, msg);
            }
            depth--;
            break;
        default: YGGR_UNREACHABLE();
        }
        if (rc != 0 || depth == 0) {
            return rc;
        }
        rc = get_tag(in, &field, &wt, msg);
        if (rc != 0) {
            return rc;
        }
    }
}

static int want_wt(const struct pb_in *in, uint32_t wt, uint32_t want, const char *field)
{
    return wt == want ? 0 : fail(in, CODEC_FAULT_WIRE_TYPE, field);
}

static int get_u64(struct pb_in *in, uint32_t wt, uint64_t *out, const char *field)
{
    int rc = want_wt(in, wt, WT_VARINT, field);
    return rc != 0 ? rc : get_varint(in, out, field);
}

static int get_bool(struct pb_in *in, uint32_t wt, bool *out, const char *field)
{
    uint64_t v = 0;
    int rc = get_u64(in, wt, &v, field);
    *out = v != 0;
    return rc;
}

static int get_sub(struct pb_in *in, uint32_t wt, struct pb_in *sub, const char *field)
{
    int rc = want_wt(in, wt, WT_LEN, field);
    return rc != 0 ? rc : get_len(in, sub, field);
}

/* ======================================================================================
 * Decoding: messages
 * ==================================================================================== */

/* A message whose fields we all skip (Noop, or nothing known). */
static int dec_skip_all(struct pb_in *in, const char *name)
{
    YGGR_ASSERT(in->p <= in->end);
    while (in->p < in->end) {
        uint32_t f, wt;
        int rc = get_tag(in, &f, &wt, name);
        if (rc == 0) {
            rc = skip_field(in, f, wt, name);
        }
        if (rc != 0) {
            return rc;
        }
    }
    YGGR_ASSERT(in->p == in->end);
    return 0;
}

/* LogId, merged into *id (fields overwrite). */
static int dec_log_id(struct pb_in *in, struct yggr_log_id *id, const char *name)
{
    YGGR_ASSERT(id != NULL);
    YGGR_ASSERT(in->p <= in->end);
    while (in->p < in->end) {
        uint32_t f, wt;
        int rc = get_tag(in, &f, &wt, name);
        if (rc == 0) {
            rc = f == 1   ? get_u64(in, wt, &id->index, name)
                 : f == 2 ? get_u64(in, wt, &id->term, name)
                          : skip_field(in, f, wt, name);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int dec_log_id_field(struct pb_in *in, uint32_t wt, struct yggr_log_id *id, bool *present,
                            const char *name)
{
    struct pb_in sub;
    int rc = get_sub(in, wt, &sub, name);
    if (rc != 0) {
        return rc;
    }
    *present = true;
    return dec_log_id(&sub, id, name);
}

/* NodeIdRef, merged: id and (ours) addr. */
struct node_ref {
    uint64_t id;
    const uint8_t *addr;
    size_t addr_len;
};

static int dec_node_ref(struct pb_in *in, struct node_ref *ref, const char *name)
{
    YGGR_ASSERT(ref != NULL);
    YGGR_ASSERT(in->p <= in->end);
    while (in->p < in->end) {
        uint32_t f, wt;
        struct pb_in sub;
        int rc = get_tag(in, &f, &wt, name);
        if (rc == 0 && f == 1) {
            rc = get_u64(in, wt, &ref->id, name);
        } else if (rc == 0 && f == 2) {
            rc = get_sub(in, wt, &sub, name);
            ref->addr = sub.p;
            ref->addr_len = (size_t)(sub.end - sub.p);
        } else if (rc == 0) {
            rc = skip_field(in, f, wt, name);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ConfigChange: oneof kind 1..4 of NodeIdRef. *kind 0 = none yet. */
static int dec_config_change(struct pb_in *in, uint32_t *kind, struct node_ref *ref)
{
    static const char name[] = "ConfigChange";
    YGGR_ASSERT(kind != NULL && ref != NULL);
    while (in->p < in->end) {
        uint32_t f, wt;
        struct pb_in sub;
        int rc = get_tag(in, &f, &wt, name);
        if (rc == 0 && f >= 1 && f <= 4) {
            rc = get_sub(in, wt, &sub, "ConfigChange.kind");
            if (rc == 0 && *kind != f) {
                *kind = f;
                *ref = (struct node_ref){0};
            }
            if (rc == 0) {
                rc = dec_node_ref(&sub, ref, "NodeIdRef");
            }
        } else if (rc == 0) {
            rc = skip_field(in, f, wt, name);
        }
        if (rc != 0) {
            return rc;
        }
    }
    YGGR_ASSERT(*kind <= 4);
    return 0;
}

/* LogEntry under construction. */
struct entry_view {
    bool has_id;
    struct yggr_log_id id;
    uint32_t payload;             /* 0 none, 2 noop, 3 command, 4 config_change */
    const uint8_t *command;
    size_t command_len;
    uint32_t change;              /* ConfigChange.kind, 0 = absent */
    struct node_ref ref;
};

static int dec_entry_payload(struct pb_in *in, struct entry_view *v, uint32_t f, uint32_t wt)
{
    struct pb_in sub;
    int rc = get_sub(in, wt, &sub, "LogEntry.payload");
    if (rc != 0) {
        return rc;
    }
    if (v->payload != f) {
        v->payload = f;
        v->command = NULL;
        v->command_len = 0;
        v->change = 0;
        v->ref = (struct node_ref){0};
    }
    switch (f) {
    case 2: return dec_skip_all(&sub, "Noop");
    case 3:
        v->command = sub.p;
        v->command_len = (size_t)(sub.end - sub.p);
        return 0;
    case 4: return dec_config_change(&sub, &v->change, &v->ref);
    default: YGGR_UNREACHABLE();
    }
}

static int fail_at_end(struct pb_in *in, enum codec_fault fault, const char *field)
{
    in->p = in->end; /* validation runs once the message is complete */
    return fail(in, fault, field);
}

static int finish_entry(struct pb_in *in, const struct entry_view *v, struct yggr_buf *buf,
                        struct yggr_entry *out)
{
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(v->payload == 0 || (v->payload >= 2 && v->payload <= 4));
    if (!v->has_id) {
        return fail_at_end(in, CODEC_FAULT_MISSING_FIELD, "LogEntry.id");
    }
    if (v->id.index == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_LOG_INDEX, "LogEntry.id");
    }
    *out = (struct yggr_entry){.index = v->id.index, .term = v->id.term};
    const uint8_t *data = NULL;
    size_t len = 0;
    switch (v->payload) {
    case 0: return fail_at_end(in, CODEC_FAULT_MISSING_FIELD, "LogEntry.payload");
    case 2: out->type = YGGR_ENTRY_NOOP; return 0;
    case 3:
        out->type = YGGR_ENTRY_COMMAND;
        data = v->command;
        len = v->command_len;
        break;
    default:
        if (v->change == 0) {
            return fail_at_end(in, CODEC_FAULT_MISSING_FIELD, "ConfigChange.kind");
        }
        if (v->ref.id == 0) {
            return fail_at_end(in, CODEC_FAULT_ZERO_NODE_ID, "NodeIdRef.id");
        }
        out->type = YGGR_ENTRY_CONFIG;
        out->change = (uint8_t)v->change;
        out->node = v->ref.id;
        data = v->ref.addr;
        len = v->ref.addr_len;
        break;
    }
    if (len > UINT32_MAX) {
        return fail_at_end(in, CODEC_FAULT_TOO_LARGE, "LogEntry.payload");
    }
    if (len > 0) {
        out->data = data;
        out->len = (uint32_t)len;
        out->buf = buf;
    }
    return 0;
}

static int dec_entry(struct pb_in *in, struct yggr_buf *buf, struct yggr_entry *out)
{
    struct entry_view v = {0};
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(in->p <= in->end);
    while (in->p < in->end) {
        uint32_t f, wt;
        int rc = get_tag(in, &f, &wt, "LogEntry");
        if (rc == 0 && f == 1) {
            rc = dec_log_id_field(in, wt, &v.id, &v.has_id, "LogEntry.id");
        } else if (rc == 0 && f >= 2 && f <= 4) {
            rc = dec_entry_payload(in, &v, f, wt);
        } else if (rc == 0) {
            rc = skip_field(in, f, wt, "LogEntry");
        }
        if (rc != 0) {
            return rc;
        }
    }
    return finish_entry(in, &v, buf, out);
}

int codec_entry_decode(const uint8_t *in, size_t len, struct yggr_buf *buf,
                       struct yggr_entry *out, struct codec_error *err)
{
    YGGR_ASSERT(in != NULL || len == 0);
    YGGR_ASSERT(out != NULL && err != NULL);
    *err = (struct codec_error){0};
    struct pb_in r = {in, in + len, in, err};
    int rc = dec_entry(&r, buf, out);
    if (rc == 0) {
        YGGR_ASSERT(out->index >= 1);
    }
    return rc;
}

/* A Message under construction: the yggr_msg plus what the mapping needs to validate. */
struct msg_view {
    struct yggr_msg *m;
    struct codec_space *space;
    struct yggr_buf *buf;
    uint32_t kind;                /* Message.kind field number, 0 = none yet */
    bool has_log_id;              /* last_log_id / prev_log_id / last_included present */
    uint32_t result;              /* AppendEntriesResponse.result: 0, 2 success, 3 conflict */
    int32_t vote_result;          /* VoteResponse.result as protobuf's int32 */
    uint32_t entries;             /* entries seen (may exceed space->entry_cap) */
    const uint8_t *data;          /* snapshot chunk */
    size_t data_len;
};

static void reset_view(struct msg_view *v, uint32_t kind)
{
    YGGR_ASSERT(kind >= 1 && kind <= 9);
    YGGR_ASSERT(v->space->config != NULL);
    memset(v->m, 0, sizeof(*v->m));
    v->m->type = (enum yggr_msg_type)kind;
    v->kind = kind;
    v->has_log_id = false;
    v->result = 0;
    v->vote_result = 0;
    v->entries = 0;
    v->data = NULL;
    v->data_len = 0;
    memset(v->space->config, 0, sizeof(*v->space->config));
}

/* Insert into an ascending set (duplicates collapse, as in the reference's BTreeSet). */
static bool member_insert(uint64_t *set, uint32_t *count, uint64_t id)
{
    uint32_t i = 0;
    YGGR_ASSERT(*count <= YGGR_MAX_MEMBERS);
    while (i < *count && set[i] < id) {
        i++;
    }
    if (i < *count && set[i] == id) {
        return true;
    }
    if (*count == YGGR_MAX_MEMBERS) {
        return false;
    }
    memmove(&set[i + 1], &set[i], (*count - i) * sizeof(*set));
    set[i] = id;
    (*count)++;
    YGGR_ASSERT(*count <= YGGR_MAX_MEMBERS);
    return true;
}

static int dec_member(struct pb_in *in, uint32_t wt, struct yggr_membership *c, bool learner)
{
    const char *name = learner ? "RequestInstallSnapshot.learners" : "RequestInstallSnapshot.peers";
    struct pb_in sub;
    struct node_ref ref = {0};
    int rc = get_sub(in, wt, &sub, name);
    if (rc == 0) {
        rc = dec_node_ref(&sub, &ref, name);
    }
    if (rc != 0) {
        return rc;
    }
    if (ref.id == 0) {
        return fail(in, CODEC_FAULT_ZERO_NODE_ID, name);
    }
    bool ok = learner ? member_insert(c->learners, &c->learner_count, ref.id)
                      : member_insert(c->voters, &c->voter_count, ref.id);
    return ok ? 0 : fail(in, CODEC_FAULT_TOO_MANY_MEMBERS, name);
}

static int dec_append_entry(struct pb_in *in, uint32_t wt, struct msg_view *v)
{
    struct yggr_entry scratch;
    struct pb_in sub;
    struct codec_space *s = v->space;
    int rc = get_sub(in, wt, &sub, "RequestAppendEntries.entries");
    if (rc != 0) {
        return rc;
    }
    /* Past the caller's room keep validating (and counting) into a scratch record. */
    struct yggr_entry *slot = v->entries < s->entry_cap ? &s->entries[v->entries] : &scratch;
    rc = dec_entry(&sub, v->buf, slot);
    if (rc == 0) {
        if (v->entries == UINT32_MAX) {
            return fail(in, CODEC_FAULT_TOO_LARGE, "RequestAppendEntries.entries");
        }
        v->entries++;
    }
    return rc;
}

/* One field of the Message.kind member; -ENOENT = unknown here (skip it). Field 1 (term)
 * is common to every kind and handled by the caller. */
static int dec_vote_field(struct pb_in *in, struct msg_view *v, uint32_t f, uint32_t wt)
{
    struct yggr_msg *m = v->m;
    uint64_t raw = 0;
    int rc;
    if (m->type == YGGR_MSG_VOTE_REQUEST || m->type == YGGR_MSG_PRE_VOTE_REQUEST) {
        if (f == 2) {
            return get_u64(in, wt, &m->as.vote_request.candidate_id, "RequestVote.candidate_id");
        }
        if (f == 3) {
            return dec_log_id_field(in, wt, &m->as.vote_request.last, &v->has_log_id,
                                    "RequestVote.last_log_id");
        }
        return f == 4 ? get_bool(in, wt, &m->as.vote_request.transfer, "RequestVote.transfer")
                      : -ENOENT;
    }
    if (m->type == YGGR_MSG_VOTE_RESPONSE) {
        if (f == 2) {
            rc = get_u64(in, wt, &raw, "VoteResponse.result");
            v->vote_result = (int32_t)(uint32_t)raw; /* protobuf int32: low 32 bits */
            return rc;
        }
        return f == 3 ? get_bool(in, wt, &m->as.vote_response.removed, "VoteResponse.removed")
                      : -ENOENT;
    }
    YGGR_ASSERT(m->type == YGGR_MSG_PRE_VOTE_RESPONSE);
    if (f == 2) {
        return get_bool(in, wt, &m->as.vote_response.granted, "PreVoteResponse.granted");
    }
    return f == 3 ? get_bool(in, wt, &m->as.vote_response.removed, "PreVoteResponse.removed")
                  : -ENOENT;
}

static int dec_append_field(struct pb_in *in, struct msg_view *v, uint32_t f, uint32_t wt)
{
    struct yggr_msg_append_request *a = &v->m->as.append;
    YGGR_ASSERT(v->m->type == YGGR_MSG_APPEND_REQUEST);
    switch (f) {
    case 2: return get_u64(in, wt, &a->leader_id, "RequestAppendEntries.leader_id");
    case 3:
        return dec_log_id_field(in, wt, &a->prev, &v->has_log_id,
                                "RequestAppendEntries.prev_log_id");
    case 4: return dec_append_entry(in, wt, v);
    case 5: return get_u64(in, wt, &a->leader_commit, "RequestAppendEntries.leader_commit");
    case 6: return get_u64(in, wt, &a->round, "RequestAppendEntries.round");
    default: return -ENOENT;
    }
}

/* AppendSuccess / AppendConflict body, merged into the response. */
static int dec_append_result(struct pb_in *in, struct msg_view *v, uint32_t f)
{
    struct yggr_msg_append_response *r = &v->m->as.append_response;
    const char *name = f == 2 ? "AppendSuccess" : "AppendConflict";
    YGGR_ASSERT(f == 2 || f == 3);
    if (v->result != f) {
        v->result = f;
        r->last_appended = 0;
        r->hint = 0;
        r->conflict_term = 0;
    }
    while (in->p < in->end) {
        uint32_t g, wt;
        int rc = get_tag(in, &g, &wt, name);
        if (rc == 0 && f == 2 && g == 1) {
            rc = get_u64(in, wt, &r->last_appended, "AppendSuccess.last_appended");
        } else if (rc == 0 && f == 3 && g == 1) {
            rc = get_u64(in, wt, &r->hint, "AppendConflict.next_index_hint");
        } else if (rc == 0 && f == 3 && g == 2) {
            rc = get_u64(in, wt, &r->conflict_term, "AppendConflict.conflict_term");
        } else if (rc == 0) {
            rc = skip_field(in, g, wt, name);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int dec_append_response_field(struct pb_in *in, struct msg_view *v, uint32_t f,
                                     uint32_t wt)
{
    struct pb_in sub;
    YGGR_ASSERT(v->m->type == YGGR_MSG_APPEND_RESPONSE);
    if (f == 2 || f == 3) {
        int rc = get_sub(in, wt, &sub, "AppendEntriesResponse.result");
        return rc != 0 ? rc : dec_append_result(&sub, v, f);
    }
    if (f == 4) {
        return get_u64(in, wt, &v->m->as.append_response.round, "AppendEntriesResponse.round");
    }
    return -ENOENT;
}

static int dec_snapshot_field(struct pb_in *in, struct msg_view *v, uint32_t f, uint32_t wt)
{
    struct yggr_msg_snapshot_request *s = &v->m->as.snapshot;
    struct pb_in sub;
    int rc;
    YGGR_ASSERT(v->m->type == YGGR_MSG_SNAPSHOT_REQUEST);
    switch (f) {
    case 2: return get_u64(in, wt, &s->leader_id, "RequestInstallSnapshot.leader_id");
    case 3:
        return dec_log_id_field(in, wt, &s->last, &v->has_log_id,
                                "RequestInstallSnapshot.last_included");
    case 4:
        rc = get_sub(in, wt, &sub, "RequestInstallSnapshot.data");
        v->data = sub.p;
        v->data_len = rc == 0 ? (size_t)(sub.end - sub.p) : 0;
        return rc;
    case 5: return get_u64(in, wt, &s->offset, "RequestInstallSnapshot.offset");
    case 6: return get_bool(in, wt, &s->done, "RequestInstallSnapshot.done");
    case 7: return get_u64(in, wt, &s->leader_commit, "RequestInstallSnapshot.leader_commit");
    case 8: return dec_member(in, wt, v->space->config, false);
    case 9: return dec_member(in, wt, v->space->config, true);
    case 10: return get_u64(in, wt, &s->round, "RequestInstallSnapshot.round");
    default: return -ENOENT;
    }
}

static int dec_small_field(struct pb_in *in, struct msg_view *v, uint32_t f, uint32_t wt)
{
    struct yggr_msg *m = v->m;
    if (m->type == YGGR_MSG_TIMEOUT_NOW) {
        return f == 2 ? get_u64(in, wt, &m->as.timeout_now.leader_id, "TimeoutNow.leader_id")
                      : -ENOENT;
    }
    YGGR_ASSERT(m->type == YGGR_MSG_SNAPSHOT_RESPONSE);
    struct yggr_msg_snapshot_response *r = &m->as.snapshot_response;
    switch (f) {
    case 2:
        return dec_log_id_field(in, wt, &r->last, &v->has_log_id,
                                "InstallSnapshotResponse.last_included");
    case 3: return get_u64(in, wt, &r->next_offset, "InstallSnapshotResponse.next_offset");
    case 4: return get_bool(in, wt, &r->done, "InstallSnapshotResponse.done");
    case 5: return get_u64(in, wt, &r->round, "InstallSnapshotResponse.round");
    default: return -ENOENT;
    }
}

static int dec_kind_field(struct pb_in *in, struct msg_view *v, uint32_t f, uint32_t wt)
{
    if (f == 1) {
        return get_u64(in, wt, &v->m->term, "Message.term");
    }
    switch (v->m->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_RESPONSE: return dec_vote_field(in, v, f, wt);
    case YGGR_MSG_APPEND_REQUEST: return dec_append_field(in, v, f, wt);
    case YGGR_MSG_APPEND_RESPONSE: return dec_append_response_field(in, v, f, wt);
    case YGGR_MSG_SNAPSHOT_REQUEST: return dec_snapshot_field(in, v, f, wt);
    case YGGR_MSG_SNAPSHOT_RESPONSE:
    case YGGR_MSG_TIMEOUT_NOW: return dec_small_field(in, v, f, wt);
    }
    YGGR_UNREACHABLE();
}

static int dec_kind(struct pb_in *in, struct msg_view *v)
{
    YGGR_ASSERT(v->kind >= 1 && v->kind <= 9);
    YGGR_ASSERT(in->p <= in->end);
    while (in->p < in->end) {
        uint32_t f, wt;
        int rc = get_tag(in, &f, &wt, "Message.kind");
        if (rc == 0) {
            rc = dec_kind_field(in, v, f, wt);
            if (rc == -ENOENT) {
                rc = skip_field(in, f, wt, "Message.kind");
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Strip learners that are also voters (REFERENCE 2.3). */
static void strip_voter_learners(struct yggr_membership *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->learner_count; i++) {
        if (!yggr_membership_is_voter(c, c->learners[i])) {
            c->learners[n++] = c->learners[i];
        }
    }
    YGGR_ASSERT(n <= c->learner_count);
    for (uint32_t i = n; i < c->learner_count; i++) {
        c->learners[i] = 0;
    }
    c->learner_count = n;
}

static int finish_snapshot(struct pb_in *in, struct msg_view *v)
{
    struct yggr_msg_snapshot_request *s = &v->m->as.snapshot;
    if (s->leader_id == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_NODE_ID, "RequestInstallSnapshot.leader_id");
    }
    if (!v->has_log_id) {
        return fail_at_end(in, CODEC_FAULT_MISSING_FIELD, "RequestInstallSnapshot.last_included");
    }
    if (s->last.index == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_LOG_INDEX, "RequestInstallSnapshot.last_included");
    }
    if (v->data_len > UINT32_MAX) {
        return fail_at_end(in, CODEC_FAULT_TOO_LARGE, "RequestInstallSnapshot.data");
    }
    strip_voter_learners(v->space->config);
    s->config = v->space->config;
    if (v->data_len > 0) {
        s->data = v->data;
        s->len = (uint32_t)v->data_len;
        s->buf = v->buf;
    }
    return 0;
}

static int finish_append(struct pb_in *in, struct msg_view *v)
{
    struct yggr_msg_append_request *a = &v->m->as.append;
    struct codec_space *s = v->space;
    if (a->leader_id == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_NODE_ID, "RequestAppendEntries.leader_id");
    }
    if (v->has_log_id && a->prev.index == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_LOG_INDEX, "RequestAppendEntries.prev_log_id");
    }
    s->entry_count = v->entries;
    if (v->entries > s->entry_cap) {
        fail_at_end(in, CODEC_FAULT_NO_ROOM, "RequestAppendEntries.entries");
        in->err->value = v->entries;
        return -ENOBUFS;
    }
    a->entries = v->entries > 0 ? s->entries : NULL;
    a->entry_count = v->entries;
    return 0;
}

static int finish_vote(struct pb_in *in, struct msg_view *v)
{
    struct yggr_msg *m = v->m;
    if (m->type == YGGR_MSG_VOTE_RESPONSE) {
        if (v->vote_result != 1 && v->vote_result != 2) {
            fail_at_end(in, CODEC_FAULT_UNKNOWN_ENUM, "VoteResponse.result");
            in->err->value = (uint64_t)(int64_t)v->vote_result;
            return -EBADMSG;
        }
        m->as.vote_response.granted = v->vote_result == 1;
        return 0;
    }
    if (m->type == YGGR_MSG_PRE_VOTE_RESPONSE) {
        return 0; /* infallible in the reference */
    }
    if (m->as.vote_request.candidate_id == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_NODE_ID, "RequestVote.candidate_id");
    }
    if (v->has_log_id && m->as.vote_request.last.index == 0) {
        return fail_at_end(in, CODEC_FAULT_ZERO_LOG_INDEX, "RequestVote.last_log_id");
    }
    return 0;
}

static int finish_msg(struct pb_in *in, struct msg_view *v)
{
    struct yggr_msg *m = v->m;
    if (v->kind == 0) {
        return fail_at_end(in, CODEC_FAULT_MISSING_FIELD, "Message.kind");
    }
    switch (m->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_RESPONSE: return finish_vote(in, v);
    case YGGR_MSG_APPEND_REQUEST: return finish_append(in, v);
    case YGGR_MSG_APPEND_RESPONSE:
        if (v->result == 0) {
            return fail_at_end(in, CODEC_FAULT_MISSING_FIELD, "AppendEntriesResponse.result");
        }
        m->as.append_response.success = v->result == 2;
        if (v->result == 3 && m->as.append_response.hint == 0) {
            m->as.append_response.hint = 1; /* relaxation: REFERENCE 8.1 #13 */
        }
        return 0;
    case YGGR_MSG_SNAPSHOT_REQUEST: return finish_snapshot(in, v);
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        if (!v->has_log_id) {
            return fail_at_end(in, CODEC_FAULT_MISSING_FIELD,
                               "InstallSnapshotResponse.last_included");
        }
        return m->as.snapshot_response.last.index != 0
                   ? 0
                   : fail_at_end(in, CODEC_FAULT_ZERO_LOG_INDEX,
                                 "InstallSnapshotResponse.last_included");
    case YGGR_MSG_TIMEOUT_NOW:
        return m->as.timeout_now.leader_id != 0
                   ? 0
                   : fail_at_end(in, CODEC_FAULT_ZERO_NODE_ID, "TimeoutNow.leader_id");
    }
    YGGR_UNREACHABLE();
}

int codec_msg_decode(const uint8_t *body, size_t len, struct yggr_buf *buf,
                     struct codec_space *space, struct yggr_msg *out, struct codec_error *err)
{
    YGGR_ASSERT(body != NULL || len == 0);
    YGGR_ASSERT(space != NULL && space->config != NULL && out != NULL && err != NULL);
    YGGR_ASSERT(space->entries != NULL || space->entry_cap == 0);
    *err = (struct codec_error){0};
    memset(out, 0, sizeof(*out));
    space->entry_count = 0;
    struct pb_in in = {body, body + len, body, err};
    struct msg_view v = {.m = out, .space = space, .buf = buf};
    while (in.p < in.end) {
        uint32_t f, wt;
        struct pb_in sub;
        int rc = get_tag(&in, &f, &wt, "Message");
        if (rc == 0 && f >= 1 && f <= 9) {
            rc = get_sub(&in, wt, &sub, "Message.kind");
            if (rc == 0 && v.kind != f) {
                reset_view(&v, f); /* a oneof switching member starts from scratch */
            }
            if (rc == 0) {
                rc = dec_kind(&sub, &v);
            }
        } else if (rc == 0) {
            rc = skip_field(&in, f, wt, "Message");
        }
        if (rc != 0) {
            return rc;
        }
    }
    int rc = finish_msg(&in, &v);
    if (rc == 0) {
        YGGR_ASSERT(out->type == (enum yggr_msg_type)v.kind);
        YGGR_ASSERT(err->fault == CODEC_FAULT_NONE);
    }
    return rc;
}

const char *codec_fault_name(enum codec_fault fault)
{
    switch (fault) {
    case CODEC_FAULT_NONE: return "no error";
    case CODEC_FAULT_TRUNCATED: return "truncated input";
    case CODEC_FAULT_VARINT: return "malformed varint";
    case CODEC_FAULT_TAG: return "invalid field tag";
    case CODEC_FAULT_WIRE_TYPE: return "invalid wire type";
    case CODEC_FAULT_ZERO_NODE_ID: return "zero node id";
    case CODEC_FAULT_ZERO_LOG_INDEX: return "zero log index";
    case CODEC_FAULT_MISSING_FIELD: return "missing field";
    case CODEC_FAULT_UNKNOWN_ENUM: return "unknown enum value";
    case CODEC_FAULT_TOO_MANY_MEMBERS: return "too many members";
    case CODEC_FAULT_TOO_LARGE: return "payload too large";
    case CODEC_FAULT_NO_ROOM: return "more entries than the decode space holds";
    }
    return "unknown fault";
}

int codec_error_format(const struct codec_error *err, char *out, size_t size)
{
    YGGR_ASSERT(err != NULL);
    YGGR_ASSERT(out != NULL || size == 0);
    const char *field = err->field != NULL ? err->field : "?";
    switch (err->fault) {
    case CODEC_FAULT_UNKNOWN_ENUM:
        return snprintf(out, size, "%s %lld in %s at byte %zu", codec_fault_name(err->fault),
                        (long long)err->value, field, err->offset);
    case CODEC_FAULT_NO_ROOM:
        return snprintf(out, size, "%s (%llu needed) in %s", codec_fault_name(err->fault),
                        (unsigned long long)err->value, field);
    case CODEC_FAULT_NONE: return snprintf(out, size, "%s", codec_fault_name(err->fault));
    case CODEC_FAULT_TRUNCATED:
    case CODEC_FAULT_VARINT:
    case CODEC_FAULT_TAG:
    case CODEC_FAULT_WIRE_TYPE:
    case CODEC_FAULT_ZERO_NODE_ID:
    case CODEC_FAULT_ZERO_LOG_INDEX:
    case CODEC_FAULT_MISSING_FIELD:
    case CODEC_FAULT_TOO_MANY_MEMBERS:
    case CODEC_FAULT_TOO_LARGE: break;
    }
    return snprintf(out, size, "%s in %s at byte %zu", codec_fault_name(err->fault), field,
                    err->offset);
}

/* ======================================================================================
 * Equality (tests, fuzzers)
 * ==================================================================================== */

static bool bytes_equal(const uint8_t *a, uint32_t a_len, const uint8_t *b, uint32_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

bool codec_entry_equal(const struct yggr_entry *a, const struct yggr_entry *b)
{
    YGGR_ASSERT(a != NULL && b != NULL);
    if (a->index != b->index || a->term != b->term || a->type != b->type) {
        return false;
    }
    if (a->type == YGGR_ENTRY_CONFIG && (a->change != b->change || a->node != b->node)) {
        return false;
    }
    return a->type == YGGR_ENTRY_NOOP || bytes_equal(a->data, a->len, b->data, b->len);
}

static bool config_equal(const struct yggr_membership *a, const struct yggr_membership *b)
{
    static const struct yggr_membership empty;
    return yggr_membership_equal(a != NULL ? a : &empty, b != NULL ? b : &empty);
}

static bool append_equal(const struct yggr_msg_append_request *a,
                         const struct yggr_msg_append_request *b)
{
    if (a->leader_id != b->leader_id || a->prev.index != b->prev.index ||
        a->prev.term != b->prev.term || a->leader_commit != b->leader_commit ||
        a->round != b->round || a->entry_count != b->entry_count) {
        return false;
    }
    for (uint32_t i = 0; i < a->entry_count; i++) {
        if (!codec_entry_equal(&a->entries[i], &b->entries[i])) {
            return false;
        }
    }
    return true;
}

static bool snapshot_equal(const struct yggr_msg_snapshot_request *a,
                           const struct yggr_msg_snapshot_request *b)
{
    return a->leader_id == b->leader_id && a->last.index == b->last.index &&
           a->last.term == b->last.term && a->offset == b->offset &&
           a->leader_commit == b->leader_commit && a->done == b->done && a->round == b->round &&
           bytes_equal(a->data, a->len, b->data, b->len) && config_equal(a->config, b->config);
}

bool codec_msg_equal(const struct yggr_msg *a, const struct yggr_msg *b)
{
    YGGR_ASSERT(a != NULL && b != NULL);
    if (a->type != b->type || a->term != b->term) {
        return false;
    }
    const struct yggr_msg_append_response *ra = &a->as.append_response;
    const struct yggr_msg_append_response *rb = &b->as.append_response;
    const struct yggr_msg_snapshot_response *sa = &a->as.snapshot_response;
    const struct yggr_msg_snapshot_response *sb = &b->as.snapshot_response;
    switch (a->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        return a->as.vote_request.candidate_id == b->as.vote_request.candidate_id &&
               a->as.vote_request.last.index == b->as.vote_request.last.index &&
               a->as.vote_request.last.term == b->as.vote_request.last.term &&
               a->as.vote_request.transfer == b->as.vote_request.transfer;
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        return a->as.vote_response.granted == b->as.vote_response.granted &&
               a->as.vote_response.removed == b->as.vote_response.removed;
    case YGGR_MSG_APPEND_REQUEST: return append_equal(&a->as.append, &b->as.append);
    case YGGR_MSG_APPEND_RESPONSE:
        return ra->success == rb->success && ra->round == rb->round &&
               (ra->success ? ra->last_appended == rb->last_appended
                            : ra->hint == rb->hint && ra->conflict_term == rb->conflict_term);
    case YGGR_MSG_SNAPSHOT_REQUEST: return snapshot_equal(&a->as.snapshot, &b->as.snapshot);
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        return sa->last.index == sb->last.index && sa->last.term == sb->last.term &&
               sa->next_offset == sb->next_offset && sa->done == sb->done &&
               sa->round == sb->round;
    case YGGR_MSG_TIMEOUT_NOW:
        return a->as.timeout_now.leader_id == b->as.timeout_now.leader_id;
    }
    return false; /* an out-of-range type never equals anything */
}
