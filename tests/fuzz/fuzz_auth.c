/* SPDX-License-Identifier: MIT */
/* Fuzz target `auth`: arbitrary bytes into the listener side (as HELLO then PROOF) or the
 * dialer side (as CHALLENGE) of the handshake, in arbitrary pieces. Never crashes, never
 * asks for more than the expected message, and never authenticates without the secret:
 * the listener's nonce_s and the dialer's nonce_c are fresh, so no input can carry a
 * valid MAC. Byte 0 picks the side (bit 0) and the piece size (bits 1..7). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "auth.h"
#include "yggr_assert.h"

#define FUZZ_SECRET "fuzz cluster secret 0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth_key listener_key, dialer_key; /* node 2 and node 1, cluster 7 */
static bool keys_ready;

static void init_keys(void)
{
    const uint8_t *s = (const uint8_t *)FUZZ_SECRET;
    uint32_t len = (uint32_t)strlen(FUZZ_SECRET);
    YGGR_ASSERT(auth_key_init(&listener_key, s, len, 7, 2) == 0);
    YGGR_ASSERT(auth_key_init(&dialer_key, s, len, 7, 1) == 0);
    keys_ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct auth_hs hs;
    char why[160];
    if (!keys_ready) {
        init_keys();
    }
    if (size < 1) {
        return 0;
    }
    bool dialer = (data[0] & 1) != 0;
    uint32_t step = (uint32_t)(data[0] >> 1) % 97u + 1u;
    const struct auth_key *k = dialer ? &dialer_key : &listener_key;
    if (dialer) {
        YGGR_ASSERT(auth_dialer_start(k, &hs, 2) == 0);
        YGGR_ASSERT(auth_sent(&hs, hs.out_len)); /* the HELLO is out: expect a CHALLENGE */
    } else {
        auth_listener_start(&hs);
    }
    for (size_t off = 1; off < size;) {
        if (hs.state == AUTH_STATE_CHECK_PEER) { /* every claimed id is a member here */
            YGGR_ASSERT(auth_listener_challenge(k, &hs) == 0);
            YGGR_ASSERT(auth_sent(&hs, hs.out_len));
        }
        uint32_t want = auth_want(&hs);
        if (want == 0) {
            break; /* FAILED (or SEND_PROOF, which the asserts below rule out) */
        }
        YGGR_ASSERT(want <= AUTH_CHALLENGE_BYTES);
        uint32_t n = step < want ? step : want;
        n = (size_t)n < size - off ? n : (uint32_t)(size - off);
        memcpy(auth_in(&hs), data + off, n);
        enum auth_verdict v = auth_received(k, &hs, n, why, sizeof(why));
        YGGR_ASSERT(v != AUTH_VERDICT_DONE);   /* no PROOF verifies against a fresh nonce_s */
        YGGR_ASSERT(v != AUTH_VERDICT_SEND);   /* no CHALLENGE verifies for a fresh nonce_c */
        if (v == AUTH_VERDICT_FAIL || v == AUTH_VERDICT_NOT_HANDSHAKE) {
            YGGR_ASSERT(hs.state == AUTH_STATE_FAILED && why[0] != '\0');
        }
        off += n;
    }
    return 0;
}
