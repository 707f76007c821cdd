/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78).
 *
 * Design notes:
 * - crc32c() dispatches once (lazily, thread-safe by idempotence) to the SSE4.2 `crc32`
 *   instruction when CPUID reports it, else to a slicing-by-8 table implementation.
 * - Both paths take and return the finalised CRC so calls can be chained:
 *   crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m).
 * - The tables are built on first use; building is deterministic, so a race between two
 *   threads building them writes identical values (benign) and `table_ready` is published
 *   with release/acquire ordering.
 */
#include "crc32c.h"

#include <stdatomic.h>
#include <string.h>

#include "yggr_assert.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static atomic_int table_ready;

static void build_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ POLY : c >> 1;
        }
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xFFu] ^ (c >> 8);
            table[k][n] = c;
        }
    }
    /* Release: the table stores above happen-before any reader that sees ready == 1. */
    atomic_store_explicit(&table_ready, 1, memory_order_release);
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    YGGR_ASSERT(p != NULL || len == 0);
    if (!atomic_load_explicit(&table_ready, memory_order_acquire)) {
        build_table();
    }
    uint32_t c = ~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint32_t lo = c ^ (uint32_t)w;
        uint32_t hi = (uint32_t)(w >> 32);
        c = table[7][lo & 0xFFu] ^ table[6][(lo >> 8) & 0xFFu] ^ table[5][(lo >> 16) & 0xFFu] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFFu] ^ table[2][(hi >> 8) & 0xFFu] ^
            table[1][(hi >> 16) & 0xFFu] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = table[0][(c ^ *p) & 0xFFu] ^ (c >> 8);
        p++;
        len--;
    }
    return ~c;
}

#if defined(__x86_64__)
#include <cpuid.h>

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    YGGR_ASSERT(p != NULL || len == 0);
    uint64_t c = (uint32_t)~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p);
        p++;
        len--;
    }
    return ~c32;
}

int crc32c_hw_available(void)
{
    unsigned a = 0;
    unsigned b = 0;
    unsigned c = 0;
    unsigned d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return 0;
    }
    return (c & bit_SSE4_2) != 0;
}
#else
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return crc32c_sw(crc, data, len);
}

int crc32c_hw_available(void)
{
    return 0;
}
#endif

/* 0 = not probed yet, 1 = software, 2 = hardware. Racing probes store the same value. */
static atomic_int impl;

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    int which = atomic_load_explicit(&impl, memory_order_relaxed);
    if (YGGR_UNLIKELY(which == 0)) {
        which = crc32c_hw_available() ? 2 : 1;
        atomic_store_explicit(&impl, which, memory_order_relaxed);
    }
    if (which == 2) {
        return crc32c_hw(crc, data, len);
    }
    return crc32c_sw(crc, data, len);
}
