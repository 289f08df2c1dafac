// A fresh private directory (mode 0700) removed with its contents on destruction.
#pragma once

#include <string>

namespace nccl_moe::launcher {

class TempDir {
 public:
  // `parent`/`prefix`XXXXXX; throws std::system_error.
  TempDir(const std::string& parent, const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace nccl_moe::launcher
