/* SPDX-License-Identifier: MIT */
/* Fuzz target `codec`: arbitrary bytes through the frame parser, the Message decoder and
 * the LogEntry decoder. Anything that decodes must re-encode to bytes that decode to the
 * same record (and re-encode identically). Never crashes, never reads out of bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "yggr_assert.h"

enum { ENTRY_CAP = 64, FRAME_MAX = 1 << 20 };

static struct yggr_entry entries[ENTRY_CAP], entries2[ENTRY_CAP];
static struct yggr_membership config, config2;

/* Decode a body; on success re-encode and check the round trip. */
static void check_body(const uint8_t *body, size_t len)
{
    struct yggr_msg msg, again;
    struct codec_error err;
    struct codec_space space = {.entries = entries, .entry_cap = ENTRY_CAP, .config = &config};
    int rc = codec_msg_decode(body, len, NULL, &space, &msg, &err);
    if (rc != 0) {
        YGGR_ASSERT(rc == -EBADMSG || rc == -ENOBUFS);
        YGGR_ASSERT(err.fault != CODEC_FAULT_NONE && err.offset <= len);
        return;
    }
    size_t size = codec_msg_size(&msg);
    uint8_t *out = malloc(size + 1);
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(codec_msg_encode(&msg, out, size) == size);
    struct codec_space space2 = {.entries = entries2, .entry_cap = ENTRY_CAP, .config = &config2};
    YGGR_ASSERT(codec_msg_decode(out, size, NULL, &space2, &again, &err) == 0);
    YGGR_ASSERT(codec_msg_equal(&msg, &again));
    /* Canonical form: encoding the re-decoded record gives the same bytes. */
    uint8_t *out2 = malloc(size + 1);
    YGGR_ASSERT(out2 != NULL);
    YGGR_ASSERT(codec_msg_encode(&again, out2, size) == size);
    YGGR_ASSERT(memcmp(out, out2, size) == 0);
    free(out2);
    free(out);
}

static void check_entry(const uint8_t *data, size_t len)
{
    struct yggr_entry e, again;
    struct codec_error err;
    if (codec_entry_decode(data, len, NULL, &e, &err) != 0) {
        YGGR_ASSERT(err.fault != CODEC_FAULT_NONE);
        return;
    }
    size_t size = codec_entry_size(&e);
    uint8_t *out = malloc(size + 1);
    YGGR_ASSERT(out != NULL);
    YGGR_ASSERT(codec_entry_encode(&e, out, size) == size);
    YGGR_ASSERT(codec_entry_decode(out, size, NULL, &again, &err) == 0);
    YGGR_ASSERT(codec_entry_equal(&e, &again));
    free(out);
}

/* The input as a stream of frames, parsed the way the transport does. */
static void check_frames(const uint8_t *data, size_t len)
{
    size_t at = 0;
    while (len - at >= CODEC_FRAME_HEADER_BYTES) {
        uint64_t sender;
        uint32_t body_len;
        codec_frame_header_get(data + at, &sender, &body_len);
        if (sender == 0 || body_len > FRAME_MAX) {
            return; /* the transport closes the connection here */
        }
        at += CODEC_FRAME_HEADER_BYTES;
        if (body_len > len - at) {
            return; /* incomplete: wait for more bytes */
        }
        check_body(data + at, body_len);
        at += body_len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_body(data, size);
    check_entry(data, size);
    check_frames(data, size);
    return 0;
}
