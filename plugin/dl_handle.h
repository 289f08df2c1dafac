// RAII owner of a dlopen() handle.
#pragma once

#include <dlfcn.h>

#include <string>
#include <utility>

namespace nccl_moe {

class DlHandle {
 public:
  DlHandle() = default;
  explicit DlHandle(void* handle) : handle_(handle) {}
  DlHandle(const DlHandle&) = delete;
  DlHandle& operator=(const DlHandle&) = delete;
  DlHandle(DlHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  DlHandle& operator=(DlHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~DlHandle() { reset(); }

  // dlopen(path, RTLD_NOW | RTLD_LOCAL); on failure an empty handle and dlerror() in *error.
  static DlHandle open(const std::string& path, std::string* error) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr && error != nullptr) {
      const char* text = dlerror();
      *error = text != nullptr ? text : "dlopen failed";
    }
    return DlHandle(handle);
  }

  void* get() const { return handle_; }
  explicit operator bool() const { return handle_ != nullptr; }
  void* symbol(const char* name) const { return handle_ ? dlsym(handle_, name) : nullptr; }

  void reset() {
    if (handle_ != nullptr) dlclose(handle_);
    handle_ = nullptr;
  }

 private:
  void* handle_ = nullptr;
};

}  // namespace nccl_moe
