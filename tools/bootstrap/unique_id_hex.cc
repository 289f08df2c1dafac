#include "tools/bootstrap/unique_id_hex.h"

#include <cstddef>
#include <stdexcept>

namespace nccl_moe {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string encodeUniqueIdHex(const ncclUniqueId& id) {
  std::string hex;
  hex.reserve(2 * sizeof(id.internal));
  for (char byte : id.internal) {
    const auto value = static_cast<unsigned char>(byte);
    hex.push_back(kHexDigits[value >> 4]);
    hex.push_back(kHexDigits[value & 0xf]);
  }
  return hex;
}

ncclUniqueId decodeUniqueIdHex(std::string_view hex) {
  ncclUniqueId id{};
  const size_t expected = 2 * sizeof(id.internal);
  if (hex.size() != expected) {
    throw std::invalid_argument("an NCCL unique id in hex has " + std::to_string(expected) +
                                " characters, this one has " + std::to_string(hex.size()));
  }
  for (size_t i = 0; i < sizeof(id.internal); ++i) {
    const int high = hexValue(hex[2 * i]);
    const int low = hexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      const size_t bad = high < 0 ? 2 * i : 2 * i + 1;
      throw std::invalid_argument("an NCCL unique id in hex has a non-hex character '" +
                                  std::string(1, hex[bad]) + "' at position " +
                                  std::to_string(bad));
    }
    id.internal[i] = static_cast<char>((high << 4) | low);
  }
  return id;
}

}  // namespace nccl_moe
