/* SPDX-License-Identifier: MIT */
/* On-disk formats of the data directory: meta, hard-state slots, segment and record headers,
 * snapshot headers. Pure encode/decode (no I/O); every record is CRC32C-protected. */
#ifndef YGGR_STORAGE_FORMAT_H
#define YGGR_STORAGE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yggr/plugin.h"
#include "yggr/types.h"

/* docs/storage-format.md is the normative description; the constants below match it. */
#define FORMAT_VERSION 1u

/* Names inside the data directory. */
#define FORMAT_META_NAME          "meta"
#define FORMAT_HARDSTATE_NAME     "hardstate"
#define FORMAT_LOG_DIR            "log"
#define FORMAT_SNAP_PARTIAL_NAME  "snap-incoming.partial"
#define FORMAT_PREP_NAME          "next.prep"   /* in log/: a segment being pre-zeroed */
#define FORMAT_READY_NAME         "next.ready"  /* in log/: a pre-zeroed, synced segment */
#define FORMAT_SEG_NAME_LEN       24            /* "%020llu.seg" */
#define FORMAT_SNAP_NAME_MAX      64            /* "snap-%020llu-%020llu" */

/* meta: written once by bootstrap. */
#define FORMAT_META_BYTES 560u
/* hardstate: two slots of FORMAT_SLOT_BYTES, each alone in its own 512-byte sector. */
#define FORMAT_SLOT_BYTES 512u
#define FORMAT_SLOT_USED  40u
#define FORMAT_HARDSTATE_BYTES (2u * FORMAT_SLOT_BYTES)
/* log segment header and record header. */
#define FORMAT_SEG_HEADER_BYTES 64u
#define FORMAT_REC_PREFIX_BYTES 8u    /* u32 len, u32 crc */
#define FORMAT_REC_HEADER_BYTES 25u   /* prefix + u64 index + u64 term + u8 type */
#define FORMAT_REC_CONFIG_BYTES 9u    /* CONFIG body prefix: u8 change + u64 node */
#define FORMAT_REC_MAX_HEADER (FORMAT_REC_HEADER_BYTES + FORMAT_REC_CONFIG_BYTES)
/* snapshot file header (payload follows). */
#define FORMAT_SNAP_HEADER_BYTES 1024u

/* Little-endian helpers (the on-disk byte order). */
void format_put_u32(uint8_t *p, uint32_t v);
void format_put_u64(uint8_t *p, uint64_t v);
uint32_t format_get_u32(const uint8_t *p);
uint64_t format_get_u64(const uint8_t *p);

/* True when `m` is well formed: counts <= YGGR_MAX_MEMBERS, ids non-zero, strictly
 * ascending, no id in both sets. */

/* meta. Decode returns 0 or -EILSEQ with the reason in `why` (without the file name). */
void format_meta_encode(uint8_t out[FORMAT_META_BYTES], const struct yggr_storage_meta *meta);
int format_meta_decode(const uint8_t *buf, size_t len, struct yggr_storage_meta *out, char *why,
                       size_t why_size);

/* hardstate slot. */
struct format_hard_state {
    uint64_t seq;                 /* 0 = the slot is empty */
    uint64_t term;
    uint64_t vote;
};
void format_slot_encode(uint8_t out[FORMAT_SLOT_BYTES], const struct format_hard_state *hs);
/* 0: valid; -ENODATA: the slot is all zeros; -EILSEQ: damaged (reason in why). */
int format_slot_decode(const uint8_t *buf, struct format_hard_state *out, char *why,
                       size_t why_size);

/* segment header. */
struct format_segment_header {
    uint64_t first_index;
    uint64_t salt;                /* random per segment */
    uint32_t prev_crc;            /* chain value of the previous segment's last record */
    bool has_prev;                /* false for the first segment ever written after a wipe */
    uint32_t crc;                 /* header CRC: the chain seed of the first record */
};
/* Fills hdr->crc. */
void format_segment_header_encode(uint8_t out[FORMAT_SEG_HEADER_BYTES],
                                  struct format_segment_header *hdr);
/* 0, -ENODATA (all zeros) or -EILSEQ (reason in why). */
int format_segment_header_decode(const uint8_t *buf, size_t len,
                                 struct format_segment_header *out, char *why, size_t why_size);

/* records. */
struct format_record {
    uint64_t index;
    uint64_t term;
    uint8_t type;                 /* enum yggr_entry_type */
    uint8_t change;               /* CONFIG */
    uint64_t node;                /* CONFIG */
    const uint8_t *data;          /* payload (COMMAND) or address (CONFIG), inside the buffer */
    uint32_t len;
    uint32_t crc;                 /* stored chain value */
    uint32_t size;                /* bytes on disk (prefix + len) */
};

enum format_record_status {
    FORMAT_RECORD_OK = 0,
    FORMAT_RECORD_ZERO,           /* the 8-byte prefix is all zeros: end of data */
    FORMAT_RECORD_TRUNCATED,      /* fewer bytes left than a header / than `len` says */
    FORMAT_RECORD_BAD_LENGTH,     /* len below the minimum for its type */
    FORMAT_RECORD_BAD_CRC,        /* chain CRC mismatch */
    FORMAT_RECORD_BAD_TYPE,       /* unknown entry type */
    FORMAT_RECORD_BAD_CONFIG,     /* CONFIG with an unknown change or node 0 */
};

/* On-disk size of the record for `e`, and its header length (25, or 34 for CONFIG). */
uint32_t format_record_size(const struct yggr_entry *e);
uint32_t format_record_header_size(const struct yggr_entry *e);
/* Encode the header of `e` (the payload follows it on disk) chained from `seed`; returns
 * the header length and stores the record's chain value in *crc. */
uint32_t format_record_encode(uint8_t out[FORMAT_REC_MAX_HEADER], const struct yggr_entry *e,
                              uint32_t seed, uint32_t *crc);
/* Parse and verify the record at `p` (`avail` bytes available) chained from `seed`. */
enum format_record_status format_record_parse(const uint8_t *p, size_t avail, uint32_t seed,
                                              struct format_record *out);
/* The chain value the record at `p` would have if chained from `seed` (len must fit in
 * avail; returns false otherwise). Used to look for valid data after a damaged record. */
bool format_record_chain(const uint8_t *p, size_t avail, uint32_t seed, uint32_t *crc);
const char *format_record_status_text(enum format_record_status st);

/* snapshot header. */
struct format_snap_header {
    struct yggr_snapshot_meta meta;   /* last, size, config */
    uint32_t payload_crc;
};
void format_snap_header_encode(uint8_t out[FORMAT_SNAP_HEADER_BYTES],
                               const struct format_snap_header *hdr);
int format_snap_header_decode(const uint8_t *buf, size_t len, struct format_snap_header *out,
                              char *why, size_t why_size);

/* File names. Return true when `name` is one and fill the numbers. */
void format_segment_name(char out[FORMAT_SEG_NAME_LEN + 1], uint64_t first_index);
bool format_parse_segment_name(const char *name, uint64_t *first_index);
void format_snap_name(char out[FORMAT_SNAP_NAME_MAX], struct yggr_log_id id);
bool format_parse_snap_name(const char *name, struct yggr_log_id *id);
/* Temp names written by this storage (removed by recovery): "*.tmp", the partial incoming
 * snapshot, a segment being prepared. */
bool format_is_temp_name(const char *name);

#endif /* YGGR_STORAGE_FORMAT_H */
