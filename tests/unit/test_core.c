/* SPDX-License-Identifier: MIT */
/* lib/core: CRC32C (both implementations against RFC 3720 vectors), buffers, membership. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <signal.h>
#include <string.h>

#include "crc32c.h"
#include "yggr/types.h"

struct crc_vector {
    const char *name;
    uint8_t data[48];
    size_t len;
    uint32_t want;
};

static void fill_vectors(struct crc_vector *v)
{
    /* RFC 3720 B.4 and the classic "123456789" check value. */
    v[0] = (struct crc_vector){.name = "check", .len = 9, .want = 0xE3069283u};
    memcpy(v[0].data, "123456789", 9);
    v[1] = (struct crc_vector){.name = "zeros", .len = 32, .want = 0x8A9136AAu};
    v[2] = (struct crc_vector){.name = "ones", .len = 32, .want = 0x62A8AB43u};
    memset(v[2].data, 0xFF, 32);
    v[3] = (struct crc_vector){.name = "incrementing", .len = 32, .want = 0x46DD794Eu};
    v[4] = (struct crc_vector){.name = "decrementing", .len = 32, .want = 0x113FDB5Cu};
    for (int i = 0; i < 32; i++) {
        v[3].data[i] = (uint8_t)i;
        v[4].data[i] = (uint8_t)(31 - i);
    }
    v[5] = (struct crc_vector){.name = "empty", .len = 0, .want = 0u};
}

Test(crc32c, software_matches_rfc3720_vectors)
{
    struct crc_vector v[6];
    fill_vectors(v);
    for (int i = 0; i < 6; i++) {
        cr_expect(eq(u32, crc32c_sw(0, v[i].data, v[i].len), v[i].want), "%s", v[i].name);
    }
}

Test(crc32c, hardware_matches_rfc3720_vectors)
{
    if (!crc32c_hw_available()) {
        cr_skip("CPU has no SSE4.2 crc32 instruction");
    }
    struct crc_vector v[6];
    fill_vectors(v);
    for (int i = 0; i < 6; i++) {
        cr_expect(eq(u32, crc32c_hw(0, v[i].data, v[i].len), v[i].want), "%s", v[i].name);
    }
}

Test(crc32c, chaining_equals_one_pass_at_every_split)
{
    uint8_t buf[203];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 131u + 7u);
    }
    uint32_t whole = crc32c(0, buf, sizeof(buf));
    cr_assert(eq(u32, whole, crc32c_sw(0, buf, sizeof(buf))));
    for (size_t split = 0; split <= sizeof(buf); split++) {
        uint32_t c = crc32c(crc32c(0, buf, split), buf + split, sizeof(buf) - split);
        cr_assert(eq(u32, c, whole), "split at %zu", split);
    }
}

Test(crc32c, unaligned_input_gives_same_result)
{
    uint8_t buf[64 + 8];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i ^ 0x5Au);
    }
    uint8_t copy[64];
    for (size_t off = 1; off < 8; off++) {
        memcpy(copy, buf + off, 64);
        cr_assert(eq(u32, crc32c(0, buf + off, 64), crc32c_sw(0, copy, 64)), "offset %zu", off);
    }
}

static int freed;
static void count_free(struct yggr_buf *b)
{
    (void)b;
    freed++;
}

Test(buf, release_frees_at_zero_and_not_before)
{
    static uint8_t bytes[8];
    struct yggr_buf b = {.size = 8, .free_fn = count_free, .data = bytes};
    atomic_init(&b.refs, 1);
    freed = 0;
    yggr_buf_retain(&b);
    yggr_buf_retain(&b);
    yggr_buf_release(&b);
    yggr_buf_release(&b);
    cr_assert(eq(int, freed, 0));
    yggr_buf_release(&b);
    cr_assert(eq(int, freed, 1));
    yggr_buf_release(NULL); /* accepted */
}

Test(buf, release_of_unowned_buffer_never_frees, .signal = SIGABRT)
{
    struct yggr_buf *b = yggr_buf_alloc(16);
    cr_assert_not_null(b);
    yggr_buf_release(b);
    /* A release below zero is a programming error: the assertion aborts. */
    struct yggr_buf dead = {.size = 0};
    atomic_init(&dead.refs, 0);
    yggr_buf_release(&dead);
}

Test(membership, add_voter_moves_learner_and_keeps_order)
{
    struct yggr_membership m = {0};
    cr_assert(yggr_membership_apply(&m, YGGR_CHANGE_ADD_VOTER, 5));
    cr_assert(yggr_membership_apply(&m, YGGR_CHANGE_ADD_VOTER, 2));
    cr_assert(yggr_membership_apply(&m, YGGR_CHANGE_ADD_LEARNER, 9));
    cr_assert(not(yggr_membership_apply(&m, YGGR_CHANGE_ADD_LEARNER, 2)), "voter as learner");
    cr_assert(yggr_membership_apply(&m, YGGR_CHANGE_ADD_VOTER, 9));
    cr_assert(eq(u32, m.voter_count, 3));
    cr_assert(eq(u32, m.learner_count, 0));
    cr_assert(eq(u64, m.voters[0], 2));
    cr_assert(eq(u64, m.voters[1], 5));
    cr_assert(eq(u64, m.voters[2], 9));
}

Test(membership, promote_needs_a_learner_and_remove_drops_both_sets)
{
    struct yggr_membership m = {0};
    cr_assert(not(yggr_membership_apply(&m, YGGR_CHANGE_PROMOTE_LEARNER, 3)));
    yggr_membership_apply(&m, YGGR_CHANGE_ADD_LEARNER, 3);
    cr_assert(yggr_membership_is_learner(&m, 3));
    cr_assert(yggr_membership_apply(&m, YGGR_CHANGE_PROMOTE_LEARNER, 3));
    cr_assert(yggr_membership_is_voter(&m, 3));
    cr_assert(not(yggr_membership_is_learner(&m, 3)));
    cr_assert(yggr_membership_apply(&m, YGGR_CHANGE_REMOVE_VOTER, 3));
    cr_assert(not(yggr_membership_apply(&m, YGGR_CHANGE_REMOVE_VOTER, 3)));
    struct yggr_membership empty = {0};
    cr_assert(yggr_membership_equal(&m, &empty));
}

Test(errors, every_error_has_a_distinct_description)
{
    for (int e = 0; e >= YGGR_ERR_REMOVED; e--) {
        const char *s = yggr_strerror(e);
        cr_assert(ne(str, (char *)s, "unknown error"), "code %d", e);
        for (int f = e - 1; f >= YGGR_ERR_REMOVED; f--) {
            cr_assert(ne(str, (char *)s, (char *)yggr_strerror(f)), "%d vs %d", e, f);
        }
    }
    cr_assert(eq(str, (char *)yggr_strerror(-9999), "unknown error"));
    cr_assert(eq(str, (char *)yggr_role_name(YGGR_ROLE_PRE_CANDIDATE), "pre-candidate"));
}
