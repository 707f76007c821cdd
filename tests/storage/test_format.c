/* SPDX-License-Identifier: MIT */
/* Pure storage pieces: on-disk encodings, the segment scanner (torn writes vs corruption,
 * chained CRCs against stale records), and the in-memory log (truncation, compaction). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "format.h"
#include "segment.h"

static struct yggr_storage_meta sample_meta(void)
{
    struct yggr_storage_meta m = {.cluster_id = 0xC1u, .node_id = 2};
    m.bootstrap_config.voter_count = 3;
    m.bootstrap_config.voters[0] = 1;
    m.bootstrap_config.voters[1] = 2;
    m.bootstrap_config.voters[2] = 5;
    m.bootstrap_config.learner_count = 1;
    m.bootstrap_config.learners[0] = 7;
    return m;
}

Test(format, meta_round_trips_and_every_bit_flip_is_detected)
{
    struct yggr_storage_meta m = sample_meta();
    uint8_t buf[FORMAT_META_BYTES];
    format_meta_encode(buf, &m);
    struct yggr_storage_meta got;
    char why[256];
    cr_assert(eq(int, format_meta_decode(buf, sizeof(buf), &got, why, sizeof(why)), 0), "%s", why);
    cr_expect(eq(u64, got.cluster_id, 0xC1u));
    cr_expect(yggr_membership_equal(&got.bootstrap_config, &m.bootstrap_config));
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] ^= 0x08;
        cr_expect(eq(int, format_meta_decode(buf, sizeof(buf), &got, why, sizeof(why)), -EILSEQ),
                  "flip at %zu undetected", i);
        buf[i] ^= 0x08;
    }
    cr_expect(eq(int, format_meta_decode(buf, sizeof(buf) - 1, &got, why, sizeof(why)), -EILSEQ));
}

Test(format, hard_state_slots_round_trip_and_report_empty_or_damaged)
{
    uint8_t slot[FORMAT_SLOT_BYTES];
    struct format_hard_state hs = {.seq = 9, .term = 4, .vote = 3}, got;
    char why[256];
    format_slot_encode(slot, &hs);
    cr_assert(eq(int, format_slot_decode(slot, &got, why, sizeof(why)), 0));
    cr_expect(eq(u64, got.seq, 9));
    cr_expect(eq(u64, got.term, 4));
    cr_expect(eq(u64, got.vote, 3));
    slot[17] ^= 1;
    cr_expect(eq(int, format_slot_decode(slot, &got, why, sizeof(why)), -EILSEQ));
    memset(slot, 0, sizeof(slot));
    cr_expect(eq(int, format_slot_decode(slot, &got, why, sizeof(why)), -ENODATA));
}

Test(format, names_parse_only_exact_forms)
{
    char name[FORMAT_SEG_NAME_LEN + 1];
    uint64_t first = 0;
    format_segment_name(name, 12345);
    cr_expect(eq(str, name, "00000000000000012345.seg"));
    cr_expect(format_parse_segment_name(name, &first));
    cr_expect(eq(u64, first, 12345));
    cr_expect(not(format_parse_segment_name("0000000000000001234.seg", &first)));
    cr_expect(not(format_parse_segment_name("00000000000000000000.seg", &first)));
    cr_expect(not(format_parse_segment_name("0000000000000001234x.seg", &first)));
    cr_expect(not(format_parse_segment_name("99999999999999999999.seg", &first))); /* > 2^64 */
    char snap[FORMAT_SNAP_NAME_MAX];
    struct yggr_log_id id = {0, 0};
    format_snap_name(snap, (struct yggr_log_id){77, 5});
    cr_expect(format_parse_snap_name(snap, &id));
    cr_expect(eq(u64, id.index, 77));
    cr_expect(eq(u64, id.term, 5));
    cr_expect(not(format_parse_snap_name("snap-1-1", &id)));
    cr_expect(format_is_temp_name("snap-00ff.tmp"));
    cr_expect(format_is_temp_name("snap-incoming.partial"));
    cr_expect(format_is_temp_name("next.prep"));
    cr_expect(not(format_is_temp_name("next.ready")));
    cr_expect(not(format_is_temp_name("meta")));
}

Test(format, membership_validation)
{
    struct yggr_membership m = sample_meta().bootstrap_config;
    cr_expect(yggr_membership_valid(&m));
    m.voters[1] = 1; /* not ascending */
    cr_expect(not(yggr_membership_valid(&m)));
    m = sample_meta().bootstrap_config;
    m.learners[0] = 2; /* voter and learner */
    cr_expect(not(yggr_membership_valid(&m)));
    m = sample_meta().bootstrap_config;
    m.voter_count = YGGR_MAX_MEMBERS + 1;
    cr_expect(not(yggr_membership_valid(&m)));
}

Test(format, records_round_trip_every_type_and_depend_on_their_seed)
{
    uint8_t addr[] = "10.0.0.9:7000";
    uint8_t cmd[300];
    for (size_t i = 0; i < sizeof(cmd); i++) {
        cmd[i] = (uint8_t)i;
    }
    struct yggr_entry es[3] = {
        {.index = 5, .term = 2, .type = YGGR_ENTRY_NOOP},
        {.index = 6, .term = 2, .type = YGGR_ENTRY_COMMAND, .data = cmd, .len = sizeof(cmd)},
        {.index = 7, .term = 3, .type = YGGR_ENTRY_CONFIG, .change = YGGR_CHANGE_ADD_LEARNER,
         .node = 9, .data = addr, .len = 13},
    };
    uint8_t buf[1024];
    uint32_t seed = 0xABCDEF01u, crc = 0;
    for (int k = 0; k < 3; k++) {
        uint32_t h = format_record_encode(buf, &es[k], seed, &crc);
        cr_assert(eq(u32, h, format_record_header_size(&es[k])));
        if (es[k].type != YGGR_ENTRY_NOOP) {
            memcpy(buf + h, es[k].data, es[k].len);
        }
        struct format_record rec;
        cr_assert(eq(int, format_record_parse(buf, sizeof(buf), seed, &rec), FORMAT_RECORD_OK));
        cr_expect(eq(u64, rec.index, es[k].index));
        cr_expect(eq(u32, rec.size, format_record_size(&es[k])));
        cr_expect(eq(u32, rec.crc, crc));
        if (es[k].type == YGGR_ENTRY_CONFIG) {
            cr_expect(eq(u8, rec.change, YGGR_CHANGE_ADD_LEARNER));
            cr_expect(eq(u64, rec.node, 9));
            cr_expect(eq(u32, rec.len, 13));
            cr_expect(eq(int, memcmp(rec.data, addr, 13), 0));
        }
        uint32_t size = rec.size;
        cr_expect(eq(int, format_record_parse(buf, sizeof(buf), seed + 1, &rec),
                     FORMAT_RECORD_BAD_CRC), "a record is only valid after its predecessor");
        cr_expect(eq(int, format_record_parse(buf, size - 1, seed, &rec),
                     FORMAT_RECORD_TRUNCATED));
        seed = crc;
    }
    memset(buf, 0, 40);
    struct format_record rec;
    cr_expect(eq(int, format_record_parse(buf, 40, 1, &rec), FORMAT_RECORD_ZERO));
}

/* ---- the scanner over in-memory segments ---------------------------------------------- */

struct img {
    uint8_t *buf;
    size_t len;
    uint64_t first;
    uint64_t off[600];       /* off[i]: offset of record first + i; off[n]: end */
    uint32_t crc[600];
    uint32_t count;
    uint32_t seed;
};

static uint32_t plen(uint64_t index)
{
    return 20 + (uint32_t)(index % 5) * 11;
}

/* A segment of `count` COMMAND records of `term` from `first`, in `len` zeroed bytes. */
static void img_build(struct img *m, uint64_t first, uint32_t count, uint64_t term, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->buf = calloc(1, len);
    m->len = len;
    m->first = first;
    struct format_segment_header hdr = {.first_index = first, .salt = 0x1234 + first};
    format_segment_header_encode(m->buf, &hdr);
    m->seed = hdr.crc;
    m->off[0] = FORMAT_SEG_HEADER_BYTES;
    uint32_t seed = hdr.crc;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t payload[80];
        memset(payload, (int)(first + i + term), sizeof(payload));
        struct yggr_entry e = {.index = first + i, .term = term, .type = YGGR_ENTRY_COMMAND,
                               .data = payload, .len = plen(first + i)};
        uint8_t *p = m->buf + m->off[i];
        uint32_t h = format_record_encode(p, &e, seed, &m->crc[i]);
        memcpy(p + h, payload, e.len);
        seed = m->crc[i];
        m->off[i + 1] = m->off[i] + h + e.len;
    }
    m->count = count;
}

static int scan(struct img *m, uint64_t expect_last, struct segment_scan *s)
{
    memset(s, 0, sizeof(*s));
    s->buf = m->buf;
    s->len = m->len;
    s->first_index = m->first;
    s->expect_last = expect_last;
    return segment_scan(s, NULL, NULL);
}

Test(scan, a_clean_segment_reads_to_its_end)
{
    struct img m;
    img_build(&m, 100, 50, 3, 8192);
    struct segment_scan s;
    cr_assert(eq(int, scan(&m, 0, &s), 0), "%s", s.why);
    cr_expect(eq(u64, s.last_index, 149));
    cr_expect(eq(u64, s.end, m.off[50]));
    cr_expect(eq(u64, s.garbage_end, s.end));
    cr_expect(eq(u32, s.last_crc, m.crc[49]));
    cr_assert(eq(int, scan(&m, 149, &s), 0), "%s", s.why); /* as a sealed segment */
    free(m.buf);
}

Test(scan, a_torn_last_write_is_cut_at_every_byte)
{
    struct img m;
    img_build(&m, 1, 40, 1, 8192);
    uint8_t *full = malloc(m.len);
    memcpy(full, m.buf, m.len);
    uint64_t batch_start = m.off[30]; /* the last batch wrote records 31..40 */
    for (uint64_t cut = batch_start; cut <= m.off[40]; cut++) {
        memcpy(m.buf, full, m.len);
        memset(m.buf + cut, 0, m.len - cut); /* pre-zeroed file: the rest never arrived */
        struct segment_scan s;
        cr_assert(eq(int, scan(&m, 0, &s), 0), "cut %lu: %s", (unsigned long)cut, s.why);
        uint32_t whole = 0;
        while (whole < 40 && m.off[whole + 1] <= cut) {
            whole++;
        }
        cr_assert(eq(u64, s.last_index, whole), "cut %lu", (unsigned long)cut);
        cr_assert(eq(u64, s.end, m.off[whole]));
        cr_assert(le(u64, s.garbage_end, cut));
    }
    free(full);
    free(m.buf);
}

Test(scan, damage_followed_by_a_valid_record_is_corruption)
{
    struct img m;
    img_build(&m, 1, 30, 1, 8192);
    struct segment_scan s;
    uint64_t where[3] = {m.off[9] + 30, m.off[9] + 4, m.off[9] + 1}; /* payload, crc, len */
    for (int k = 0; k < 3; k++) {
        m.buf[where[k]] ^= 0x40;
        cr_assert(eq(int, scan(&m, 0, &s), -EILSEQ), "flip %d not detected", k);
        cr_expect(ne(ptr, strstr(s.why, "follows"), NULL), "%s", s.why);
        m.buf[where[k]] ^= 0x40;
    }
    /* The same damage in a sealed segment is refused by the exact-end rule. */
    m.buf[where[0]] ^= 0x40;
    cr_assert(eq(int, scan(&m, 30, &s), -EILSEQ));
    cr_expect(ne(ptr, strstr(s.why, "must end at index 30"), NULL), "%s", s.why);
    m.buf[where[0]] ^= 0x40;
    /* Limitation (segment.c notes): damage to the very last record reads as a torn write. */
    m.buf[m.off[29] + 30] ^= 0x40;
    cr_assert(eq(int, scan(&m, 0, &s), 0));
    cr_expect(eq(u64, s.last_index, 29));
    cr_expect(gt(u64, s.garbage_end, s.end));
    free(m.buf);
}

Test(scan, stale_records_never_validate_after_an_overwrite)
{
    /* Records 1..20 of term 1, then 8..10 rewritten with term 2 over the same bytes (a
     * truncation without zeroing): 11..20 are still there, intact, but chained to the old
     * 10. They must never be read as part of the log. */
    struct img old, m;
    img_build(&old, 1, 20, 1, 8192);
    img_build(&m, 1, 10, 1, 8192);
    struct img fresh;
    img_build(&fresh, 1, 10, 1, 8192);
    memcpy(m.buf, old.buf, old.len);
    /* Re-encode 8..10 with term 2, same sizes, chained from record 7. */
    uint32_t seed = old.crc[6];
    for (uint64_t i = 8; i <= 10; i++) {
        uint8_t payload[80];
        memset(payload, 0x77, sizeof(payload));
        struct yggr_entry e = {.index = i, .term = 2, .type = YGGR_ENTRY_COMMAND,
                               .data = payload, .len = plen(i)};
        uint32_t crc;
        uint32_t h = format_record_encode(m.buf + old.off[i - 1], &e, seed, &crc);
        memcpy(m.buf + old.off[i - 1] + h, payload, e.len);
        seed = crc;
    }
    struct segment_scan s;
    int rc = scan(&m, 0, &s);
    cr_expect(rc == -EILSEQ || s.last_index == 10, "stale records resurrected: last %lu",
              (unsigned long)s.last_index);
    if (rc == 0) {
        cr_expect(eq(u64, s.end, old.off[10]));
    }
    free(old.buf);
    free(m.buf);
    free(fresh.buf);
}

Test(scan, wrong_header_index_gap_and_term_regression_are_refused)
{
    struct img m;
    img_build(&m, 5, 10, 2, 4096);
    struct segment_scan s;
    memset(&s, 0, sizeof(s));
    s.buf = m.buf;
    s.len = m.len;
    s.first_index = 6; /* the name lies */
    cr_expect(eq(int, segment_scan(&s, NULL, NULL), -EILSEQ));
    cr_expect(ne(ptr, strstr(s.why, "offset 16"), NULL), "%s", s.why);
    s.first_index = 5;
    s.prev_term = 3; /* the previous segment ended with term 3 */
    cr_expect(eq(int, segment_scan(&s, NULL, NULL), -EILSEQ));
    m.buf[0] ^= 1;
    cr_expect(eq(int, scan(&m, 0, &s), -EILSEQ));
    cr_expect(ne(ptr, strstr(s.why, "offset 0"), NULL), "%s", s.why);
    free(m.buf);
    img_build(&m, 1, 0, 1, 4096); /* header only */
    cr_expect(eq(int, scan(&m, 0, &s), 0));
    cr_expect(eq(u64, s.last_index, 0));
    free(m.buf);
}

/* ---- the in-memory log ---------------------------------------------------------------- */

static void log_fill(struct segment_log *log, uint64_t first, uint32_t count, uint32_t per_seg)
{
    cr_assert(eq(int, segment_log_init(log, 1u << 20, first), 0));
    for (uint32_t i = 0; i < count; i++) {
        uint64_t index = first + i;
        if (i % per_seg == 0) {
            struct segment seg = {.first_index = index, .last_index = index - 1,
                                  .end = FORMAT_SEG_HEADER_BYTES, .seed = (uint32_t)index,
                                  .last_crc = (uint32_t)index, .fd = -1, .size = 1u << 20};
            cr_assert(eq(int, segment_log_add(log, &seg), 0));
        }
        struct segment *a = segment_log_active(log);
        uint64_t term = 1 + index / 1000;
        cr_assert(eq(int, segment_log_push(log, index, term, (uint32_t)a->end, 100,
                                           (uint32_t)(index * 7)), 0));
    }
}

Test(segment_log, index_table_lookups_and_growth)
{
    struct segment_log log;
    log_fill(&log, 1, 5000, 700);
    char why[256];
    cr_assert(segment_log_check(&log, why, sizeof(why)), "%s", why);
    cr_expect(eq(u32, log.seg_count, 8));
    cr_expect(eq(u32, segment_log_find(&log, 700), 0));
    cr_expect(eq(u32, segment_log_find(&log, 701), 1));
    cr_expect(eq(u32, segment_log_loc(&log, 701).offset, FORMAT_SEG_HEADER_BYTES));
    cr_expect(eq(u32, segment_log_seed(&log, 701), 701));
    cr_expect(eq(u32, segment_log_seed(&log, 702), 701 * 7));
    cr_expect(eq(u32, segment_log_size(&log, 5000), 100));
    cr_expect(eq(u64, segment_log_term(&log, 999), 1));
    cr_expect(eq(u64, segment_log_term(&log, 1000), 2));
    cr_expect(eq(u64, segment_log_term(&log, 5001), 0));
    cr_expect(eq(u32, log.run_count, 6));
    segment_log_deinit(&log);
}

Test(segment_log, truncation_plans_cut_inside_at_a_boundary_or_everything)
{
    struct segment_log log;
    log_fill(&log, 1, 2000, 500);
    struct segment_cut cut;
    segment_log_plan_truncate(&log, 1200, &cut); /* inside segment 2 */
    cr_expect(eq(u32, cut.keep_segs, 3));
    cr_expect(cut.zero);
    cr_expect(eq(u64, cut.zero_offset, FORMAT_SEG_HEADER_BYTES + 199 * 100));
    cr_expect(eq(u64, cut.zero_end, FORMAT_SEG_HEADER_BYTES + 500 * 100));
    segment_log_apply_truncate(&log, &cut);
    char why[256];
    cr_assert(segment_log_check(&log, why, sizeof(why)), "%s", why);
    cr_expect(eq(u64, log.last, 1199));
    cr_expect(eq(u32, segment_log_active(&log)->last_crc, 1199 * 7));
    cr_expect(eq(u64, segment_log_term(&log, 1199), 2));
    cr_expect(eq(u32, log.run_count, 2));
    segment_log_plan_truncate(&log, 501, &cut); /* exactly a segment's first index */
    cr_expect(eq(u32, cut.keep_segs, 1));
    cr_expect(not(cut.zero));
    segment_log_apply_truncate(&log, &cut);
    cr_assert(segment_log_check(&log, why, sizeof(why)), "%s", why);
    cr_expect(eq(u64, log.last, 500));
    segment_log_plan_truncate(&log, 501, &cut); /* past the end: nothing */
    cr_expect(eq(u32, cut.keep_segs, 1));
    segment_log_plan_truncate(&log, 1, &cut);
    cr_expect(eq(u32, cut.keep_segs, 0));
    segment_log_apply_truncate(&log, &cut);
    cr_expect(segment_log_empty(&log));
    cr_expect(eq(u64, log.first, 1));
    segment_log_deinit(&log);
}

Test(segment_log, compaction_drops_whole_segments_only)
{
    struct segment_log log;
    log_fill(&log, 1, 2000, 500);
    cr_expect(eq(u32, segment_log_compactable(&log, 500), 0));
    cr_expect(eq(u32, segment_log_compactable(&log, 501), 1));
    cr_expect(eq(u32, segment_log_compactable(&log, 1600), 3));
    cr_expect(eq(u32, segment_log_compactable(&log, 99999), 3)); /* never the last one */
    segment_log_drop_head(&log, 3);
    char why[256];
    cr_assert(segment_log_check(&log, why, sizeof(why)), "%s", why);
    cr_expect(eq(u64, log.first, 1501));
    cr_expect(eq(u64, segment_log_term(&log, 1501), 2));
    cr_expect(eq(u32, segment_log_loc(&log, 1501).offset, FORMAT_SEG_HEADER_BYTES));
    struct segment *a = segment_log_active(&log);
    cr_assert(eq(int, segment_log_push(&log, 2001, 3, (uint32_t)a->end, 100, 1), 0));
    cr_assert(segment_log_check(&log, why, sizeof(why)), "%s", why);
    segment_log_reset(&log, 3000);
    cr_expect(segment_log_empty(&log));
    cr_expect(eq(u64, log.last, 2999));
    segment_log_deinit(&log);
}
