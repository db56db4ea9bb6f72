// SHA-256 block compression with the x86 SHA extensions (SHA-NI), for TorchCheckpoint's SHA256.
// The only C in the package that is not a system-library shim: Swift cannot reach these
// instructions, and hashing every tensor of a 100 MB checkpoint in software would cost seconds.
#ifndef CSHA256_H
#define CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has the SHA extensions (and SSSE3, SSE4.1), else 0.
int csha256_hardware_available(void);

/// Compresses `blocks` 64-byte blocks of `data` into `state` (a, b, ..., h). Call only when
/// `csha256_hardware_available()` returned 1.
void csha256_compress(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
