#include "tools/bootstrap/store_wire.h"

#include <cstring>

namespace nccl_moe::bootstrap {
namespace {

template <class T>
void put(uint8_t* at, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) at[i] = static_cast<uint8_t>(value >> (8 * (sizeof(T) - 1 - i)));
}

template <class T>
T get(const uint8_t* at) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value = static_cast<T>((value << 8) | at[i]);
  return value;
}

}  // namespace

std::array<uint8_t, kHelloBytes> encodeHello(const Hello& hello) {
  std::array<uint8_t, kHelloBytes> bytes{};
  put<uint32_t>(&bytes[0], kStoreMagic);
  put<uint16_t>(&bytes[4], hello.version);
  put<uint32_t>(&bytes[8], hello.size);
  put<uint32_t>(&bytes[12], hello.rank);
  put<uint64_t>(&bytes[16], hello.job);
  return bytes;
}

std::array<uint8_t, kReplyBytes> encodeReply(const Reply& reply) {
  std::array<uint8_t, kReplyBytes> bytes{};
  put<uint32_t>(&bytes[0], kStoreMagic);
  put<uint16_t>(&bytes[4], reply.version);
  put<uint16_t>(&bytes[6], static_cast<uint16_t>(reply.verdict));
  put<uint32_t>(&bytes[8], reply.size);
  put<uint64_t>(&bytes[16], reply.job);
  std::memcpy(&bytes[24], reply.id.internal, sizeof(reply.id.internal));
  return bytes;
}

std::optional<Hello> decodeHello(const std::array<uint8_t, kHelloBytes>& bytes) {
  if (get<uint32_t>(&bytes[0]) != kStoreMagic) return std::nullopt;
  Hello hello;
  hello.version = get<uint16_t>(&bytes[4]);
  hello.size = get<uint32_t>(&bytes[8]);
  hello.rank = get<uint32_t>(&bytes[12]);
  hello.job = get<uint64_t>(&bytes[16]);
  return hello;
}

std::optional<Reply> decodeReply(const std::array<uint8_t, kReplyBytes>& bytes) {
  if (get<uint32_t>(&bytes[0]) != kStoreMagic) return std::nullopt;
  Reply reply;
  reply.version = get<uint16_t>(&bytes[4]);
  reply.verdict = static_cast<Verdict>(get<uint16_t>(&bytes[6]));
  reply.size = get<uint32_t>(&bytes[8]);
  reply.job = get<uint64_t>(&bytes[16]);
  std::memcpy(reply.id.internal, &bytes[24], sizeof(reply.id.internal));
  return reply;
}

uint64_t jobHash(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace nccl_moe::bootstrap
