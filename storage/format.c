/* SPDX-License-Identifier: MIT */
/* On-disk formats: byte-exact encoders and validating decoders for every storage file. */

/*
 * Design notes
 * ------------
 * Everything on disk is little-endian and written through these functions; nothing is a
 * C struct dumped to disk, so padding and host byte order never leak into the format.
 * Each fixed-size structure ends with (or, for records, starts with) a CRC32C over its
 * bytes; decoders check magic, version, declared size and CRC, then the semantic rules
 * (ids ascending, counts in range), and say which check failed in `why`.
 *
 * Record chaining. A record's CRC is seeded with the previous record's CRC; the first
 * record of a segment is seeded with the segment header's CRC, which covers a random
 * per-segment salt and the previous segment's last chain value. Consequences:
 *   1. a record is valid only at the position it was written at, after the exact
 *      predecessor it was written after;
 *   2. a stale record left behind by a truncation, or by an older incarnation of a file,
 *      never validates against the new chain (the chain value differs as soon as one byte
 *      of any predecessor differs);
 *   3. a damaged record's stored CRC (or its recomputed one) is still the seed its
 *      successor was written with, so recovery can tell "damage followed by valid data"
 *      (corruption) from "damage followed by nothing" (a torn write): see segment.c.
 * The CRC covers the length field too: crc = crc32c(seed, len) then the bytes after the
 * 8-byte prefix.
 *
 * Failure modes: decoders never read past `len`; a record whose length runs past the
 * available bytes is TRUNCATED, not a crash (fuzzed by tests/fuzz/fuzz_recovery.c).
 */
#include "format.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "yggr_assert.h"

#define META_MAGIC 0x4154454D52474759ull /* "YGGRMETA" */
#define SLOT_MAGIC 0x53484759u           /* "YGHS" */
#define SEG_MAGIC  0x0047455352474759ull /* "YGGRSEG\0" */
#define SNAP_MAGIC 0x50414E5352474759ull /* "YGGRSNAP" */

static_assert(FORMAT_SLOT_USED <= FORMAT_SLOT_BYTES, "slot fits its sector");
static_assert(FORMAT_SLOT_BYTES == 512, "one slot per 512-byte sector");
static_assert(FORMAT_META_BYTES == 40 + 2 * 8 * YGGR_MAX_MEMBERS + 8, "meta layout");
static_assert(FORMAT_SEG_HEADER_BYTES == 64, "segment header layout");
static_assert(FORMAT_REC_HEADER_BYTES == 4 + 4 + 8 + 8 + 1, "record header layout");
static_assert(FORMAT_SNAP_HEADER_BYTES >= 56 + 2 * 8 * YGGR_MAX_MEMBERS + 4, "snap header");

void format_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void format_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

uint32_t format_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint64_t format_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}


/* Membership at `p`: u32 voter_count, u32 learner_count at p, then the id arrays at ids. */
/* Check the CRC32C stored at buf[at..at+4) over buf[0..at); the error names the offset. */
static int check_crc(const uint8_t *buf, uint32_t at, const char *what, char *why,
                     size_t why_size)
{
    uint32_t want = format_get_u32(buf + at);
    uint32_t got = crc32c(0, buf, at);
    if (want != got) {
        snprintf(why, why_size, "offset %u: %scrc 0x%08x stored, 0x%08x computed", at, what,
                 want, got);
        return -EILSEQ;
    }
    return 0;
}

static void put_membership(uint8_t *counts, uint8_t *ids, const struct yggr_membership *m)
{
    YGGR_ASSERT(m->voter_count <= YGGR_MAX_MEMBERS);
    YGGR_ASSERT(m->learner_count <= YGGR_MAX_MEMBERS);
    format_put_u32(counts, m->voter_count);
    format_put_u32(counts + 4, m->learner_count);
    for (uint32_t i = 0; i < YGGR_MAX_MEMBERS; i++) {
        format_put_u64(ids + 8 * i, i < m->voter_count ? m->voters[i] : 0);
        format_put_u64(ids + 8 * (YGGR_MAX_MEMBERS + i),
                       i < m->learner_count ? m->learners[i] : 0);
    }
}

static bool get_membership(const uint8_t *counts, const uint8_t *ids, struct yggr_membership *m)
{
    YGGR_ASSERT(counts != NULL && ids != NULL);
    YGGR_ASSERT(m != NULL);
    memset(m, 0, sizeof(*m));
    m->voter_count = format_get_u32(counts);
    m->learner_count = format_get_u32(counts + 4);
    if (m->voter_count > YGGR_MAX_MEMBERS || m->learner_count > YGGR_MAX_MEMBERS) {
        return false;
    }
    for (uint32_t i = 0; i < YGGR_MAX_MEMBERS; i++) {
        uint64_t v = format_get_u64(ids + 8 * i);
        uint64_t l = format_get_u64(ids + 8 * (YGGR_MAX_MEMBERS + i));
        if ((i >= m->voter_count && v != 0) || (i >= m->learner_count && l != 0)) {
            return false;
        }
        if (i < m->voter_count) {
            m->voters[i] = v;
        }
        if (i < m->learner_count) {
            m->learners[i] = l;
        }
    }
    return yggr_membership_valid(m);
}

void format_meta_encode(uint8_t out[FORMAT_META_BYTES], const struct yggr_storage_meta *meta)
{
    YGGR_ASSERT(meta != NULL);
    YGGR_ASSERT(yggr_membership_valid(&meta->bootstrap_config));
    memset(out, 0, FORMAT_META_BYTES);
    format_put_u64(out + 0, META_MAGIC);
    format_put_u32(out + 8, FORMAT_VERSION);
    format_put_u32(out + 12, FORMAT_META_BYTES);
    format_put_u64(out + 16, meta->cluster_id);
    format_put_u64(out + 24, meta->node_id);
    put_membership(out + 32, out + 40, &meta->bootstrap_config);
    uint32_t crc = crc32c(0, out, FORMAT_META_BYTES - 4);
    format_put_u32(out + FORMAT_META_BYTES - 4, crc);
    /* Pair assertion: what we write decodes back. */
    YGGR_ASSERT(crc32c(0, out, FORMAT_META_BYTES - 4) == format_get_u32(out + 556));
}

int format_meta_decode(const uint8_t *buf, size_t len, struct yggr_storage_meta *out, char *why,
                       size_t why_size)
{
    YGGR_ASSERT(buf != NULL || len == 0);
    YGGR_ASSERT(out != NULL);
    if (len != FORMAT_META_BYTES) {
        snprintf(why, why_size, "size %zu bytes, expected %u", len, FORMAT_META_BYTES);
        return -EILSEQ;
    }
    if (format_get_u64(buf) != META_MAGIC) {
        snprintf(why, why_size, "offset 0: bad magic 0x%016" PRIx64 ", expected 0x%016llx",
                 format_get_u64(buf), META_MAGIC);
        return -EILSEQ;
    }
    uint32_t version = format_get_u32(buf + 8);
    if (version != FORMAT_VERSION || format_get_u32(buf + 12) != FORMAT_META_BYTES) {
        snprintf(why, why_size, "offset 8: format version %u (length %u), expected %u (%u)",
                 version, format_get_u32(buf + 12), FORMAT_VERSION, FORMAT_META_BYTES);
        return -EILSEQ;
    }
    if (check_crc(buf, FORMAT_META_BYTES - 4, "", why, why_size) != 0) {
        return -EILSEQ;
    }
    out->cluster_id = format_get_u64(buf + 16);
    out->node_id = format_get_u64(buf + 24);
    if (!get_membership(buf + 32, buf + 40, &out->bootstrap_config)) {
        snprintf(why, why_size, "offset 32: invalid bootstrap configuration");
        return -EILSEQ;
    }
    return 0;
}

void format_slot_encode(uint8_t out[FORMAT_SLOT_BYTES], const struct format_hard_state *hs)
{
    YGGR_ASSERT(hs != NULL);
    YGGR_ASSERT(hs->seq > 0);
    memset(out, 0, FORMAT_SLOT_BYTES);
    format_put_u32(out + 0, SLOT_MAGIC);
    format_put_u32(out + 4, FORMAT_VERSION);
    format_put_u64(out + 8, hs->seq);
    format_put_u64(out + 16, hs->term);
    format_put_u64(out + 24, hs->vote);
    format_put_u32(out + 36, crc32c(0, out, 36));
    YGGR_ASSERT(format_get_u32(out + 36) == crc32c(0, out, 36));
}

int format_slot_decode(const uint8_t *buf, struct format_hard_state *out, char *why,
                       size_t why_size)
{
    YGGR_ASSERT(buf != NULL);
    YGGR_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (is_zero(buf, FORMAT_SLOT_BYTES)) {
        return -ENODATA;
    }
    uint32_t want = format_get_u32(buf + 36);
    uint32_t got = crc32c(0, buf, 36);
    if (format_get_u32(buf) != SLOT_MAGIC || format_get_u32(buf + 4) != FORMAT_VERSION) {
        snprintf(why, why_size, "bad magic/version 0x%08x/%u", format_get_u32(buf),
                 format_get_u32(buf + 4));
        return -EILSEQ;
    }
    if (want != got) {
        snprintf(why, why_size, "crc 0x%08x stored, 0x%08x computed", want, got);
        return -EILSEQ;
    }
    out->seq = format_get_u64(buf + 8);
    out->term = format_get_u64(buf + 16);
    out->vote = format_get_u64(buf + 24);
    if (out->seq == 0) {
        snprintf(why, why_size, "sequence 0 in a non-empty slot");
        return -EILSEQ;
    }
    return 0;
}

void format_segment_header_encode(uint8_t out[FORMAT_SEG_HEADER_BYTES],
                                  struct format_segment_header *hdr)
{
    YGGR_ASSERT(hdr != NULL);
    YGGR_ASSERT(hdr->first_index > 0);
    memset(out, 0, FORMAT_SEG_HEADER_BYTES);
    format_put_u64(out + 0, SEG_MAGIC);
    format_put_u32(out + 8, FORMAT_VERSION);
    format_put_u32(out + 12, FORMAT_SEG_HEADER_BYTES);
    format_put_u64(out + 16, hdr->first_index);
    format_put_u64(out + 24, hdr->salt);
    format_put_u32(out + 32, hdr->has_prev ? hdr->prev_crc : 0);
    format_put_u32(out + 36, hdr->has_prev ? 1u : 0u);
    hdr->crc = crc32c(0, out, 60);
    format_put_u32(out + 60, hdr->crc);
}

int format_segment_header_decode(const uint8_t *buf, size_t len,
                                 struct format_segment_header *out, char *why, size_t why_size)
{
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(buf != NULL || len == 0);
    memset(out, 0, sizeof(*out));
    if (len < FORMAT_SEG_HEADER_BYTES) {
        snprintf(why, why_size, "offset 0: file is %zu bytes, shorter than the %u-byte header",
                 len, FORMAT_SEG_HEADER_BYTES);
        return -EILSEQ;
    }
    if (is_zero(buf, FORMAT_SEG_HEADER_BYTES)) {
        snprintf(why, why_size, "offset 0: header is all zeros");
        return -ENODATA;
    }
    if (format_get_u64(buf) != SEG_MAGIC || format_get_u32(buf + 8) != FORMAT_VERSION ||
        format_get_u32(buf + 12) != FORMAT_SEG_HEADER_BYTES) {
        snprintf(why, why_size, "offset 0: bad magic/version/size 0x%016" PRIx64 "/%u/%u",
                 format_get_u64(buf), format_get_u32(buf + 8), format_get_u32(buf + 12));
        return -EILSEQ;
    }
    if (check_crc(buf, 60, "header ", why, why_size) != 0) {
        return -EILSEQ;
    }
    uint32_t flags = format_get_u32(buf + 36);
    if (flags > 1 || format_get_u64(buf + 16) == 0 || !is_zero(buf + 40, 20)) {
        snprintf(why, why_size, "offset 16: invalid header fields (first index %" PRIu64
                 ", flags %u)", format_get_u64(buf + 16), flags);
        return -EILSEQ;
    }
    out->first_index = format_get_u64(buf + 16);
    out->salt = format_get_u64(buf + 24);
    out->prev_crc = format_get_u32(buf + 32);
    out->has_prev = flags == 1;
    out->crc = format_get_u32(buf + 60); /* the CRC just verified */
    return 0;
}

uint32_t format_record_header_size(const struct yggr_entry *e)
{
    YGGR_ASSERT(e != NULL);
    YGGR_ASSERT(e->type <= YGGR_ENTRY_CONFIG);
    return FORMAT_REC_HEADER_BYTES + (e->type == YGGR_ENTRY_CONFIG ? FORMAT_REC_CONFIG_BYTES : 0);
}

uint32_t format_record_size(const struct yggr_entry *e)
{
    uint32_t len = e->type == YGGR_ENTRY_NOOP ? 0 : e->len;
    return format_record_header_size(e) + len;
}

uint32_t format_record_encode(uint8_t out[FORMAT_REC_MAX_HEADER], const struct yggr_entry *e,
                              uint32_t seed, uint32_t *crc)
{
    YGGR_ASSERT(e->index > 0);
    YGGR_ASSERT(e->len == 0 || e->data != NULL || e->type == YGGR_ENTRY_NOOP);
    uint32_t hdr = format_record_header_size(e);
    uint32_t body = e->type == YGGR_ENTRY_NOOP ? 0 : e->len;
    format_put_u32(out, hdr - FORMAT_REC_PREFIX_BYTES + body);
    format_put_u64(out + 8, e->index);
    format_put_u64(out + 16, e->term);
    out[24] = e->type;
    if (e->type == YGGR_ENTRY_CONFIG) {
        YGGR_ASSERT(e->change >= YGGR_CHANGE_ADD_VOTER && e->change <= YGGR_CHANGE_PROMOTE_LEARNER);
        out[25] = e->change;
        format_put_u64(out + 26, e->node);
    }
    uint32_t c = crc32c(seed, out, 4);
    c = crc32c(c, out + FORMAT_REC_PREFIX_BYTES, hdr - FORMAT_REC_PREFIX_BYTES);
    if (body > 0) {
        c = crc32c(c, e->data, body);
    }
    format_put_u32(out + 4, c);
    *crc = c;
    return hdr;
}

bool format_record_chain(const uint8_t *p, size_t avail, uint32_t seed, uint32_t *crc)
{
    YGGR_ASSERT(p != NULL);
    YGGR_ASSERT(crc != NULL);
    if (avail < FORMAT_REC_HEADER_BYTES) {
        return false;
    }
    uint32_t len = format_get_u32(p);
    if (len < FORMAT_REC_HEADER_BYTES - FORMAT_REC_PREFIX_BYTES ||
        (uint64_t)len + FORMAT_REC_PREFIX_BYTES > avail) {
        return false;
    }
    uint32_t c = crc32c(seed, p, 4);
    *crc = crc32c(c, p + FORMAT_REC_PREFIX_BYTES, len);
    return true;
}

enum format_record_status format_record_parse(const uint8_t *p, size_t avail, uint32_t seed,
                                              struct format_record *out)
{
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(p != NULL || avail == 0);
    memset(out, 0, sizeof(*out));
    if (avail >= FORMAT_REC_PREFIX_BYTES && is_zero(p, FORMAT_REC_PREFIX_BYTES)) {
        return FORMAT_RECORD_ZERO;
    }
    if (avail < FORMAT_REC_HEADER_BYTES) {
        return avail == 0 || is_zero(p, avail) ? FORMAT_RECORD_ZERO : FORMAT_RECORD_TRUNCATED;
    }
    uint32_t len = format_get_u32(p);
    if (len < FORMAT_REC_HEADER_BYTES - FORMAT_REC_PREFIX_BYTES) {
        return FORMAT_RECORD_BAD_LENGTH;
    }
    if ((uint64_t)len + FORMAT_REC_PREFIX_BYTES > avail) {
        return FORMAT_RECORD_TRUNCATED;
    }
    uint32_t crc = 0;
    bool fits = format_record_chain(p, avail, seed, &crc);
    YGGR_ASSERT(fits);
    out->crc = format_get_u32(p + 4);
    if (crc != out->crc) {
        return FORMAT_RECORD_BAD_CRC;
    }
    out->index = format_get_u64(p + 8);
    out->term = format_get_u64(p + 16);
    out->type = p[24];
    out->size = len + FORMAT_REC_PREFIX_BYTES;
    uint32_t body = len - (FORMAT_REC_HEADER_BYTES - FORMAT_REC_PREFIX_BYTES);
    const uint8_t *b = p + FORMAT_REC_HEADER_BYTES;
    switch (out->type) {
    case YGGR_ENTRY_NOOP:
        if (body != 0) {
            return FORMAT_RECORD_BAD_LENGTH;
        }
        return FORMAT_RECORD_OK;
    case YGGR_ENTRY_COMMAND:
        out->data = body > 0 ? b : NULL;
        out->len = body;
        return FORMAT_RECORD_OK;
    case YGGR_ENTRY_CONFIG:
        if (body < FORMAT_REC_CONFIG_BYTES) {
            return FORMAT_RECORD_BAD_LENGTH;
        }
        out->change = b[0];
        out->node = format_get_u64(b + 1);
        if (out->change < YGGR_CHANGE_ADD_VOTER || out->change > YGGR_CHANGE_PROMOTE_LEARNER ||
            out->node == 0) {
            return FORMAT_RECORD_BAD_CONFIG;
        }
        out->len = body - FORMAT_REC_CONFIG_BYTES;
        out->data = out->len > 0 ? b + FORMAT_REC_CONFIG_BYTES : NULL;
        return FORMAT_RECORD_OK;
    default:
        return FORMAT_RECORD_BAD_TYPE;
    }
}

const char *format_record_status_text(enum format_record_status st)
{
    switch (st) {
    case FORMAT_RECORD_OK: return "valid record";
    case FORMAT_RECORD_ZERO: return "zeros (end of data)";
    case FORMAT_RECORD_TRUNCATED: return "record runs past the end of the data";
    case FORMAT_RECORD_BAD_LENGTH: return "invalid record length";
    case FORMAT_RECORD_BAD_CRC: return "record crc mismatch";
    case FORMAT_RECORD_BAD_TYPE: return "unknown entry type";
    case FORMAT_RECORD_BAD_CONFIG: return "invalid configuration change";
    }
    YGGR_UNREACHABLE();
}

void format_snap_header_encode(uint8_t out[FORMAT_SNAP_HEADER_BYTES],
                               const struct format_snap_header *hdr)
{
    YGGR_ASSERT(hdr->meta.last.index > 0);
    YGGR_ASSERT(yggr_membership_valid(&hdr->meta.config));
    memset(out, 0, FORMAT_SNAP_HEADER_BYTES);
    format_put_u64(out + 0, SNAP_MAGIC);
    format_put_u32(out + 8, FORMAT_VERSION);
    format_put_u32(out + 12, FORMAT_SNAP_HEADER_BYTES);
    format_put_u64(out + 16, hdr->meta.last.index);
    format_put_u64(out + 24, hdr->meta.last.term);
    format_put_u64(out + 32, hdr->meta.size);
    format_put_u32(out + 40, hdr->payload_crc);
    put_membership(out + 44, out + 56, &hdr->meta.config);
    format_put_u32(out + FORMAT_SNAP_HEADER_BYTES - 4,
                   crc32c(0, out, FORMAT_SNAP_HEADER_BYTES - 4));
}

int format_snap_header_decode(const uint8_t *buf, size_t len, struct format_snap_header *out,
                              char *why, size_t why_size)
{
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(buf != NULL || len == 0);
    memset(out, 0, sizeof(*out));
    if (len < FORMAT_SNAP_HEADER_BYTES) {
        snprintf(why, why_size, "offset 0: %zu bytes, shorter than the %u-byte header", len,
                 FORMAT_SNAP_HEADER_BYTES);
        return -EILSEQ;
    }
    if (format_get_u64(buf) != SNAP_MAGIC || format_get_u32(buf + 8) != FORMAT_VERSION ||
        format_get_u32(buf + 12) != FORMAT_SNAP_HEADER_BYTES) {
        snprintf(why, why_size, "offset 0: bad magic/version/size 0x%016" PRIx64 "/%u/%u",
                 format_get_u64(buf), format_get_u32(buf + 8), format_get_u32(buf + 12));
        return -EILSEQ;
    }
    if (check_crc(buf, FORMAT_SNAP_HEADER_BYTES - 4, "header ", why, why_size) != 0) {
        return -EILSEQ;
    }
    out->meta.last.index = format_get_u64(buf + 16);
    out->meta.last.term = format_get_u64(buf + 24);
    out->meta.size = format_get_u64(buf + 32);
    out->payload_crc = format_get_u32(buf + 40);
    if (out->meta.last.index == 0 || !get_membership(buf + 44, buf + 56, &out->meta.config)) {
        snprintf(why, why_size, "offset 16: invalid snapshot meta (index %" PRIu64 ")",
                 out->meta.last.index);
        return -EILSEQ;
    }
    return 0;
}

void format_segment_name(char out[FORMAT_SEG_NAME_LEN + 1], uint64_t first_index)
{
    YGGR_ASSERT(first_index > 0);
    int n = snprintf(out, FORMAT_SEG_NAME_LEN + 1, "%020" PRIu64 ".seg", first_index);
    YGGR_ASSERT(n == FORMAT_SEG_NAME_LEN);
}

static bool parse_digits(const char *s, size_t n, uint64_t *out)
{
    YGGR_ASSERT(s != NULL && out != NULL);
    YGGR_ASSERT(n <= 20);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool format_parse_segment_name(const char *name, uint64_t *first_index)
{
    YGGR_ASSERT(name != NULL);
    if (strlen(name) != FORMAT_SEG_NAME_LEN || strcmp(name + 20, ".seg") != 0) {
        return false;
    }
    return parse_digits(name, 20, first_index) && *first_index > 0;
}

void format_snap_name(char out[FORMAT_SNAP_NAME_MAX], struct yggr_log_id id)
{
    YGGR_ASSERT(id.index > 0);
    int n = snprintf(out, FORMAT_SNAP_NAME_MAX, "snap-%020" PRIu64 "-%020" PRIu64, id.index,
                     id.term);
    YGGR_ASSERT(n == 46);
}

bool format_parse_snap_name(const char *name, struct yggr_log_id *id)
{
    YGGR_ASSERT(name != NULL);
    if (strlen(name) != 46 || strncmp(name, "snap-", 5) != 0 || name[25] != '-') {
        return false;
    }
    return parse_digits(name + 5, 20, &id->index) && parse_digits(name + 26, 20, &id->term) &&
           id->index > 0;
}

bool format_is_temp_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcmp(name + n - 4, ".tmp") == 0) ||
           strcmp(name, FORMAT_SNAP_PARTIAL_NAME) == 0 || strcmp(name, FORMAT_PREP_NAME) == 0;
}
