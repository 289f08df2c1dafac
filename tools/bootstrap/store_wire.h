// The id store's two messages, fixed size, big-endian. A rank says who it is (hello); rank 0
// answers with the id or with why it refuses (reply). The magic and version let either side
// drop a stray connection; the job's size and name keep ranks of another job out.
//
//   hello (24 bytes)   magic u32 | version u16 | 0 u16 | size u32 | rank u32 | job u64
//   reply (152 bytes)  magic u32 | version u16 | verdict u16 | size u32 | 0 u32 | job u64 | id[128]
#pragma once

#include <nccl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace nccl_moe::bootstrap {

constexpr uint32_t kStoreMagic = 0x4e4d4253;  // "NMBS": nccl-moe bootstrap store
constexpr uint16_t kStoreVersion = 1;
constexpr size_t kHelloBytes = 24;
constexpr size_t kReplyBytes = 24 + sizeof(ncclUniqueId);

enum class Verdict : uint16_t {
  kAccepted = 0,
  kOtherSize = 1,     // rank 0 serves a job of another size
  kOtherJob = 2,      // ... of another launcher job (the job hash differs)
  kRankOutOfRange = 3,
  kOtherVersion = 4,
};

struct Hello {
  uint16_t version = kStoreVersion;
  uint32_t size = 0;
  uint32_t rank = 0;
  uint64_t job = 0;
};

struct Reply {
  uint16_t version = kStoreVersion;
  Verdict verdict = Verdict::kAccepted;
  uint32_t size = 0;
  uint64_t job = 0;
  ncclUniqueId id{};
};

std::array<uint8_t, kHelloBytes> encodeHello(const Hello& hello);
std::array<uint8_t, kReplyBytes> encodeReply(const Reply& reply);
// nullopt when the magic is not ours: not an nccl-moe rank, or not an nccl-moe store.
std::optional<Hello> decodeHello(const std::array<uint8_t, kHelloBytes>& bytes);
std::optional<Reply> decodeReply(const std::array<uint8_t, kReplyBytes>& bytes);

// The job's name as a number both sides compare (FNV-1a; "" when the launcher names no job).
uint64_t jobHash(const std::string& name);

}  // namespace nccl_moe::bootstrap
