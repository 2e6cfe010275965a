// SPDX-License-Identifier: Apache-2.0
// SHA-256 (FIPS 180-4) of one buffer, for the shim socket names containerd computes.
#ifndef HOST_SHA256_H
#define HOST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define HOST_SHA256_SIZE 32

/* The digest of len bytes of data (borrowed) into out. */
void host_sha256(const void *data, size_t len, uint8_t out[HOST_SHA256_SIZE]);

/* The digest as 64 lower-case hex digits and a NUL. */
void host_sha256_hex(const void *data, size_t len, char out[2 * HOST_SHA256_SIZE + 1]);

#endif
