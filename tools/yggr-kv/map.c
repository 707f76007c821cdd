/* SPDX-License-Identifier: MIT */
/* yggr-kv's replicated map: an open-addressing hash table of byte strings, the state
 * machine callbacks (apply, snapshot, restore) and the command encoding.
 *
 * Design notes:
 * - Only yggr's apply thread touches the map (apply, snapshot, restore and read
 *   callbacks all run there), so it needs no lock.
 * - Linear probing with tombstones; grows at 70 % load. Each slot owns one malloc'd block
 *   holding key and value.
 * - Snapshot format: u32 magic, u64 count, then (u32 klen, key, u32 vlen, value)*.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

#define SNAP_MAGIC 0x4B565931u /* "1YVK" */

#define KV_INLINE_KEY 32

struct kv_slot {
    uint64_t hash;  /* 0 = empty, 1 = tombstone */
    uint32_t klen;
    uint32_t vlen;
    uint32_t cap;   /* bytes of mem */
    uint32_t pad;
    char *mem;      /* [key if klen > KV_INLINE_KEY] value */
    char key[KV_INLINE_KEY];
};

_Static_assert(sizeof(struct kv_slot) == 64, "one cache line per slot");

static const char *slot_key(const struct kv_slot *s)
{
    return s->klen <= KV_INLINE_KEY ? s->key : s->mem;
}

static char *slot_value(const struct kv_slot *s)
{
    return s->klen <= KV_INLINE_KEY ? s->mem : s->mem + s->klen;
}

struct kv_map {
    struct kv_slot *slots;
    uint64_t cap;   /* power of two */
    uint64_t used;  /* live + tombstones */
    uint64_t live;
};

static uint64_t hash_bytes(const char *p, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    return h < 2 ? h + 2 : h;
}

struct kv_map *kv_map_new(void)
{
    struct kv_map *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->cap = 1024;
    m->slots = calloc(m->cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

static void map_clear(struct kv_map *m)
{
    for (uint64_t i = 0; i < m->cap; i++) {
        free(m->slots[i].mem);
    }
    memset(m->slots, 0, m->cap * sizeof(*m->slots));
    m->used = 0;
    m->live = 0;
}

void kv_map_free(struct kv_map *m)
{
    if (m != NULL) {
        map_clear(m);
        free(m->slots);
        free(m);
    }
}

uint64_t kv_map_size(struct kv_map *m)
{
    return m->live;
}

/* Slot holding key, or the slot where it would go (first tombstone or empty). */
static struct kv_slot *find(struct kv_map *m, const char *k, uint32_t kl, uint64_t h, bool *hit)
{
    struct kv_slot *tomb = NULL;
    for (uint64_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct kv_slot *s = &m->slots[i];
        if (s->hash == 0) {
            *hit = false;
            return tomb != NULL ? tomb : s;
        }
        if (s->hash == 1) {
            if (tomb == NULL) {
                tomb = s;
            }
        } else if (s->hash == h && s->klen == kl && memcmp(slot_key(s), k, kl) == 0) {
            *hit = true;
            return s;
        }
    }
}

static void grow(struct kv_map *m)
{
    struct kv_slot *old = m->slots;
    uint64_t old_cap = m->cap;
    m->cap = m->live * 4 > old_cap ? old_cap * 2 : old_cap;
    m->slots = calloc(m->cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        fprintf(stderr, "yggr-kv: out of memory growing the map\n");
        abort();
    }
    m->used = m->live;
    for (uint64_t i = 0; i < old_cap; i++) {
        if (old[i].hash > 1) {
            bool hit;
            *find(m, slot_key(&old[i]), old[i].klen, old[i].hash, &hit) = old[i];
        }
    }
    free(old);
}

const char *kv_map_get(struct kv_map *m, const char *key, uint32_t klen, uint32_t *vlen)
{
    bool hit;
    struct kv_slot *s = find(m, key, klen, hash_bytes(key, klen), &hit);
    if (!hit) {
        return NULL;
    }
    *vlen = s->vlen;
    return slot_value(s);
}

static void map_set(struct kv_map *m, const char *k, uint32_t kl, const char *v, uint32_t vl)
{
    if ((m->used + 1) * 10 >= m->cap * 7) {
        grow(m);
    }
    uint64_t h = hash_bytes(k, kl);
    bool hit;
    struct kv_slot *s = find(m, k, kl, h, &hit);
    uint32_t need = (kl > KV_INLINE_KEY ? kl : 0) + vl + 1;
    if (!hit) {
        if (s->hash == 0) {
            m->used++;
        }
        m->live++;
        *s = (struct kv_slot){.hash = h, .klen = kl};
    }
    if (need > s->cap) {
        char *mem = realloc(s->mem, need);
        if (mem == NULL) {
            fprintf(stderr, "yggr-kv: out of memory\n");
            abort();
        }
        s->mem = mem;
        s->cap = need;
    }
    if (kl <= KV_INLINE_KEY) {
        memcpy(s->key, k, kl);
    } else {
        memcpy(s->mem, k, kl);
    }
    memcpy(slot_value(s), v, vl);
    s->vlen = vl;
}

uint64_t kv_map_digest(struct kv_map *m)
{
    uint64_t d = 0;
    for (uint64_t i = 0; i < m->cap; i++) {
        const struct kv_slot *s = &m->slots[i];
        if (s->hash > 1) {
            d += s->hash * 31u + hash_bytes(slot_value(s), s->vlen);
        }
    }
    return d;
}

size_t kv_encode_set(uint8_t *out, size_t cap, const char *k, uint32_t kl, const char *v,
                     uint32_t vl)
{
    size_t n = 2u + kl + 1u + vl;
    if (n > cap) {
        return 0;
    }
    out[0] = 'S';
    out[1] = '\n';
    memcpy(out + 2, k, kl);
    out[2 + kl] = '\n';
    memcpy(out + 3 + kl, v, vl);
    return n;
}

size_t kv_encode_del(uint8_t *out, size_t cap, const char *k, uint32_t kl)
{
    size_t n = 2u + kl;
    if (n > cap) {
        return 0;
    }
    out[0] = 'D';
    out[1] = '\n';
    memcpy(out + 2, k, kl);
    return n;
}

static void kv_apply(void *ctx, const struct yggr_command *cmd, struct yggr_reply *reply)
{
    struct kv_map *m = ctx;
    const char *p = (const char *)cmd->data;
    if (cmd->len >= 2 && p[0] == 'S' && p[1] == '\n') {
        const char *k = p + 2;
        const char *nl = memchr(k, '\n', cmd->len - 2);
        if (nl != NULL) {
            uint32_t kl = (uint32_t)(nl - k);
            map_set(m, k, kl, nl + 1, cmd->len - 3 - kl);
            yggr_reply_set(reply, "O", 1);
            return;
        }
    } else if (cmd->len >= 2 && p[0] == 'D' && p[1] == '\n') {
        uint32_t kl = cmd->len - 2;
        bool hit;
        struct kv_slot *s = find(m, p + 2, kl, hash_bytes(p + 2, kl), &hit);
        if (!hit) {
            yggr_reply_set(reply, "N", 1);
            return;
        }
        char *buf = malloc((size_t)s->vlen + 1);
        if (buf != NULL) {
            buf[0] = 'P';
            memcpy(buf + 1, slot_value(s), s->vlen);
            yggr_reply_set(reply, buf, s->vlen + 1);
            free(buf);
        }
        free(s->mem);
        *s = (struct kv_slot){.hash = 1};
        m->live--;
        return;
    }
    /* Deterministic on every node: a malformed command changes nothing. */
    yggr_reply_set(reply, "E", 1);
}

/* Snapshot output goes through a 256 KiB buffer: one yggr_snapshot_write per buffer, not
 * four per key. */
struct snap_out {
    struct yggr_snapshot_writer *w;
    uint32_t len;
    int rc;
    char buf[256 * 1024];
};

static void out_flush(struct snap_out *o)
{
    if (o->rc == 0 && o->len > 0) {
        o->rc = yggr_snapshot_write(o->w, o->buf, o->len);
    }
    o->len = 0;
}

static void out_put(struct snap_out *o, const void *p, uint32_t n)
{
    if (o->len + n > sizeof(o->buf)) {
        out_flush(o);
    }
    if (n > sizeof(o->buf)) {
        o->rc = o->rc == 0 ? yggr_snapshot_write(o->w, p, n) : o->rc;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static int kv_snapshot(void *ctx, struct yggr_snapshot_writer *w)
{
    struct kv_map *m = ctx;
    static struct snap_out o; /* apply thread only: one snapshot at a time */
    o.w = w;
    o.len = 0;
    o.rc = 0;
    uint32_t magic = SNAP_MAGIC;
    out_put(&o, &magic, 4);
    out_put(&o, &m->live, 8);
    for (uint64_t i = 0; i < m->cap && o.rc == 0; i++) {
        const struct kv_slot *s = &m->slots[i];
        if (s->hash > 1) {
            out_put(&o, &s->klen, 4);
            out_put(&o, slot_key(s), s->klen);
            out_put(&o, &s->vlen, 4);
            out_put(&o, slot_value(s), s->vlen);
        }
    }
    out_flush(&o);
    return o.rc;
}

static int read_all(struct yggr_snapshot_reader *r, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        long got = yggr_snapshot_read(r, b, n);
        if (got <= 0) {
            return got < 0 ? (int)got : YGGR_ERR_CORRUPT;
        }
        b += got;
        n -= (size_t)got;
    }
    return 0;
}

static int kv_restore(void *ctx, struct yggr_snapshot_reader *r)
{
    struct kv_map *m = ctx;
    uint32_t magic = 0;
    uint64_t count = 0;
    int rc = read_all(r, &magic, 4);
    rc = rc == 0 ? read_all(r, &count, 8) : rc;
    if (rc != 0 || magic != SNAP_MAGIC) {
        return rc != 0 ? rc : YGGR_ERR_CORRUPT;
    }
    map_clear(m);
    char *k = NULL;
    char *v = NULL;
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        uint32_t kl = 0;
        uint32_t vl = 0;
        rc = read_all(r, &kl, 4);
        k = rc == 0 ? realloc(k, kl + 1u) : k;
        rc = rc == 0 ? read_all(r, k, kl) : rc;
        rc = rc == 0 ? read_all(r, &vl, 4) : rc;
        v = rc == 0 ? realloc(v, vl + 1u) : v;
        rc = rc == 0 ? read_all(r, v, vl) : rc;
        if (rc == 0) {
            map_set(m, k, kl, v, vl);
        }
    }
    free(k);
    free(v);
    return rc;
}

struct yggr_state_machine kv_state_machine(struct kv_map *m)
{
    struct yggr_state_machine sm = {
        .ctx = m,
        .apply = kv_apply,
        .snapshot = kv_snapshot,
        .restore = kv_restore,
    };
    return sm;
}
