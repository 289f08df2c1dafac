// A dense [rows, cols] matrix of bf16 / fp32 / e4m3 elements in host memory, kept as raw bytes so
// that copies stay bit-exact.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "misc/numerics.h"
#include "plan/moe_shape.h"

namespace nccl_moe {

class HostRows {
 public:
  HostRows() = default;
  HostRows(ElementType type, int64_t rows, int cols)
      : type_(type), rows_(rows), cols_(cols),
        bytes_(static_cast<size_t>(rows) * cols * elementBytes(type)) {}

  ElementType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int cols() const { return cols_; }
  size_t rowBytes() const { return static_cast<size_t>(cols_) * elementBytes(type_); }
  uint8_t* row(int64_t r) { return bytes_.data() + static_cast<size_t>(r) * rowBytes(); }
  const uint8_t* row(int64_t r) const { return bytes_.data() + static_cast<size_t>(r) * rowBytes(); }
  std::vector<uint8_t>& bytes() { return bytes_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

  float get(int64_t r, int c) const {
    const uint8_t* p = row(r) + static_cast<size_t>(c) * elementBytes(type_);
    switch (type_) {
      case ElementType::kBf16: {
        uint16_t h;
        std::memcpy(&h, p, sizeof(h));
        return bf16ToFloat(h);
      }
      case ElementType::kFp32: {
        float f;
        std::memcpy(&f, p, sizeof(f));
        return f;
      }
      case ElementType::kE4m3: return e4m3ToFloat(*p);
    }
    return 0.0f;
  }

  // Rounds to the element type (nearest even; saturating for e4m3).
  void set(int64_t r, int c, float value) {
    uint8_t* p = row(r) + static_cast<size_t>(c) * elementBytes(type_);
    switch (type_) {
      case ElementType::kBf16: {
        const uint16_t h = floatToBf16(value);
        std::memcpy(p, &h, sizeof(h));
        break;
      }
      case ElementType::kFp32: std::memcpy(p, &value, sizeof(value)); break;
      case ElementType::kE4m3: *p = floatToE4m3(value); break;
    }
  }

 private:
  ElementType type_ = ElementType::kBf16;
  int64_t rows_ = 0;
  int cols_ = 0;
  std::vector<uint8_t> bytes_;
};

}  // namespace nccl_moe
