/* SPDX-License-Identifier: MIT */
/* lib/core/codec: golden bytes from protoc, negative cases (REFERENCE 6.2), round trips. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "yggr/engine.h"

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must point at tests/transport/fixtures/golden"
#endif

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob load(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.bin", FIXTURE_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing fixture %s (run tests/transport/fixtures/make-golden.sh)", path);
    struct blob b = {malloc(1 << 16), 0};
    cr_assert_not_null(b.data);
    b.len = fread(b.data, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* A record plus the storage its pointers use. */
struct rec {
    struct yggr_msg msg;
    struct yggr_entry entries[8];
    struct yggr_membership config;
};

static const uint8_t *str(const char *s)
{
    return (const uint8_t *)s;
}

static struct yggr_entry command(uint64_t index, uint64_t term, const char *s, uint32_t len)
{
    return (struct yggr_entry){.index = index, .term = term, .type = YGGR_ENTRY_COMMAND,
                               .data = len ? str(s) : NULL, .len = len};
}

static struct yggr_entry config_entry(uint64_t index, uint64_t term, enum yggr_change_type c,
                                      uint64_t node, const char *addr)
{
    uint32_t len = addr ? (uint32_t)strlen(addr) : 0;
    return (struct yggr_entry){.index = index, .term = term, .type = YGGR_ENTRY_CONFIG,
                               .change = (uint8_t)c, .node = node,
                               .data = len ? str(addr) : NULL, .len = len};
}

static struct yggr_msg msg(enum yggr_msg_type type, uint64_t term)
{
    return (struct yggr_msg){.type = type, .term = term};
}

static void set_entries(struct rec *r, uint32_t count)
{
    r->msg.as.append.entries = r->entries;
    r->msg.as.append.entry_count = count;
}

/* Decode `b` and return the error code; the record lands in *out. */
static int decode(const struct blob *b, struct rec *out, struct codec_error *err)
{
    struct codec_space space = {.entries = out->entries, .entry_cap = 8, .config = &out->config};
    memset(out, 0, sizeof(*out));
    space.entries = out->entries;
    space.config = &out->config;
    return codec_msg_decode(b->data, b->len, NULL, &space, &out->msg, err);
}

static void expect_golden(const char *name, const struct yggr_msg *want)
{
    struct blob b = load(name);
    size_t size = codec_msg_size(want);
    cr_expect(eq(sz, size, b.len), "%s: size", name);
    uint8_t out[1 << 12];
    size_t n = codec_msg_encode(want, out, sizeof(out));
    cr_expect(eq(sz, n, b.len), "%s: encoded length", name);
    cr_expect(n == b.len && memcmp(out, b.data, n) == 0, "%s: bytes differ from protoc", name);
    struct rec got;
    struct codec_error err;
    int rc = decode(&b, &got, &err);
    char why[160];
    codec_error_format(&err, why, sizeof(why));
    cr_expect(eq(int, rc, 0), "%s: decode: %s", name, why);
    cr_expect(codec_msg_equal(&got.msg, want), "%s: decoded record differs", name);
    free(b.data);
}

static void expect_decodes_to(const char *name, const struct yggr_msg *want)
{
    struct blob b = load(name);
    struct rec got;
    struct codec_error err;
    cr_expect(eq(int, decode(&b, &got, &err), 0), "%s: decode", name);
    cr_expect(codec_msg_equal(&got.msg, want), "%s: decoded record differs", name);
    free(b.data);
}

static void expect_invalid(const char *name, enum codec_fault fault, const char *field)
{
    struct blob b = load(name);
    struct rec got;
    struct codec_error err;
    int rc = decode(&b, &got, &err);
    cr_expect(eq(int, rc, -EBADMSG), "%s: rc", name);
    cr_expect(eq(int, err.fault, fault), "%s: fault %s", name, codec_fault_name(err.fault));
    cr_expect(err.field != NULL && strcmp(err.field, field) == 0, "%s: field %s, want %s", name,
              err.field ? err.field : "(null)", field);
    free(b.data);
}

static int decode_bytes(const uint8_t *p, size_t n, struct rec *out, struct codec_error *err)
{
    struct blob b = {(uint8_t *)p, n};
    return decode(&b, out, err);
}

/* ---------------------------------------------------------------------------------------
 * Golden: reference schema (protoc output)
 * ------------------------------------------------------------------------------------- */

Test(codec_golden, vote_request_variants_match_protoc)
{
    struct yggr_msg m = msg(YGGR_MSG_VOTE_REQUEST, 5);
    m.as.vote_request = (struct yggr_msg_vote_request){.candidate_id = 2, .last = {10, 4}};
    expect_golden("vote_request", &m);
    m = msg(YGGR_MSG_VOTE_REQUEST, 1);
    m.as.vote_request.candidate_id = 3;
    expect_golden("vote_request_empty_log", &m);
    m = msg(YGGR_MSG_VOTE_REQUEST, 0);
    m.as.vote_request = (struct yggr_msg_vote_request){.candidate_id = 300, .last = {1, 0}};
    expect_golden("vote_request_term0", &m);
}

Test(codec_golden, vote_responses_match_protoc)
{
    struct yggr_msg m = msg(YGGR_MSG_VOTE_RESPONSE, 5);
    m.as.vote_response.granted = true;
    expect_golden("vote_response_granted", &m);
    m = msg(YGGR_MSG_VOTE_RESPONSE, UINT64_MAX);
    expect_golden("vote_response_rejected", &m);
}

Test(codec_golden, heartbeats_match_protoc)
{
    struct yggr_msg m = msg(YGGR_MSG_APPEND_REQUEST, 3);
    m.as.append = (struct yggr_msg_append_request){.leader_id = 1, .prev = {7, 3},
                                                   .leader_commit = 7};
    expect_golden("append_heartbeat", &m);
    m = msg(YGGR_MSG_APPEND_REQUEST, 1);
    m.as.append.leader_id = 1;
    expect_golden("append_heartbeat_empty_log", &m);
}

Test(codec_golden, append_entries_with_every_payload_match_protoc)
{
    struct rec r = {.msg = msg(YGGR_MSG_APPEND_REQUEST, 2)};
    r.msg.as.append = (struct yggr_msg_append_request){.leader_id = 1, .prev = {1, 1},
                                                       .leader_commit = 2};
    r.entries[0] = (struct yggr_entry){.index = 2, .term = 2, .type = YGGR_ENTRY_NOOP};
    r.entries[1] = command(3, 2, "hello", 5);
    r.entries[2] = command(4, 2, "", 0);
    r.entries[3] = command(5, 2, "\0\1\2\377 binary", 11);
    set_entries(&r, 4);
    expect_golden("append_entries", &r.msg);
}

Test(codec_golden, config_change_entries_of_each_kind_match_protoc)
{
    struct rec r = {.msg = msg(YGGR_MSG_APPEND_REQUEST, 9)};
    r.msg.as.append = (struct yggr_msg_append_request){.leader_id = 2, .leader_commit = 1};
    r.entries[0] = config_entry(1, 9, YGGR_CHANGE_ADD_VOTER, 4, NULL);
    r.entries[1] = config_entry(2, 9, YGGR_CHANGE_REMOVE_VOTER, 3, NULL);
    r.entries[2] = config_entry(3, 9, YGGR_CHANGE_ADD_LEARNER, 5, NULL);
    r.entries[3] = config_entry(4, 9, YGGR_CHANGE_PROMOTE_LEARNER, 5, NULL);
    set_entries(&r, 4);
    expect_golden("append_config_entries", &r.msg);
}

Test(codec_golden, append_responses_match_protoc)
{
    struct yggr_msg m = msg(YGGR_MSG_APPEND_RESPONSE, 3);
    m.as.append_response = (struct yggr_msg_append_response){.success = true, .last_appended = 9};
    expect_golden("append_response_success", &m);
    m.as.append_response.last_appended = 0; /* empty log: last_appended absent */
    expect_golden("append_response_success_empty", &m);
    m = msg(YGGR_MSG_APPEND_RESPONSE, 4);
    m.as.append_response.hint = 4;
    expect_golden("append_response_conflict", &m);
}

Test(codec_golden, snapshot_requests_with_peers_and_learners_match_protoc)
{
    struct rec r = {.msg = msg(YGGR_MSG_SNAPSHOT_REQUEST, 7)};
    r.config = (struct yggr_membership){.voter_count = 3, .voters = {1, 2, 3},
                                        .learner_count = 2, .learners = {4, 9}};
    r.msg.as.snapshot = (struct yggr_msg_snapshot_request){
        .leader_id = 1, .last = {100, 6}, .offset = 65536, .leader_commit = 120, .done = true,
        .data = str("snapshot chunk bytes"), .len = 20, .config = &r.config};
    expect_golden("snapshot_request", &r.msg);

    r.config = (struct yggr_membership){.voter_count = 2, .voters = {1, 2}};
    r.msg = msg(YGGR_MSG_SNAPSHOT_REQUEST, 7);
    r.msg.as.snapshot = (struct yggr_msg_snapshot_request){
        .leader_id = 2, .last = {1, 1}, .data = str("abc"), .len = 3, .config = &r.config};
    expect_golden("snapshot_request_first_chunk", &r.msg);

    r.config = (struct yggr_membership){0};
    r.msg = msg(YGGR_MSG_SNAPSHOT_REQUEST, 1);
    r.msg.as.snapshot = (struct yggr_msg_snapshot_request){.leader_id = 1, .last = {5, 0},
                                                           .done = true, .config = &r.config};
    expect_golden("snapshot_request_empty", &r.msg);
}

Test(codec_golden, snapshot_responses_timeout_now_and_pre_votes_match_protoc)
{
    struct yggr_msg m = msg(YGGR_MSG_SNAPSHOT_RESPONSE, 7);
    m.as.snapshot_response = (struct yggr_msg_snapshot_response){.last = {100, 6},
                                                                 .next_offset = 131072};
    expect_golden("snapshot_response", &m);
    m.as.snapshot_response = (struct yggr_msg_snapshot_response){.last = {100, 6}, .done = true};
    expect_golden("snapshot_response_done", &m);
    m = msg(YGGR_MSG_TIMEOUT_NOW, 12);
    m.as.timeout_now.leader_id = 1;
    expect_golden("timeout_now", &m);
    m = msg(YGGR_MSG_PRE_VOTE_REQUEST, 6);
    m.as.vote_request = (struct yggr_msg_vote_request){.candidate_id = 3, .last = {42, 5}};
    expect_golden("pre_vote_request", &m);
    m = msg(YGGR_MSG_PRE_VOTE_REQUEST, 1);
    m.as.vote_request.candidate_id = 2;
    expect_golden("pre_vote_request_empty_log", &m);
    m = msg(YGGR_MSG_PRE_VOTE_RESPONSE, 5);
    m.as.vote_response.granted = true;
    expect_golden("pre_vote_response_granted", &m);
    m.as.vote_response.granted = false;
    expect_golden("pre_vote_response_denied", &m);
}

Test(codec_golden, standalone_log_entries_match_protoc)
{
    struct yggr_entry want[4] = {
        command(7, 3, "set x 1", 7),
        {.index = 1, .term = 1, .type = YGGR_ENTRY_NOOP},
        config_entry(300, 70000, YGGR_CHANGE_PROMOTE_LEARNER, 12, NULL),
        config_entry(2, 1, YGGR_CHANGE_ADD_LEARNER, 3, "127.0.0.3:7003"),
    };
    const char *names[4] = {"entry_command", "entry_noop", "entry_config", "ext_entry_config_addr"};
    for (int i = 0; i < 4; i++) {
        struct blob b = load(names[i]);
        uint8_t out[256];
        size_t n = codec_entry_encode(&want[i], out, sizeof(out));
        cr_expect(eq(sz, n, b.len), "%s", names[i]);
        cr_expect(n == b.len && memcmp(out, b.data, n) == 0, "%s bytes", names[i]);
        struct yggr_entry got;
        struct codec_error err;
        struct yggr_buf tag = {.refs = 1};
        cr_expect(eq(int, codec_entry_decode(b.data, b.len, &tag, &got, &err), 0), "%s", names[i]);
        cr_expect(codec_entry_equal(&got, &want[i]), "%s record", names[i]);
        if (got.len > 0) {
            cr_expect(got.buf == &tag && got.data >= b.data && got.data + got.len <= b.data + b.len,
                      "%s: payload must reference the input", names[i]);
        }
        free(b.data);
    }
    struct blob bad = load("bad_entry_alone_missing_id");
    struct yggr_entry e;
    struct codec_error err;
    cr_expect(eq(int, codec_entry_decode(bad.data, bad.len, NULL, &e, &err), -EBADMSG));
    cr_expect(eq(int, err.fault, CODEC_FAULT_MISSING_FIELD));
    free(bad.data);
}

/* ---------------------------------------------------------------------------------------
 * Golden: extensions, relaxations, unknown fields
 * ------------------------------------------------------------------------------------- */

Test(codec_ext, vote_extensions_match_protoc_with_ext_schema)
{
    struct yggr_msg m = msg(YGGR_MSG_VOTE_REQUEST, 8);
    m.as.vote_request = (struct yggr_msg_vote_request){.candidate_id = 2, .last = {10, 7},
                                                       .transfer = true};
    expect_golden("ext_vote_request_transfer", &m);
    m = msg(YGGR_MSG_PRE_VOTE_REQUEST, 8);
    m.as.vote_request = (struct yggr_msg_vote_request){.candidate_id = 2, .transfer = true};
    expect_golden("ext_pre_vote_request_transfer", &m);
    m = msg(YGGR_MSG_VOTE_RESPONSE, 8);
    m.as.vote_response.removed = true;
    expect_golden("ext_vote_response_removed", &m);
    m = msg(YGGR_MSG_PRE_VOTE_RESPONSE, 8);
    m.as.vote_response.removed = true;
    expect_golden("ext_pre_vote_response_removed", &m);
}

Test(codec_ext, replication_extensions_match_protoc_with_ext_schema)
{
    struct rec r = {.msg = msg(YGGR_MSG_APPEND_REQUEST, 3)};
    r.msg.as.append = (struct yggr_msg_append_request){.leader_id = 1, .prev = {7, 3},
                                                       .leader_commit = 7, .round = 77};
    r.entries[0] = command(8, 3, "x", 1);
    set_entries(&r, 1);
    expect_golden("ext_append_round", &r.msg);

    struct yggr_msg m = msg(YGGR_MSG_APPEND_RESPONSE, 3);
    m.as.append_response = (struct yggr_msg_append_response){.success = true, .last_appended = 8,
                                                             .round = 77};
    expect_golden("ext_append_response_success_round", &m);
    m.as.append_response = (struct yggr_msg_append_response){.hint = 5, .conflict_term = 2,
                                                             .round = 78};
    expect_golden("ext_append_response_conflict_term", &m);

    r.config = (struct yggr_membership){.voter_count = 2, .voters = {1, 2}};
    r.msg = msg(YGGR_MSG_SNAPSHOT_REQUEST, 7);
    r.msg.as.snapshot = (struct yggr_msg_snapshot_request){
        .leader_id = 1, .last = {100, 6}, .data = str("xyz"), .len = 3, .offset = 3,
        .leader_commit = 100, .config = &r.config, .round = 1000000};
    expect_golden("ext_snapshot_request_round", &r.msg);
    m = msg(YGGR_MSG_SNAPSHOT_RESPONSE, 7);
    m.as.snapshot_response = (struct yggr_msg_snapshot_response){.last = {100, 6},
                                                                 .next_offset = 6,
                                                                 .round = 1000000};
    expect_golden("ext_snapshot_response_round", &m);
}

Test(codec_ext, config_entry_address_travels_in_node_id_ref_field_2)
{
    struct rec r = {.msg = msg(YGGR_MSG_APPEND_REQUEST, 9)};
    r.msg.as.append = (struct yggr_msg_append_request){.leader_id = 1, .prev = {3, 9},
                                                       .leader_commit = 3};
    r.entries[0] = config_entry(4, 9, YGGR_CHANGE_ADD_VOTER, 4, "127.0.0.4:7004");
    r.entries[1] = config_entry(5, 9, YGGR_CHANGE_ADD_LEARNER, 6, "[::1]:7006");
    set_entries(&r, 2);
    expect_golden("ext_config_addr", &r.msg);
}

Test(codec_ext, reference_messages_decode_with_extensions_zero)
{
    struct blob b = load("append_heartbeat");
    struct rec got;
    struct codec_error err;
    cr_assert(eq(int, decode(&b, &got, &err), 0));
    cr_expect(eq(u64, got.msg.as.append.round, 0));
    free(b.data);
    b = load("append_response_conflict");
    cr_assert(eq(int, decode(&b, &got, &err), 0));
    cr_expect(eq(u64, got.msg.as.append_response.conflict_term, 0));
    cr_expect(eq(u64, got.msg.as.append_response.round, 0));
    free(b.data);
    b = load("vote_request");
    cr_assert(eq(int, decode(&b, &got, &err), 0));
    cr_expect(not(got.msg.as.vote_request.transfer));
    free(b.data);
    b = load("append_config_entries");
    cr_assert(eq(int, decode(&b, &got, &err), 0));
    cr_expect(eq(u32, got.msg.as.append.entries[0].len, 0), "no address without field 2");
    cr_expect(eq(ptr, (void *)got.msg.as.append.entries[0].data, NULL));
    free(b.data);
}

Test(codec_ext, stale_conflict_hint_zero_is_accepted_as_one)
{
    struct yggr_msg want = msg(YGGR_MSG_APPEND_RESPONSE, 9);
    want.as.append_response.hint = 1;
    expect_decodes_to("relaxed_conflict_hint0", &want);
    /* Our encoder never emits hint 0: it writes 1, which the reference accepts. */
    struct yggr_msg zero = msg(YGGR_MSG_APPEND_RESPONSE, 9);
    uint8_t out[64];
    size_t n = codec_msg_encode(&zero, out, sizeof(out));
    struct blob b = {out, n};
    struct rec got;
    struct codec_error err;
    cr_assert(eq(int, decode(&b, &got, &err), 0));
    cr_expect(eq(u64, got.msg.as.append_response.hint, 1));
    const uint8_t hint_one[] = {0x22, 0x06, 0x08, 0x09, 0x1a, 0x02, 0x08, 0x01};
    cr_expect(eq(sz, n, sizeof(hint_one)));
    cr_expect(memcmp(out, hint_one, sizeof(hint_one)) == 0);
}

Test(codec_ext, empty_follower_success_with_present_zero_is_accepted)
{
    struct yggr_msg want = msg(YGGR_MSG_APPEND_RESPONSE, 2);
    want.as.append_response.success = true;
    expect_decodes_to("relaxed_success_last0", &want);
    /* We encode last_appended 0 as absent (what the reference reads as "log empty"). */
    uint8_t out[64];
    size_t n = codec_msg_encode(&want, out, sizeof(out));
    const uint8_t absent[] = {0x22, 0x04, 0x08, 0x02, 0x12, 0x00};
    cr_expect(eq(sz, n, sizeof(absent)));
    cr_expect(memcmp(out, absent, sizeof(absent)) == 0);
}

Test(codec_ext, unknown_fields_of_every_wire_type_are_skipped_at_every_level)
{
    struct rec r = {.msg = msg(YGGR_MSG_APPEND_REQUEST, 2)};
    r.msg.as.append = (struct yggr_msg_append_request){.leader_id = 1, .prev = {1, 1},
                                                       .leader_commit = 2};
    r.entries[0] = (struct yggr_entry){.index = 2, .term = 2, .type = YGGR_ENTRY_NOOP};
    r.entries[1] = command(3, 2, "hello", 5);
    set_entries(&r, 2);
    expect_decodes_to("future_append_entries", &r.msg);

    r.msg = msg(YGGR_MSG_APPEND_REQUEST, 9);
    r.msg.as.append.leader_id = 2;
    r.entries[0] = config_entry(1, 9, YGGR_CHANGE_ADD_VOTER, 4, NULL);
    set_entries(&r, 1);
    expect_decodes_to("future_config_entry", &r.msg);

    struct yggr_msg m = msg(YGGR_MSG_APPEND_RESPONSE, 4);
    m.as.append_response.hint = 4;
    expect_decodes_to("future_conflict", &m);
}

Test(codec_ext, unknown_groups_are_skipped_and_bad_groups_rejected)
{
    /* timeout_now{term 1, leader 2} followed by group 15 { 1: 5, group 16 { } } at top. */
    const uint8_t ok[] = {0x3a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x7b, 0x08, 0x05,
                          0x83, 0x01, 0x84, 0x01, 0x7c};
    struct rec got;
    struct codec_error err;
    cr_expect(eq(int, decode_bytes(ok, sizeof(ok), &got, &err), 0));
    cr_expect(eq(u64, got.msg.as.timeout_now.leader_id, 2));
    const uint8_t unclosed[] = {0x3a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x7b, 0x08, 0x05};
    cr_expect(eq(int, decode_bytes(unclosed, sizeof(unclosed), &got, &err), -EBADMSG));
    const uint8_t mismatched[] = {0x3a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x7b, 0x84, 0x01};
    cr_expect(eq(int, decode_bytes(mismatched, sizeof(mismatched), &got, &err), -EBADMSG));
    cr_expect(eq(int, err.fault, CODEC_FAULT_TAG));
    const uint8_t stray_end[] = {0x3a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x7c};
    cr_expect(eq(int, decode_bytes(stray_end, sizeof(stray_end), &got, &err), -EBADMSG));
    uint8_t deep[2 + 200] = {0x3a, 0x00};
    for (int i = 2; i < 202; i++) {
        deep[i] = 0x7b; /* 200 nested start-groups: over the depth limit */
    }
    cr_expect(eq(int, decode_bytes(deep, sizeof(deep), &got, &err), -EBADMSG));
}

/* ---------------------------------------------------------------------------------------
 * Negative cases (REFERENCE 6.2) from protoc-made bytes
 * ------------------------------------------------------------------------------------- */

Test(codec_invalid, message_and_vote_validation_matches_reference)
{
    expect_invalid("bad_missing_kind", CODEC_FAULT_MISSING_FIELD, "Message.kind");
    expect_invalid("bad_vote_zero_candidate", CODEC_FAULT_ZERO_NODE_ID, "RequestVote.candidate_id");
    expect_invalid("bad_vote_zero_last_index", CODEC_FAULT_ZERO_LOG_INDEX,
                   "RequestVote.last_log_id");
    expect_invalid("bad_vote_response_unspecified", CODEC_FAULT_UNKNOWN_ENUM,
                   "VoteResponse.result");
    expect_invalid("bad_pre_vote_zero_candidate", CODEC_FAULT_ZERO_NODE_ID,
                   "RequestVote.candidate_id");
    expect_invalid("bad_timeout_now_zero_leader", CODEC_FAULT_ZERO_NODE_ID, "TimeoutNow.leader_id");
}

Test(codec_invalid, append_entries_validation_matches_reference)
{
    expect_invalid("bad_append_zero_leader", CODEC_FAULT_ZERO_NODE_ID,
                   "RequestAppendEntries.leader_id");
    expect_invalid("bad_append_zero_prev_index", CODEC_FAULT_ZERO_LOG_INDEX,
                   "RequestAppendEntries.prev_log_id");
    expect_invalid("bad_entry_missing_id", CODEC_FAULT_MISSING_FIELD, "LogEntry.id");
    expect_invalid("bad_entry_missing_payload", CODEC_FAULT_MISSING_FIELD, "LogEntry.payload");
    expect_invalid("bad_entry_zero_index", CODEC_FAULT_ZERO_LOG_INDEX, "LogEntry.id");
    expect_invalid("bad_config_missing_kind", CODEC_FAULT_MISSING_FIELD, "ConfigChange.kind");
    expect_invalid("bad_config_add_zero_id", CODEC_FAULT_ZERO_NODE_ID, "NodeIdRef.id");
    expect_invalid("bad_config_remove_zero_id", CODEC_FAULT_ZERO_NODE_ID, "NodeIdRef.id");
    expect_invalid("bad_append_response_missing_result", CODEC_FAULT_MISSING_FIELD,
                   "AppendEntriesResponse.result");
}

Test(codec_invalid, snapshot_validation_matches_reference)
{
    expect_invalid("bad_snapshot_zero_leader", CODEC_FAULT_ZERO_NODE_ID,
                   "RequestInstallSnapshot.leader_id");
    expect_invalid("bad_snapshot_missing_last", CODEC_FAULT_MISSING_FIELD,
                   "RequestInstallSnapshot.last_included");
    expect_invalid("bad_snapshot_zero_last", CODEC_FAULT_ZERO_LOG_INDEX,
                   "RequestInstallSnapshot.last_included");
    expect_invalid("bad_snapshot_zero_peer", CODEC_FAULT_ZERO_NODE_ID,
                   "RequestInstallSnapshot.peers");
    expect_invalid("bad_snapshot_zero_learner", CODEC_FAULT_ZERO_NODE_ID,
                   "RequestInstallSnapshot.learners");
    expect_invalid("bad_snapshot_response_missing_last", CODEC_FAULT_MISSING_FIELD,
                   "InstallSnapshotResponse.last_included");
    expect_invalid("bad_snapshot_response_zero_last", CODEC_FAULT_ZERO_LOG_INDEX,
                   "InstallSnapshotResponse.last_included");
}

Test(codec_invalid, unknown_and_negative_vote_results_are_rejected)
{
    const uint8_t seven[] = {0x12, 0x04, 0x08, 0x01, 0x10, 0x07};
    struct rec got;
    struct codec_error err;
    cr_expect(eq(int, decode_bytes(seven, sizeof(seven), &got, &err), -EBADMSG));
    cr_expect(eq(int, err.fault, CODEC_FAULT_UNKNOWN_ENUM));
    cr_expect(eq(u64, err.value, 7));
    /* -1 as protobuf int32: ten-byte varint */
    const uint8_t minus_one[] = {0x12, 0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_expect(eq(int, decode_bytes(minus_one, sizeof(minus_one), &got, &err), -EBADMSG));
    cr_expect(eq(i64, (int64_t)err.value, -1));
    /* 2^32 + 1 truncates to int32 1 = GRANTED, as protobuf's int32 does */
    const uint8_t wrapped[] = {0x12, 0x06, 0x10, 0x81, 0x80, 0x80, 0x80, 0x10};
    cr_expect(eq(int, decode_bytes(wrapped, sizeof(wrapped), &got, &err), 0));
    cr_expect(got.msg.as.vote_response.granted);
}

Test(codec_invalid, malformed_protobuf_is_rejected_with_a_reason)
{
    struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
        enum codec_fault fault;
    } cases[] = {
        {"truncated tag varint", {0x80}, 1, CODEC_FAULT_TRUNCATED},
        {"truncated length", {0x3a, 0x05, 0x08}, 3, CODEC_FAULT_TRUNCATED},
        {"length past end", {0x3a, 0x7f}, 2, CODEC_FAULT_TRUNCATED},
        {"11-byte varint",
         {0x3a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         13, CODEC_FAULT_VARINT},
        {"10th varint byte over 1",
         {0x3a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
         13, CODEC_FAULT_VARINT},
        {"field number 0", {0x02, 0x00}, 2, CODEC_FAULT_TAG},
        {"wire type 6", {0x0e}, 1, CODEC_FAULT_WIRE_TYPE},
        {"wire type 7", {0x3a, 0x01, 0x0f}, 3, CODEC_FAULT_WIRE_TYPE},
        {"known field with wrong wire type", {0x3a, 0x02, 0x0a, 0x00}, 4, CODEC_FAULT_WIRE_TYPE},
        {"kind as varint", {0x38, 0x01}, 2, CODEC_FAULT_WIRE_TYPE},
        {"fixed64 past end", {0x3a, 0x02, 0x19, 0x00}, 4, CODEC_FAULT_TRUNCATED},
        {"key over 32 bits", {0xff, 0xff, 0xff, 0xff, 0x7f}, 5, CODEC_FAULT_TAG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rec got;
        struct codec_error err;
        int rc = decode_bytes(cases[i].bytes, cases[i].len, &got, &err);
        cr_expect(eq(int, rc, -EBADMSG), "%s", cases[i].what);
        cr_expect(eq(int, err.fault, cases[i].fault), "%s: got %s", cases[i].what,
                  codec_fault_name(err.fault));
    }
}

Test(codec_invalid, every_prefix_of_every_fixture_decodes_or_fails_cleanly)
{
    const char *names[] = {"append_entries", "ext_config_addr", "snapshot_request",
                           "future_append_entries", "ext_append_response_conflict_term"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        struct blob b = load(names[k]);
        for (size_t n = 0; n < b.len; n++) {
            uint8_t *copy = malloc(n + 1); /* exact size: ASan catches any overread */
            memcpy(copy, b.data, n);
            struct rec got;
            struct codec_error err;
            int rc = decode_bytes(copy, n, &got, &err);
            cr_expect(rc == 0 || rc == -EBADMSG, "%s[%zu]: rc %d", names[k], n, rc);
            if (rc != 0) {
                cr_expect(ne(int, err.fault, CODEC_FAULT_NONE));
                cr_expect(err.offset <= n);
            }
            free(copy);
        }
        free(b.data);
    }
}

Test(codec_invalid, every_fault_displays_with_its_field)
{
    for (int f = CODEC_FAULT_NONE; f <= CODEC_FAULT_NO_ROOM; f++) {
        struct codec_error err = {.fault = (enum codec_fault)f, .field = "X.y", .value = 3,
                                  .offset = 9};
        char out[160];
        int n = codec_error_format(&err, out, sizeof(out));
        cr_expect(gt(int, n, 0));
        cr_expect(strcmp(codec_fault_name(err.fault), "unknown fault") != 0, "fault %d", f);
        if (f != CODEC_FAULT_NONE) {
            cr_expect(strstr(out, "X.y") != NULL, "%s", out);
        }
    }
    cr_expect(eq(str, (char *)codec_fault_name((enum codec_fault)99), "unknown fault"));
}

/* ---------------------------------------------------------------------------------------
 * Decode space, membership, merge rules, payload references
 * ------------------------------------------------------------------------------------- */

Test(codec_space, too_few_entries_reports_how_many_are_needed_then_retry_succeeds)
{
    struct blob b = load("append_entries");
    struct yggr_entry small[2], big[4];
    struct yggr_membership config;
    struct yggr_msg m;
    struct codec_error err;
    struct codec_space space = {.entries = small, .entry_cap = 2, .config = &config};
    cr_expect(eq(int, codec_msg_decode(b.data, b.len, NULL, &space, &m, &err), -ENOBUFS));
    cr_expect(eq(u32, space.entry_count, 4));
    cr_expect(eq(int, err.fault, CODEC_FAULT_NO_ROOM));
    cr_expect(eq(u64, err.value, 4));
    space = (struct codec_space){.entries = big, .entry_cap = 4, .config = &config};
    cr_expect(eq(int, codec_msg_decode(b.data, b.len, NULL, &space, &m, &err), 0));
    cr_expect(eq(u32, m.as.append.entry_count, 4));
    cr_expect(eq(ptr, (void *)m.as.append.entries, big));
    free(b.data);
}

Test(codec_space, invalid_entry_past_capacity_is_still_an_error)
{
    struct blob b = load("bad_entry_missing_payload");
    struct yggr_membership config;
    struct yggr_msg m;
    struct codec_error err;
    struct codec_space space = {.entries = NULL, .entry_cap = 0, .config = &config};
    cr_expect(eq(int, codec_msg_decode(b.data, b.len, NULL, &space, &m, &err), -EBADMSG));
    free(b.data);
}

Test(codec_space, payloads_reference_the_input_and_its_buffer)
{
    struct blob b = load("ext_config_addr");
    struct yggr_buf frame = {.refs = 1, .data = b.data, .size = (uint32_t)b.len};
    struct rec got;
    struct codec_error err;
    struct codec_space space = {.entries = got.entries, .entry_cap = 8, .config = &got.config};
    cr_assert(eq(int, codec_msg_decode(b.data, b.len, &frame, &space, &got.msg, &err), 0));
    for (uint32_t i = 0; i < got.msg.as.append.entry_count; i++) {
        const struct yggr_entry *e = &got.msg.as.append.entries[i];
        cr_expect(eq(ptr, e->buf, &frame));
        cr_expect(e->data >= b.data && e->data + e->len <= b.data + b.len);
    }
    cr_expect(eq(u32, atomic_load(&frame.refs), 1), "the codec never retains");
    free(b.data);
    b = load("snapshot_request");
    cr_assert(eq(int, codec_msg_decode(b.data, b.len, &frame, &space, &got.msg, &err), 0));
    cr_expect(eq(ptr, got.msg.as.snapshot.buf, &frame));
    cr_expect(eq(ptr, (void *)got.msg.as.snapshot.config, &got.config));
    cr_expect(got.msg.as.snapshot.data > b.data);
    free(b.data);
}

static size_t put_node_ref(uint8_t *p, uint8_t tag, uint8_t id)
{
    p[0] = tag;
    p[1] = 2;
    p[2] = 0x08;
    p[3] = id;
    return 4;
}

Test(codec_space, snapshot_members_are_sorted_deduplicated_and_learners_stripped)
{
    uint8_t body[256];
    size_t n = 0;
    uint8_t inner[240];
    size_t k = 0;
    inner[k++] = 0x10; /* leader_id 1 */
    inner[k++] = 0x01;
    inner[k++] = 0x1a; /* last_included {index 5} */
    inner[k++] = 0x02;
    inner[k++] = 0x08;
    inner[k++] = 0x05;
    const uint8_t voters[] = {3, 1, 3, 2};
    for (int i = 0; i < 4; i++) {
        k += put_node_ref(inner + k, 0x42, voters[i]);
    }
    const uint8_t learners[] = {9, 2, 4, 9};
    for (int i = 0; i < 4; i++) {
        k += put_node_ref(inner + k, 0x4a, learners[i]);
    }
    body[n++] = 0x2a;
    body[n++] = (uint8_t)k;
    memcpy(body + n, inner, k);
    n += k;
    struct rec got;
    struct codec_error err;
    cr_assert(eq(int, decode_bytes(body, n, &got, &err), 0));
    const struct yggr_membership *c = got.msg.as.snapshot.config;
    cr_expect(eq(u32, c->voter_count, 3));
    cr_expect(eq(u64, c->voters[0], 1));
    cr_expect(eq(u64, c->voters[2], 3));
    cr_expect(eq(u32, c->learner_count, 2), "voter 2 is stripped from the learners");
    cr_expect(eq(u64, c->learners[0], 4));
    cr_expect(eq(u64, c->learners[1], 9));
}

Test(codec_space, more_than_max_members_is_rejected)
{
    uint8_t body[512];
    size_t k = 0;
    uint8_t inner[500];
    inner[k++] = 0x10;
    inner[k++] = 0x01;
    inner[k++] = 0x1a;
    inner[k++] = 0x02;
    inner[k++] = 0x08;
    inner[k++] = 0x05;
    for (int i = 1; i <= YGGR_MAX_MEMBERS + 1; i++) {
        k += put_node_ref(inner + k, 0x42, (uint8_t)i);
    }
    body[0] = 0x2a;
    body[1] = (uint8_t)(0x80 | (k & 0x7f));
    body[2] = (uint8_t)(k >> 7);
    memcpy(body + 3, inner, k);
    struct rec got;
    struct codec_error err;
    cr_expect(eq(int, decode_bytes(body, k + 3, &got, &err), -EBADMSG));
    cr_expect(eq(int, err.fault, CODEC_FAULT_TOO_MANY_MEMBERS));
}

Test(codec_space, repeated_kind_merges_and_a_switched_kind_starts_over)
{
    /* append{leader 1, entry 1 noop} + append{commit 1, entry 2 noop}: merged, 2 entries */
    const uint8_t merged[] = {0x1a, 0x0c, 0x10, 0x01, 0x22, 0x08, 0x0a, 0x04, 0x08, 0x01,
                              0x10, 0x01, 0x12, 0x00, 0x1a, 0x0c, 0x28, 0x01, 0x22, 0x08,
                              0x0a, 0x04, 0x08, 0x02, 0x10, 0x01, 0x12, 0x00};
    struct rec got;
    struct codec_error err;
    cr_assert(eq(int, decode_bytes(merged, sizeof(merged), &got, &err), 0));
    cr_expect(eq(u64, got.msg.as.append.leader_id, 1));
    cr_expect(eq(u64, got.msg.as.append.leader_commit, 1));
    cr_expect(eq(u32, got.msg.as.append.entry_count, 2));
    /* append{leader 1} then timeout_now{leader 3}: the last member wins */
    const uint8_t switched[] = {0x1a, 0x02, 0x10, 0x01, 0x3a, 0x02, 0x10, 0x03};
    cr_assert(eq(int, decode_bytes(switched, sizeof(switched), &got, &err), 0));
    cr_expect(eq(int, got.msg.type, YGGR_MSG_TIMEOUT_NOW));
    cr_expect(eq(u64, got.msg.as.timeout_now.leader_id, 3));
}

Test(codec_space, frame_header_is_big_endian)
{
    uint8_t h[CODEC_FRAME_HEADER_BYTES];
    codec_frame_header_put(h, 0x0102030405060708ull, 0x0a0b0c0du);
    const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d};
    cr_expect(memcmp(h, want, sizeof(want)) == 0);
    uint64_t sender;
    uint32_t len;
    codec_frame_header_get(h, &sender, &len);
    cr_expect(eq(u64, sender, 0x0102030405060708ull));
    cr_expect(eq(u32, len, 0x0a0b0c0du));
    struct yggr_msg m = msg(YGGR_MSG_TIMEOUT_NOW, 1);
    m.as.timeout_now.leader_id = 7;
    uint8_t frame[64];
    size_t n = codec_frame_encode(7, &m, frame, sizeof(frame));
    cr_expect(eq(sz, n, codec_frame_size(&m)));
    codec_frame_header_get(frame, &sender, &len);
    cr_expect(eq(u64, sender, 7));
    cr_expect(eq(sz, len, n - CODEC_FRAME_HEADER_BYTES));
}

/* ---------------------------------------------------------------------------------------
 * Property: random records of every type round-trip exactly
 * ------------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t rnd_u64(void)
{
    switch (rnd() % 4) {
    case 0: return 0;
    case 1: return rnd() % 128;
    case 2: return rnd() % 100000;
    default: return rnd();
    }
}

static uint64_t rnd_nonzero(void)
{
    uint64_t v = rnd_u64();
    return v != 0 ? v : 1;
}

static const uint8_t payload_bytes[512] = {1, 2, 3, 0, 255, 'a', 'b'};

static void random_entries(struct rec *r, uint64_t first)
{
    uint32_t n = (uint32_t)(rnd() % 9);
    for (uint32_t i = 0; i < n; i++) {
        struct yggr_entry *e = &r->entries[i];
        uint32_t len = (uint32_t)(rnd() % 3 == 0 ? 0 : rnd() % sizeof(payload_bytes));
        *e = (struct yggr_entry){.index = first + i, .term = rnd_u64(),
                                 .type = (uint8_t)(rnd() % 3)};
        if (e->type == YGGR_ENTRY_CONFIG) {
            e->change = (uint8_t)(1 + rnd() % 4);
            e->node = rnd_nonzero();
        }
        if (e->type != YGGR_ENTRY_NOOP && len > 0) {
            e->data = payload_bytes;
            e->len = len;
        }
    }
    if (n > 8) {
        n = 8;
    }
    set_entries(r, n);
}

static void random_config(struct yggr_membership *c)
{
    *c = (struct yggr_membership){0};
    uint32_t v = (uint32_t)(rnd() % 6), l = (uint32_t)(rnd() % 4);
    for (uint32_t i = 0; i < v; i++) {
        c->voters[c->voter_count++] = i * 3 + 1;
    }
    for (uint32_t i = 0; i < l; i++) {
        c->learners[c->learner_count++] = 1000 + i;
    }
}

static void random_msg(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    r->msg.type = (enum yggr_msg_type)(1 + rnd() % 9);
    r->msg.term = rnd_u64();
    struct yggr_msg *m = &r->msg;
    switch (m->type) {
    case YGGR_MSG_VOTE_REQUEST:
    case YGGR_MSG_PRE_VOTE_REQUEST:
        m->as.vote_request = (struct yggr_msg_vote_request){
            .candidate_id = rnd_nonzero(), .last = {rnd_u64(), rnd_u64()}, .transfer = rnd() & 1};
        if (m->as.vote_request.last.index == 0) {
            m->as.vote_request.last.term = 0;
        }
        break;
    case YGGR_MSG_VOTE_RESPONSE:
    case YGGR_MSG_PRE_VOTE_RESPONSE:
        m->as.vote_response = (struct yggr_msg_vote_response){rnd() & 1, rnd() & 1};
        break;
    case YGGR_MSG_APPEND_REQUEST:
        m->as.append = (struct yggr_msg_append_request){
            .leader_id = rnd_nonzero(), .prev = {rnd() % 1000, rnd_u64()},
            .leader_commit = rnd_u64(), .round = rnd_u64()};
        if (m->as.append.prev.index == 0) {
            m->as.append.prev.term = 0;
        }
        random_entries(r, m->as.append.prev.index + 1);
        break;
    case YGGR_MSG_APPEND_RESPONSE:
        m->as.append_response = (struct yggr_msg_append_response){
            .success = rnd() & 1, .round = rnd_u64()};
        if (m->as.append_response.success) {
            m->as.append_response.last_appended = rnd_u64();
        } else {
            m->as.append_response.hint = rnd_nonzero();
            m->as.append_response.conflict_term = rnd_u64();
        }
        break;
    case YGGR_MSG_SNAPSHOT_REQUEST:
        random_config(&r->config);
        m->as.snapshot = (struct yggr_msg_snapshot_request){
            .leader_id = rnd_nonzero(), .last = {rnd_nonzero(), rnd_u64()}, .offset = rnd_u64(),
            .leader_commit = rnd_u64(), .done = rnd() & 1, .round = rnd_u64(),
            .config = &r->config, .data = payload_bytes,
            .len = (uint32_t)(rnd() % sizeof(payload_bytes))};
        break;
    case YGGR_MSG_SNAPSHOT_RESPONSE:
        m->as.snapshot_response = (struct yggr_msg_snapshot_response){
            .last = {rnd_nonzero(), rnd_u64()}, .next_offset = rnd_u64(), .done = rnd() & 1,
            .round = rnd_u64()};
        break;
    case YGGR_MSG_TIMEOUT_NOW: m->as.timeout_now.leader_id = rnd_nonzero(); break;
    }
}

Test(codec_roundtrip, random_records_of_every_type_round_trip_exactly)
{
    static uint8_t out[1 << 16];
    int seen[10] = {0};
    for (int i = 0; i < 5000; i++) {
        struct rec want, got;
        random_msg(&want);
        seen[want.msg.type]++;
        size_t n = codec_msg_encode(&want.msg, out, sizeof(out));
        cr_assert(eq(sz, n, codec_msg_size(&want.msg)));
        struct codec_error err;
        int rc = decode_bytes(out, n, &got, &err);
        char why[160];
        codec_error_format(&err, why, sizeof(why));
        cr_assert(eq(int, rc, 0), "iteration %d type %d: %s", i, want.msg.type, why);
        cr_assert(codec_msg_equal(&got.msg, &want.msg), "iteration %d type %d", i, want.msg.type);
        /* and re-encoding the decoded record gives the same bytes */
        uint8_t again[1 << 12];
        if (n <= sizeof(again)) {
            cr_assert(eq(sz, codec_msg_encode(&got.msg, again, sizeof(again)), n));
            cr_assert(memcmp(again, out, n) == 0, "iteration %d", i);
        }
    }
    for (int t = 1; t <= 9; t++) {
        cr_expect(gt(int, seen[t], 100), "type %d covered", t);
    }
}
