// 64-bit FNV-1a: a small, stable, platform-independent hash for fingerprints and host hashes
// (not for security).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace nccl_moe::topo {

inline uint64_t fnv1a64(const std::string& bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

inline std::string hex64(uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace nccl_moe::topo
