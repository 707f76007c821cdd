/* SPDX-License-Identifier: MIT */
/* Peer authentication handshake, sans-IO: message layouts, key derivation, MACs (auth.c). */
#ifndef YGGR_TRANSPORT_AUTH_H
#define YGGR_TRANSPORT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte layouts: docs/wire.md, "Authenticated peers". All integers big-endian. */
#define AUTH_MAGIC "YGGRAUTH"
#define AUTH_MAGIC_U64 0x5947475241555448ull /* the magic read as a frame's u64 sender */
#define AUTH_VERSION 1u
#define AUTH_MAGIC_BYTES 8u
#define AUTH_HEADER_BYTES 12u              /* magic, u16 version, u8 type, u8 flags (0) */
#define AUTH_NONCE_BYTES 32u
#define AUTH_MAC_BYTES 32u                 /* HMAC-SHA256 */
#define AUTH_HELLO_BYTES 68u               /* header, cluster, claimed id, target id, nonce_c */
#define AUTH_CHALLENGE_BYTES 92u           /* header, cluster, listener id, nonce_s, mac_s */
#define AUTH_PROOF_BYTES 44u               /* header, mac_c */
#define AUTH_CHALLENGE_SIGNED_BYTES (AUTH_CHALLENGE_BYTES - AUTH_MAC_BYTES)
#define AUTH_TRANSCRIPT_BYTES (AUTH_HELLO_BYTES + AUTH_CHALLENGE_SIGNED_BYTES)
/* A listener reads at most this many bytes from a connection before it is authenticated. */
#define AUTH_PREAUTH_MAX_BYTES (AUTH_HELLO_BYTES + AUTH_PROOF_BYTES)
#define AUTH_TIMEOUT_MS 2000u              /* handshake deadline, both sides */
#define AUTH_SECRET_MIN_BYTES 16u

_Static_assert(AUTH_HELLO_BYTES == AUTH_HEADER_BYTES + 3 * 8 + AUTH_NONCE_BYTES, "HELLO");
_Static_assert(AUTH_CHALLENGE_BYTES ==
                   AUTH_HEADER_BYTES + 2 * 8 + AUTH_NONCE_BYTES + AUTH_MAC_BYTES,
               "CHALLENGE");
_Static_assert(AUTH_PROOF_BYTES == AUTH_HEADER_BYTES + AUTH_MAC_BYTES, "PROOF");

enum auth_type {
    AUTH_TYPE_HELLO = 1,
    AUTH_TYPE_CHALLENGE = 2,
    AUTH_TYPE_PROOF = 3,
};

/* The MAC key and this node's identity. Set at create, read-only afterwards. */
struct auth_key {
    uint8_t mac_key[AUTH_MAC_BYTES];       /* HMAC(secret, "yggr-key" || cluster_id) */
    uint64_t cluster_id;
    uint64_t self;
};

enum auth_state {
    AUTH_STATE_IDLE = 0,
    AUTH_STATE_SEND_HELLO,                 /* dialer */
    AUTH_STATE_RECV_CHALLENGE,             /* dialer */
    AUTH_STATE_SEND_PROOF,                 /* dialer */
    AUTH_STATE_RECV_HELLO,                 /* listener */
    AUTH_STATE_CHECK_PEER,                 /* listener: the caller vets the claimed id */
    AUTH_STATE_SEND_CHALLENGE,             /* listener */
    AUTH_STATE_RECV_PROOF,                 /* listener */
    AUTH_STATE_DONE,
    AUTH_STATE_FAILED,
};

/* What the caller does after auth_received(). */
enum auth_verdict {
    AUTH_VERDICT_MORE = 1,                 /* receive auth_want() more bytes into auth_in() */
    AUTH_VERDICT_SEND,                     /* send out[out_sent..out_len), then auth_sent() */
    AUTH_VERDICT_CHECK_PEER,               /* listener: is `peer` a member? then challenge */
    AUTH_VERDICT_DONE,                     /* listener: `peer` is authenticated */
    AUTH_VERDICT_FAIL,                     /* a handshake message that does not verify */
    AUTH_VERDICT_NOT_HANDSHAKE,            /* the bytes are no handshake at all (magic) */
};

/* One handshake in progress, embedded in a connection or a link. owner: net. */
struct auth_hs {
    enum auth_state state;
    uint64_t peer;                         /* dialer: the target; listener: the claimed id */
    uint64_t deadline_ns;                  /* set and enforced by the caller */
    uint32_t in_len;                       /* bytes of the expected message received */
    uint32_t out_len;
    uint32_t out_sent;
    uint8_t transcript[AUTH_TRANSCRIPT_BYTES]; /* HELLO || CHALLENGE without mac_s */
    uint8_t in[AUTH_CHALLENGE_BYTES];      /* the message being received */
    uint8_t out[AUTH_CHALLENGE_BYTES];     /* the message being sent */
};

/* Derive the MAC key. `secret` is borrowed (not kept). 0, or -EIO when libcrypto fails. */
int auth_key_init(struct auth_key *k, const uint8_t *secret, uint32_t secret_len,
                  uint64_t cluster_id, uint64_t self);
void auth_key_wipe(struct auth_key *k);

/* Dialer: build the HELLO for `target` (fresh nonce_c). 0, or -EIO (no randomness). */
int auth_dialer_start(const struct auth_key *k, struct auth_hs *hs, uint64_t target);
/* Listener: expect a HELLO. */
void auth_listener_start(struct auth_hs *hs);
/* Listener, after the caller accepted `peer` (AUTH_VERDICT_CHECK_PEER): build the
 * CHALLENGE (fresh nonce_s, mac_s). 0, or -EIO (no randomness or libcrypto failure). */
int auth_listener_challenge(const struct auth_key *k, struct auth_hs *hs);

/* Bytes still expected by a RECV state (0 in any other state), and where they go. */
uint32_t auth_want(const struct auth_hs *hs);
uint8_t *auth_in(struct auth_hs *hs);
/* `n` more bytes of `out` were sent. True when the message is complete (state advanced). */
bool auth_sent(struct auth_hs *hs, uint32_t n);
/* `n` more bytes landed at auth_in(). `why` (borrowed) receives the reason on failure. */
enum auth_verdict auth_received(const struct auth_key *k, struct auth_hs *hs, uint32_t n,
                                char *why, size_t why_size);

#endif /* YGGR_TRANSPORT_AUTH_H */
