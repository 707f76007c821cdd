/* SPDX-License-Identifier: MIT */
/* CRC32C (Castagnoli): SSE4.2 instruction when the CPU has it, table fallback otherwise. */
#ifndef YGGR_CORE_CRC32C_H
#define YGGR_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend `crc` (0 to start) over `len` bytes; returns the new CRC (pre/post inverted as
 * in RFC 3720, so crc32c(0, "123456789", 9) == 0xE3069283). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* The two implementations, exposed so tests can check both against known vectors. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len); /* requires crc32c_hw_available */
int crc32c_hw_available(void);

#endif /* YGGR_CORE_CRC32C_H */
