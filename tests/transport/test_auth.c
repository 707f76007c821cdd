/* SPDX-License-Identifier: MIT */
/* transport/auth.c without sockets (suite unit): the handshake's byte layout against an
 * independent HMAC computation (docs/wire.md), and every way it must fail. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

#define SECRET "correct horse battery staple"
#define CLUSTER 0xC1C2C3C4C5C6C7C8ull

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* HMAC-SHA256(key, a || b), computed here from the documented formulas. */
static void hmac_of(const void *key, size_t key_len, const void *a, size_t a_len, const void *b,
                    size_t b_len, uint8_t out[32])
{
    uint8_t msg[512];
    unsigned len = 0;
    cr_assert(le(sz, a_len + b_len, sizeof(msg)));
    memcpy(msg, a, a_len);
    memcpy(msg + a_len, b, b_len);
    cr_assert_not_null(HMAC(EVP_sha256(), key, (int)key_len, msg, a_len + b_len, out, &len));
    cr_assert(eq(u32, len, 32));
}

static void doc_key(const char *secret, uint64_t cluster, uint8_t key[32])
{
    uint8_t c[8];
    be64(c, cluster);
    hmac_of(secret, strlen(secret), "yggr-key", 8, c, 8, key);
}

static void key_of(struct auth_key *k, const char *secret, uint64_t cluster, uint64_t self)
{
    cr_assert(eq(int, auth_key_init(k, (const uint8_t *)secret, (uint32_t)strlen(secret),
                                    cluster, self), 0));
}

/* Feed `len` bytes to `hs` in pieces of at most `step`; the last verdict. */
static enum auth_verdict feed(const struct auth_key *k, struct auth_hs *hs, const uint8_t *bytes,
                              uint32_t len, uint32_t step, char *why, size_t why_size)
{
    enum auth_verdict v = AUTH_VERDICT_MORE;
    uint32_t off = 0;
    while (off < len && v == AUTH_VERDICT_MORE) {
        uint32_t n = len - off < step ? len - off : step;
        n = n < auth_want(hs) ? n : auth_want(hs);
        memcpy(auth_in(hs), bytes + off, n);
        v = auth_received(k, hs, n, why, why_size);
        off += n;
    }
    return v;
}

/* Take the message `from` is sending (and mark it sent). */
static uint32_t take(struct auth_hs *from, uint8_t *out)
{
    uint32_t len = from->out_len;
    cr_assert(gt(u32, len, 0));
    memcpy(out, from->out, len);
    cr_assert(auth_sent(from, len));
    return len;
}

/* A full handshake; `tamper(msg_index, bytes, len)` may change a message in flight.
 * Returns true when both sides reached DONE; the listener's claimed id in *claimed. */
typedef void (*tamper_fn)(int msg, uint8_t *bytes, uint32_t len, void *ctx);

struct run {
    const struct auth_key *kd, *kl;
    uint32_t step;
    tamper_fn tamper;
    void *ctx;
    char why[160];
    struct auth_hs d, l;
    uint8_t msgs[3][AUTH_CHALLENGE_BYTES];
    uint32_t lens[3];
};

static bool run_handshake(struct run *r, uint64_t target)
{
    cr_assert(eq(int, auth_dialer_start(r->kd, &r->d, target), 0));
    auth_listener_start(&r->l);
    r->lens[0] = take(&r->d, r->msgs[0]);
    if (r->tamper != NULL) {
        r->tamper(0, r->msgs[0], r->lens[0], r->ctx);
    }
    enum auth_verdict v = feed(r->kl, &r->l, r->msgs[0], r->lens[0], r->step, r->why,
                               sizeof(r->why));
    if (v != AUTH_VERDICT_CHECK_PEER) {
        return false;
    }
    cr_assert(eq(int, auth_listener_challenge(r->kl, &r->l), 0));
    r->lens[1] = take(&r->l, r->msgs[1]);
    if (r->tamper != NULL) {
        r->tamper(1, r->msgs[1], r->lens[1], r->ctx);
    }
    v = feed(r->kd, &r->d, r->msgs[1], r->lens[1], r->step, r->why, sizeof(r->why));
    if (v != AUTH_VERDICT_SEND) {
        return false;
    }
    r->lens[2] = take(&r->d, r->msgs[2]);
    cr_assert(eq(int, r->d.state, AUTH_STATE_DONE));
    if (r->tamper != NULL) {
        r->tamper(2, r->msgs[2], r->lens[2], r->ctx);
    }
    v = feed(r->kl, &r->l, r->msgs[2], r->lens[2], r->step, r->why, sizeof(r->why));
    return v == AUTH_VERDICT_DONE;
}

Test(auth, handshake_completes_whole_or_byte_by_byte)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    uint32_t steps[] = {1, 7, 100};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct run r = {.kd = &k1, .kl = &k2, .step = steps[i]};
        cr_assert(run_handshake(&r, 2), "step %u: %s", steps[i], r.why);
        cr_expect(eq(u64, r.l.peer, 1), "the listener learns the claimed id");
        cr_expect(eq(int, r.l.state, AUTH_STATE_DONE));
        cr_expect(eq(u32, r.lens[0], AUTH_HELLO_BYTES));
        cr_expect(eq(u32, r.lens[1], AUTH_CHALLENGE_BYTES));
        cr_expect(eq(u32, r.lens[2], AUTH_PROOF_BYTES));
    }
    cr_expect(eq(u32, AUTH_PREAUTH_MAX_BYTES, 112));
}

Test(auth, messages_follow_the_documented_layout)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    struct run r = {.kd = &k1, .kl = &k2, .step = 1000};
    cr_assert(run_handshake(&r, 2), "%s", r.why);
    uint8_t key[32], want[32], u64[8];
    doc_key(SECRET, CLUSTER, key);
    cr_expect(eq(int, memcmp(key, k1.mac_key, 32), 0), "K = HMAC(secret, yggr-key || cluster)");
    const uint8_t *h = r.msgs[0], *c = r.msgs[1], *p = r.msgs[2];
    const uint8_t hdr_hello[12] = {'Y', 'G', 'G', 'R', 'A', 'U', 'T', 'H', 0, 1, 1, 0};
    const uint8_t hdr_chal[12] = {'Y', 'G', 'G', 'R', 'A', 'U', 'T', 'H', 0, 1, 2, 0};
    const uint8_t hdr_proof[12] = {'Y', 'G', 'G', 'R', 'A', 'U', 'T', 'H', 0, 1, 3, 0};
    cr_expect(eq(int, memcmp(h, hdr_hello, 12), 0));
    cr_expect(eq(int, memcmp(c, hdr_chal, 12), 0));
    cr_expect(eq(int, memcmp(p, hdr_proof, 12), 0));
    be64(u64, CLUSTER);
    cr_expect(eq(int, memcmp(h + 12, u64, 8), 0), "HELLO cluster id");
    cr_expect(eq(int, memcmp(c + 12, u64, 8), 0), "CHALLENGE cluster id");
    be64(u64, 1);
    cr_expect(eq(int, memcmp(h + 20, u64, 8), 0), "HELLO claimed id");
    be64(u64, 2);
    cr_expect(eq(int, memcmp(h + 28, u64, 8), 0), "HELLO target id");
    cr_expect(eq(int, memcmp(c + 20, u64, 8), 0), "CHALLENGE listener id");
    uint8_t transcript[AUTH_TRANSCRIPT_BYTES];
    memcpy(transcript, h, 68);
    memcpy(transcript + 68, c, 60);
    hmac_of(key, 32, "yggr-auth-server", 16, transcript, sizeof(transcript), want);
    cr_expect(eq(int, memcmp(c + 60, want, 32), 0), "mac_s");
    hmac_of(key, 32, "yggr-auth-client", 16, transcript, sizeof(transcript), want);
    cr_expect(eq(int, memcmp(p + 12, want, 32), 0), "mac_c");
    cr_expect(eq(u64, AUTH_MAGIC_U64, 0x5947475241555448ull));
    /* Nonces are fresh: a second handshake has other ones. */
    struct run r2 = {.kd = &k1, .kl = &k2, .step = 1000};
    cr_assert(run_handshake(&r2, 2));
    cr_expect(ne(int, memcmp(r.msgs[0] + 36, r2.msgs[0] + 36, 32), 0), "nonce_c fresh");
    cr_expect(ne(int, memcmp(r.msgs[1] + 28, r2.msgs[1] + 28, 32), 0), "nonce_s fresh");
}

Test(auth, key_depends_on_secret_and_cluster_id)
{
    struct auth_key a, b, c;
    key_of(&a, SECRET, 1, 1);
    key_of(&b, SECRET, 2, 1);
    key_of(&c, SECRET "!", 1, 1);
    cr_expect(ne(int, memcmp(a.mac_key, b.mac_key, 32), 0));
    cr_expect(ne(int, memcmp(a.mac_key, c.mac_key, 32), 0));
    auth_key_wipe(&a);
    uint8_t zero[sizeof(a)] = {0};
    cr_expect(eq(int, memcmp(&a, zero, sizeof(a)), 0), "wiped");
}

Test(auth, wrong_secret_fails_at_the_dialer_and_at_the_listener)
{
    struct auth_key k1, k2, wrong1;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    key_of(&wrong1, "another secret, 24 bytes", CLUSTER, 1);
    struct run r = {.kd = &wrong1, .kl = &k2, .step = 1000};
    cr_expect(not(run_handshake(&r, 2)));
    cr_expect(eq(int, r.d.state, AUTH_STATE_FAILED), "the dialer refuses the CHALLENGE");
    cr_expect(strstr(r.why, "CHALLENGE does not verify") != NULL, "%s", r.why);
    /* An attacker that ignores mac_s and answers with a PROOF under its own key. */
    uint8_t key[32], proof[AUTH_PROOF_BYTES];
    doc_key("another secret, 24 bytes", CLUSTER, key);
    uint8_t transcript[AUTH_TRANSCRIPT_BYTES];
    memcpy(transcript, r.msgs[0], 68);
    memcpy(transcript + 68, r.msgs[1], 60);
    memcpy(proof, "YGGRAUTH\0\1\3\0", 12);
    hmac_of(key, 32, "yggr-auth-client", 16, transcript, sizeof(transcript), proof + 12);
    char why[160] = "";
    cr_expect(eq(int, feed(&k2, &r.l, proof, sizeof(proof), 1000, why, sizeof(why)),
                 AUTH_VERDICT_FAIL));
    cr_expect(strstr(why, "PROOF does not verify") != NULL, "%s", why);
    cr_expect(ne(int, memcmp(k1.mac_key, wrong1.mac_key, 32), 0));
}

Test(auth, wrong_cluster_id_fails_on_the_hello)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER + 1, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    struct run r = {.kd = &k1, .kl = &k2, .step = 1000};
    cr_expect(not(run_handshake(&r, 2)));
    cr_expect(eq(int, r.l.state, AUTH_STATE_FAILED));
    cr_expect(strstr(r.why, "wrong cluster id") != NULL, "%s", r.why);
}

Test(auth, replayed_hello_and_proof_fail_against_a_fresh_challenge)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    struct run r = {.kd = &k1, .kl = &k2, .step = 1000};
    cr_assert(run_handshake(&r, 2));
    for (int i = 0; i < 100; i++) {
        struct auth_hs l;
        char why[160] = "";
        auth_listener_start(&l);
        cr_assert(eq(int, feed(&k2, &l, r.msgs[0], r.lens[0], 1000, why, sizeof(why)),
                     AUTH_VERDICT_CHECK_PEER));
        cr_assert(eq(int, auth_listener_challenge(&k2, &l), 0));
        uint8_t chal[AUTH_CHALLENGE_BYTES];
        take(&l, chal);
        cr_expect(ne(int, memcmp(chal + 28, r.msgs[1] + 28, 32), 0), "fresh nonce_s");
        cr_expect(eq(int, feed(&k2, &l, r.msgs[2], r.lens[2], 1000, why, sizeof(why)),
                     AUTH_VERDICT_FAIL));
        cr_expect(eq(int, l.state, AUTH_STATE_FAILED));
    }
}

/* Reflection: the listener's own mac_s sent back as a PROOF. */
Test(auth, server_mac_is_not_a_client_mac)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    struct auth_hs d, l;
    char why[160] = "";
    uint8_t hello[AUTH_HELLO_BYTES], chal[AUTH_CHALLENGE_BYTES], proof[AUTH_PROOF_BYTES];
    cr_assert(eq(int, auth_dialer_start(&k1, &d, 2), 0));
    take(&d, hello);
    auth_listener_start(&l);
    cr_assert(eq(int, feed(&k2, &l, hello, sizeof(hello), 1000, why, sizeof(why)),
                 AUTH_VERDICT_CHECK_PEER));
    cr_assert(eq(int, auth_listener_challenge(&k2, &l), 0));
    take(&l, chal);
    memcpy(proof, "YGGRAUTH\0\1\3\0", 12);
    memcpy(proof + 12, chal + 60, 32);
    cr_expect(eq(int, feed(&k2, &l, proof, sizeof(proof), 1000, why, sizeof(why)),
                 AUTH_VERDICT_FAIL));
}

static void flip_bit(int msg, uint8_t *bytes, uint32_t len, void *ctx)
{
    const int *which = ctx; /* {message, bit} */
    if (msg == which[0] && (uint32_t)which[1] / 8 < len) {
        bytes[which[1] / 8] ^= (uint8_t)(1u << (which[1] % 8));
    }
}

/* Any single bit changed in flight, in any of the three messages, stops the handshake:
 * the ids, cluster id, nonces and both MACs are all bound. */
Test(auth, any_flipped_bit_in_any_message_fails)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    const uint32_t lens[3] = {AUTH_HELLO_BYTES, AUTH_CHALLENGE_BYTES, AUTH_PROOF_BYTES};
    int runs = 0;
    for (int m = 0; m < 3; m++) {
        for (int bit = 0; bit < (int)lens[m] * 8; bit++) {
            int which[2] = {m, bit};
            struct run r = {.kd = &k1, .kl = &k2, .step = 13, .tamper = flip_bit,
                            .ctx = which};
            cr_assert(not(run_handshake(&r, 2)), "message %d bit %d accepted", m, bit);
            runs++;
        }
    }
    cr_expect(eq(int, runs, (68 + 92 + 44) * 8));
}

Test(auth, raw_frames_and_junk_fail_on_the_first_byte)
{
    struct auth_key k2;
    key_of(&k2, SECRET, CLUSTER, 2);
    struct auth_hs l;
    char why[160] = "";
    const uint8_t frame[12] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9}; /* sender 1, 9 bytes */
    auth_listener_start(&l);
    cr_expect(eq(int, feed(&k2, &l, frame, 1, 1, why, sizeof(why)), AUTH_VERDICT_NOT_HANDSHAKE));
    cr_expect(strstr(why, "magic") != NULL, "%s", why);
    /* A magic prefix then something else. */
    auth_listener_start(&l);
    cr_expect(eq(int, feed(&k2, &l, (const uint8_t *)"YGGRAUTX", 8, 3, why, sizeof(why)),
                 AUTH_VERDICT_NOT_HANDSHAKE));
    /* The magic alone is not enough: it waits for the rest of the HELLO, no more. */
    auth_listener_start(&l);
    cr_expect(eq(int, feed(&k2, &l, (const uint8_t *)"YGGRAUTH", 8, 8, why, sizeof(why)),
                 AUTH_VERDICT_MORE));
    cr_expect(eq(u32, auth_want(&l), AUTH_HELLO_BYTES - 8));
}

Test(auth, hello_with_bad_ids_or_version_fails)
{
    struct auth_key k1, k2;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k2, SECRET, CLUSTER, 2);
    struct {
        int offset;
        uint64_t value;
        const char *why;
    } cases[] = {
        {28, 3, "HELLO is for node 3"},  /* target: another node */
        {20, 0, "claims node id 0"},     /* claimed 0 */
        {20, 2, "claims node id 2"},     /* claimed = the listener itself */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct auth_hs d, l;
        char why[160] = "";
        uint8_t hello[AUTH_HELLO_BYTES];
        cr_assert(eq(int, auth_dialer_start(&k1, &d, 2), 0));
        take(&d, hello);
        be64(hello + cases[i].offset, cases[i].value);
        auth_listener_start(&l);
        cr_expect(eq(int, feed(&k2, &l, hello, sizeof(hello), 1000, why, sizeof(why)),
                     AUTH_VERDICT_FAIL));
        cr_expect(strstr(why, cases[i].why) != NULL, "%s", why);
    }
    struct auth_hs d, l;
    char why[160] = "";
    uint8_t hello[AUTH_HELLO_BYTES];
    cr_assert(eq(int, auth_dialer_start(&k1, &d, 2), 0));
    take(&d, hello);
    hello[9] = 2; /* version 2 */
    auth_listener_start(&l);
    cr_expect(eq(int, feed(&k2, &l, hello, sizeof(hello), 1000, why, sizeof(why)),
                 AUTH_VERDICT_FAIL));
    cr_expect(strstr(why, "unsupported handshake version 2") != NULL, "%s", why);
}

/* The dialer only talks to the node it dialled: a member of the cluster (it has the secret
 * and signs correctly) answering for another id is refused. */
Test(auth, dialer_refuses_a_challenge_signed_by_another_node)
{
    struct auth_key k1, k3;
    key_of(&k1, SECRET, CLUSTER, 1);
    key_of(&k3, SECRET, CLUSTER, 3);
    struct auth_hs d, l;
    char why[160] = "";
    uint8_t hello[AUTH_HELLO_BYTES], chal[AUTH_CHALLENGE_BYTES];
    cr_assert(eq(int, auth_dialer_start(&k1, &d, 2), 0));
    take(&d, hello);
    be64(hello + 28, 3); /* a MITM redirects the HELLO to node 3 */
    auth_listener_start(&l);
    cr_assert(eq(int, feed(&k3, &l, hello, sizeof(hello), 1000, why, sizeof(why)),
                 AUTH_VERDICT_CHECK_PEER));
    cr_assert(eq(int, auth_listener_challenge(&k3, &l), 0));
    take(&l, chal);
    cr_expect(eq(int, feed(&k1, &d, chal, sizeof(chal), 1000, why, sizeof(why)),
                 AUTH_VERDICT_FAIL));
    cr_expect(strstr(why, "node 3 answered instead of node 2") != NULL, "%s", why);
}
