// Logging from inside NCCL: through the logger NCCL handed to the tuner's init (so lines appear in
// NCCL's own log, filtered by NCCL_DEBUG / NCCL_DEBUG_SUBSYS) and mirrored to nccl-moe's log
// (NCCL_MOE_DEBUG).
#pragma once

#include "tuner_abi.h"

namespace nccl_moe {

class NcclLog {
 public:
  explicit NcclLog(tuner_abi::Logger logger = nullptr) : logger_(logger) {}

  void info(unsigned long subsys, const char* fmt, ...) const __attribute__((format(printf, 3, 4)));
  void warn(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));

 private:
  tuner_abi::Logger logger_;
};

}  // namespace nccl_moe
