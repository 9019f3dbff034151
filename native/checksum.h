// Internet checksum (RFC 1071 sums, RFC 1624 incremental update) with the
// semantics of the TypeScript reference src/packet/checksum.ts, which the
// unit tests compare this against.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace sluice {

// One's-complement sum of `len` bytes read as big-endian 16-bit words (an odd
// trailing byte is padded with zero), folded to 16 bits, not inverted. 0 only
// if every byte is 0.
uint16_t Sum16(const uint8_t* p, size_t len);

// Folds a wide accumulator into 16 bits with end-around carry.
uint16_t Fold(uint64_t acc);

// Registers checksum, ipv4HeaderChecksum, l4Checksum, incrementalUpdate.
void InitChecksum(Napi::Env env, Napi::Object exports);

}  // namespace sluice
