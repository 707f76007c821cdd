/* SPDX-License-Identifier: MIT */
/* Authenticated peers: the mutual HMAC-SHA256 handshake as a sans-IO state machine. */

/*
 * Design notes
 * ------------
 * With a cluster secret configured, every TCP connection between two nodes starts with
 * three fixed-size messages before any Raft frame (byte layouts in docs/wire.md,
 * "Authenticated peers"; all integers big-endian):
 *
 *   dialer                                               listener
 *     HELLO     {cluster_id, claimed id, target id, nonce_c}  ->   checks cluster, target,
 *                                                                  that claimed is a member
 *           <-  CHALLENGE {cluster_id, listener id, nonce_s, mac_s}
 *   checks cluster, listener id == target, mac_s
 *     PROOF     {mac_c}                                    ->   checks mac_c: ESTABLISHED,
 *     Raft frames (pipelined right after PROOF)            ->   sender = claimed id
 *
 *   K      = HMAC-SHA256(secret, "yggr-key" || cluster_id)         (auth_key_init)
 *   T      = HELLO (68 bytes) || CHALLENGE without mac_s (60 bytes)
 *   mac_s  = HMAC-SHA256(K, "yggr-auth-server" || T)
 *   mac_c  = HMAC-SHA256(K, "yggr-auth-client" || T)
 *
 * This file only builds and checks bytes: inbound.c and outbound.c move them with
 * io_uring (recv of exactly auth_want() bytes, send of `out`) and own the deadline, the
 * membership check (AUTH_VERDICT_CHECK_PEER), logging and counting. So the whole protocol
 * is testable without sockets (tests/transport/test_auth.c).
 *
 * States and the function behind each transition:
 *
 *   dialer:   IDLE -auth_dialer_start-> SEND_HELLO -auth_sent-> RECV_CHALLENGE
 *             -auth_received-> SEND_PROOF -auth_sent-> DONE
 *   listener: IDLE -auth_listener_start-> RECV_HELLO -auth_received-> CHECK_PEER
 *             -auth_listener_challenge-> SEND_CHALLENGE -auth_sent-> RECV_PROOF
 *             -auth_received-> DONE
 *   any RECV state -auth_received-> FAILED (the caller closes the connection)
 *
 * What each check buys (the threat model is an attacker who can connect to our port but
 * does not hold the secret):
 *   1. No handshake, junk, raw Raft frames: the first 8 bytes must be the magic; it is
 *      checked as bytes arrive, so a Raft frame fails on its first recv.
 *   2. Wrong secret or wrong cluster id: K differs, so neither MAC verifies; the cluster id
 *      is also compared in clear for a precise log line.
 *   3. Replay of a recorded HELLO + PROOF: nonce_s is fresh (RAND_bytes) per connection
 *      and in T, so the recorded mac_c does not verify. A replayed CHALLENGE fails at the
 *      dialer the same way (fresh nonce_c).
 *   4. Spoofed id: the claimed and target ids are in T; changing either invalidates both
 *      MACs. Reflection: the two MACs use different labels, so a listener's mac_s is never
 *      a valid mac_c.
 *   5. The dialer verifies mac_s before it sends PROOF or any frame: it talks to a holder
 *      of the secret that calls itself the node it meant to reach.
 *   Comparisons are constant time (CRYPTO_memcmp).
 *
 * Not covered, by design (docs/wire.md says it too): every member holds the same secret,
 * so a member can claim another member's id; and frames after the handshake are neither
 * encrypted nor MACed, so an attacker on the network path can hijack an authenticated TCP
 * stream. Use TLS or a VPN (WireGuard) for that threat.
 *
 * Failure modes: a message that does not verify -> AUTH_VERDICT_FAIL with the reason in
 * `why`; bytes that are not a handshake message -> AUTH_VERDICT_NOT_HANDSHAKE; RAND_bytes or
 * HMAC failing -> -EIO (the caller closes the connection; the next dial tries again).
 */
#include "auth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "yggr_assert.h"

#define AUTH_LABEL_BYTES 16u
static const char label_server[AUTH_LABEL_BYTES + 1] = "yggr-auth-server";
static const char label_client[AUTH_LABEL_BYTES + 1] = "yggr-auth-client";
static const char label_key[] = "yggr-key";

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void put_header(uint8_t *p, enum auth_type type)
{
    memcpy(p, AUTH_MAGIC, AUTH_MAGIC_BYTES);
    p[8] = (uint8_t)(AUTH_VERSION >> 8);
    p[9] = (uint8_t)AUTH_VERSION;
    p[10] = (uint8_t)type;
    p[11] = 0;
}

static enum auth_verdict fail(struct auth_hs *hs, enum auth_verdict v, char *why, size_t size,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum auth_verdict fail(struct auth_hs *hs, enum auth_verdict v, char *why, size_t size,
                              const char *fmt, ...)
{
    YGGR_ASSERT(v == AUTH_VERDICT_FAIL || v == AUTH_VERDICT_NOT_HANDSHAKE);
    hs->state = AUTH_STATE_FAILED;
    if (why != NULL && size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return v;
}

/* The magic was checked as bytes arrived; check version, type and flags. */
static bool header_ok(struct auth_hs *hs, enum auth_type type, char *why, size_t size)
{
    unsigned version = ((unsigned)hs->in[8] << 8) | hs->in[9];
    if (version != AUTH_VERSION) {
        fail(hs, AUTH_VERDICT_FAIL, why, size, "unsupported handshake version %u (ours %u)",
             version, AUTH_VERSION);
        return false;
    }
    if (hs->in[10] != (uint8_t)type || hs->in[11] != 0) {
        fail(hs, AUTH_VERDICT_FAIL, why, size,
             "handshake message type %u flags %u where type %u was expected", hs->in[10],
             hs->in[11], (unsigned)type);
        return false;
    }
    return true;
}

/* HMAC-SHA256(K, label || transcript). */
static int transcript_mac(const struct auth_key *k, const struct auth_hs *hs,
                          const char *label, uint8_t out[AUTH_MAC_BYTES])
{
    uint8_t msg[AUTH_LABEL_BYTES + AUTH_TRANSCRIPT_BYTES];
    unsigned len = 0;
    YGGR_ASSERT(strlen(label) == AUTH_LABEL_BYTES);
    memcpy(msg, label, AUTH_LABEL_BYTES);
    memcpy(msg + AUTH_LABEL_BYTES, hs->transcript, AUTH_TRANSCRIPT_BYTES);
    if (HMAC(EVP_sha256(), k->mac_key, (int)sizeof(k->mac_key), msg, sizeof(msg), out, &len) ==
        NULL) {
        return -EIO;
    }
    YGGR_ASSERT(len == AUTH_MAC_BYTES);
    return 0;
}

/* Constant-time check of a received MAC against HMAC(K, label || T). */
static bool mac_ok(const struct auth_key *k, const struct auth_hs *hs, const char *label,
                   const uint8_t *got)
{
    uint8_t want[AUTH_MAC_BYTES];
    if (transcript_mac(k, hs, label, want) != 0) {
        return false;
    }
    bool ok = CRYPTO_memcmp(want, got, AUTH_MAC_BYTES) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

int auth_key_init(struct auth_key *k, const uint8_t *secret, uint32_t secret_len,
                  uint64_t cluster_id, uint64_t self)
{
    uint8_t info[sizeof(label_key) - 1 + 8];
    unsigned len = 0;
    YGGR_ASSERT(k != NULL && secret != NULL);
    YGGR_ASSERT(secret_len >= AUTH_SECRET_MIN_BYTES && self != 0);
    memcpy(info, label_key, sizeof(label_key) - 1);
    put_u64(info + sizeof(label_key) - 1, cluster_id);
    memset(k, 0, sizeof(*k));
    if (HMAC(EVP_sha256(), secret, (int)secret_len, info, sizeof(info), k->mac_key, &len) ==
        NULL) {
        return -EIO;
    }
    YGGR_ASSERT(len == AUTH_MAC_BYTES);
    k->cluster_id = cluster_id;
    k->self = self;
    return 0;
}

void auth_key_wipe(struct auth_key *k)
{
    YGGR_ASSERT(k != NULL);
    OPENSSL_cleanse(k, sizeof(*k));
}

int auth_dialer_start(const struct auth_key *k, struct auth_hs *hs, uint64_t target)
{
    YGGR_ASSERT(k->self != 0 && target != 0);
    YGGR_ASSERT(target != k->self);
    memset(hs, 0, sizeof(*hs));
    hs->peer = target;
    uint8_t *p = hs->out;
    put_header(p, AUTH_TYPE_HELLO);
    put_u64(p + 12, k->cluster_id);
    put_u64(p + 20, k->self);
    put_u64(p + 28, target);
    if (RAND_bytes(p + 36, (int)AUTH_NONCE_BYTES) != 1) {
        hs->state = AUTH_STATE_FAILED;
        return -EIO;
    }
    memcpy(hs->transcript, p, AUTH_HELLO_BYTES);
    hs->out_len = AUTH_HELLO_BYTES;
    hs->state = AUTH_STATE_SEND_HELLO;
    return 0;
}

void auth_listener_start(struct auth_hs *hs)
{
    YGGR_ASSERT(hs != NULL);
    memset(hs, 0, sizeof(*hs));
    hs->state = AUTH_STATE_RECV_HELLO;
    YGGR_ASSERT(auth_want(hs) == AUTH_HELLO_BYTES);
}

int auth_listener_challenge(const struct auth_key *k, struct auth_hs *hs)
{
    YGGR_ASSERT(hs->state == AUTH_STATE_CHECK_PEER);
    YGGR_ASSERT(hs->peer != 0 && hs->peer != k->self);
    uint8_t *p = hs->out;
    put_header(p, AUTH_TYPE_CHALLENGE);
    put_u64(p + 12, k->cluster_id);
    put_u64(p + 20, k->self);
    if (RAND_bytes(p + 28, (int)AUTH_NONCE_BYTES) != 1) {
        hs->state = AUTH_STATE_FAILED;
        return -EIO;
    }
    memcpy(hs->transcript + AUTH_HELLO_BYTES, p, AUTH_CHALLENGE_SIGNED_BYTES);
    if (transcript_mac(k, hs, label_server, p + AUTH_CHALLENGE_SIGNED_BYTES) != 0) {
        hs->state = AUTH_STATE_FAILED;
        return -EIO;
    }
    hs->out_len = AUTH_CHALLENGE_BYTES;
    hs->out_sent = 0;
    hs->state = AUTH_STATE_SEND_CHALLENGE;
    return 0;
}

uint32_t auth_want(const struct auth_hs *hs)
{
    uint32_t size = hs->state == AUTH_STATE_RECV_HELLO       ? AUTH_HELLO_BYTES
                    : hs->state == AUTH_STATE_RECV_CHALLENGE ? AUTH_CHALLENGE_BYTES
                    : hs->state == AUTH_STATE_RECV_PROOF     ? AUTH_PROOF_BYTES
                                                             : 0;
    YGGR_ASSERT(hs->in_len <= size || size == 0);
    return size == 0 ? 0 : size - hs->in_len;
}

uint8_t *auth_in(struct auth_hs *hs)
{
    YGGR_ASSERT(auth_want(hs) > 0);
    return hs->in + hs->in_len;
}

bool auth_sent(struct auth_hs *hs, uint32_t n)
{
    YGGR_ASSERT(hs->state == AUTH_STATE_SEND_HELLO || hs->state == AUTH_STATE_SEND_CHALLENGE ||
                hs->state == AUTH_STATE_SEND_PROOF);
    YGGR_ASSERT(n > 0 && n <= hs->out_len - hs->out_sent);
    hs->out_sent += n;
    if (hs->out_sent < hs->out_len) {
        return false;
    }
    hs->in_len = 0;
    hs->out_len = hs->out_sent = 0;
    hs->state = hs->state == AUTH_STATE_SEND_HELLO       ? AUTH_STATE_RECV_CHALLENGE
                : hs->state == AUTH_STATE_SEND_CHALLENGE ? AUTH_STATE_RECV_PROOF
                                                         : AUTH_STATE_DONE;
    return true;
}

static enum auth_verdict got_hello(const struct auth_key *k, struct auth_hs *hs, char *why,
                                   size_t size)
{
    const uint8_t *p = hs->in;
    if (!header_ok(hs, AUTH_TYPE_HELLO, why, size)) {
        return AUTH_VERDICT_FAIL;
    }
    uint64_t cluster = get_u64(p + 12), claimed = get_u64(p + 20), target = get_u64(p + 28);
    if (cluster != k->cluster_id) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size, "wrong cluster id %#llx (ours %#llx)",
                    (unsigned long long)cluster, (unsigned long long)k->cluster_id);
    }
    if (target != k->self) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size, "HELLO is for node %llu, this is node %llu",
                    (unsigned long long)target, (unsigned long long)k->self);
    }
    if (claimed == 0 || claimed == k->self) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size, "HELLO claims node id %llu",
                    (unsigned long long)claimed);
    }
    memcpy(hs->transcript, p, AUTH_HELLO_BYTES);
    hs->peer = claimed;
    hs->state = AUTH_STATE_CHECK_PEER;
    return AUTH_VERDICT_CHECK_PEER;
}

static enum auth_verdict got_challenge(const struct auth_key *k, struct auth_hs *hs, char *why,
                                       size_t size)
{
    const uint8_t *p = hs->in;
    if (!header_ok(hs, AUTH_TYPE_CHALLENGE, why, size)) {
        return AUTH_VERDICT_FAIL;
    }
    uint64_t cluster = get_u64(p + 12), listener = get_u64(p + 20);
    if (cluster != k->cluster_id) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size, "wrong cluster id %#llx (ours %#llx)",
                    (unsigned long long)cluster, (unsigned long long)k->cluster_id);
    }
    if (listener != hs->peer) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size, "node %llu answered instead of node %llu",
                    (unsigned long long)listener, (unsigned long long)hs->peer);
    }
    memcpy(hs->transcript + AUTH_HELLO_BYTES, p, AUTH_CHALLENGE_SIGNED_BYTES);
    if (!mac_ok(k, hs, label_server, p + AUTH_CHALLENGE_SIGNED_BYTES)) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size,
                    "CHALLENGE does not verify (a different cluster secret?)");
    }
    put_header(hs->out, AUTH_TYPE_PROOF);
    if (transcript_mac(k, hs, label_client, hs->out + AUTH_HEADER_BYTES) != 0) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size, "HMAC failed (libcrypto)");
    }
    hs->out_len = AUTH_PROOF_BYTES;
    hs->out_sent = 0;
    hs->state = AUTH_STATE_SEND_PROOF;
    return AUTH_VERDICT_SEND;
}

static enum auth_verdict got_proof(const struct auth_key *k, struct auth_hs *hs, char *why,
                                   size_t size)
{
    if (!header_ok(hs, AUTH_TYPE_PROOF, why, size)) {
        return AUTH_VERDICT_FAIL;
    }
    if (!mac_ok(k, hs, label_client, hs->in + AUTH_HEADER_BYTES)) {
        return fail(hs, AUTH_VERDICT_FAIL, why, size,
                    "PROOF does not verify (a different cluster secret, or a replayed or "
                    "spoofed handshake)");
    }
    hs->state = AUTH_STATE_DONE;
    return AUTH_VERDICT_DONE;
}

enum auth_verdict auth_received(const struct auth_key *k, struct auth_hs *hs, uint32_t n,
                                char *why, size_t why_size)
{
    uint32_t want = auth_want(hs);
    YGGR_ASSERT(want > 0);
    YGGR_ASSERT(n > 0 && n <= want);
    uint32_t before = hs->in_len;
    hs->in_len += n;
    /* The magic is checked byte by byte as it arrives: junk and Raft frames fail on
     * their first recv, whatever its size. */
    if (before < AUTH_MAGIC_BYTES) {
        uint32_t end = hs->in_len < AUTH_MAGIC_BYTES ? hs->in_len : AUTH_MAGIC_BYTES;
        if (memcmp(hs->in + before, &AUTH_MAGIC[before], end - before) != 0) {
            return fail(hs, AUTH_VERDICT_NOT_HANDSHAKE, why, why_size,
                        "not an authentication handshake (no \"%s\" magic)", AUTH_MAGIC);
        }
    }
    if (n < want) {
        return AUTH_VERDICT_MORE;
    }
    switch (hs->state) {
    case AUTH_STATE_RECV_HELLO: return got_hello(k, hs, why, why_size);
    case AUTH_STATE_RECV_CHALLENGE: return got_challenge(k, hs, why, why_size);
    case AUTH_STATE_RECV_PROOF: return got_proof(k, hs, why, why_size);
    case AUTH_STATE_IDLE:
    case AUTH_STATE_SEND_HELLO:
    case AUTH_STATE_SEND_PROOF:
    case AUTH_STATE_CHECK_PEER:
    case AUTH_STATE_SEND_CHALLENGE:
    case AUTH_STATE_DONE:
    case AUTH_STATE_FAILED: break;
    }
    YGGR_UNREACHABLE();
}
