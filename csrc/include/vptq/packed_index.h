// vptq/packed_index.h: decoding of the "packed" index layout (docs/op-spec.md, "Packed index
// layout"; vptq_export/packing.py is the Python form). Header-only, host and device.
//
// For one (group, index row) the gs merged codes `main | res << index_bits` (T bits each) form an
// LSB-first bit stream over the row's W = ceil(gs*T/32) uint32 words; code c occupies stream bits
// [c*T, (c+1)*T), bit j of word w is stream bit 32w + j, rows never share words.
#pragma once

#include <cstdint>

#include "vptq/host_device.h"

namespace vptq {

// Mask of the low `bits` bits (bits in 0..32).
VPTQ_HOST_DEVICE inline uint32_t low_bits_mask(int bits) {
  return bits >= 32 ? 0xFFFFFFFFu : ((uint32_t{1} << bits) - 1u);
}

// Code `c` (T = total bits, 1..32) of one packed row. Reads row[w] and, only when the code
// straddles a word boundary, row[w + 1] (always inside the row).
VPTQ_HOST_DEVICE inline uint32_t packed_code(const uint32_t* row, int64_t c, int total_bits) {
  const uint64_t bit = static_cast<uint64_t>(c) * static_cast<uint64_t>(total_bits);
  const uint64_t w = bit >> 5;
  const int shift = static_cast<int>(bit & 31u);
  uint64_t both = row[w];
  if (shift + total_bits > 32) both |= static_cast<uint64_t>(row[w + 1]) << 32;
  return static_cast<uint32_t>(both >> shift) & low_bits_mask(total_bits);
}

// Main and residual index of a merged code (the residual masked with its own width).
VPTQ_HOST_DEVICE inline uint32_t main_index(uint32_t code, int index_bits) {
  return code & low_bits_mask(index_bits);
}
VPTQ_HOST_DEVICE inline uint32_t residual_index(uint32_t code, int index_bits, int res_index_bits) {
  return index_bits >= 32 ? 0u : (code >> index_bits) & low_bits_mask(res_index_bits);
}

// Sequential decoder of one packed row: next() returns codes 0, 1, 2, ... with one 64-bit
// window, loading each word once (the fast path of CPU loops; device code may use it per thread).
struct PackedRowReader {
  const uint32_t* words;
  int total_bits;
  uint32_t mask;
  uint64_t window;  // unread bits, LSB first
  int avail;        // number of valid bits in window
  int64_t next_word;

  VPTQ_HOST_DEVICE PackedRowReader(const uint32_t* row, int bits, int64_t first_code = 0)
      : words(row), total_bits(bits), mask(low_bits_mask(bits)), window(0), avail(0), next_word(0) {
    const uint64_t bit = static_cast<uint64_t>(first_code) * static_cast<uint64_t>(bits);
    next_word = static_cast<int64_t>(bit >> 5);
    const int skip = static_cast<int>(bit & 31u);
    if (skip) {
      window = static_cast<uint64_t>(words[next_word++]) >> skip;
      avail = 32 - skip;
    }
  }
  // Must not be called more often than the row has codes (it would read past the row).
  VPTQ_HOST_DEVICE uint32_t next() {
    if (avail < total_bits) {
      window |= static_cast<uint64_t>(words[next_word++]) << avail;
      avail += 32;
    }
    const uint32_t code = static_cast<uint32_t>(window) & mask;
    window >>= total_bits;
    avail -= total_bits;
    return code;
  }
};

}  // namespace vptq
