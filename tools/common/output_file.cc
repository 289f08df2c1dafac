#include "tools/common/output_file.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "tools/common/flags.h"

namespace nccl_moe::tools {
namespace {

UsageError cannotOpen(const std::string& flag, const std::string& path, int error) {
  return UsageError(flag + ": cannot write '" + path + "': " + std::strerror(error));
}

}  // namespace

OutputFile OutputFile::create(const std::string& flag, const std::string& path) {
  OutputFile out;
  out.file_.reset(std::fopen(path.c_str(), "w"));
  if (!out.file_) throw cannotOpen(flag, path, errno);
  out.path_ = path;
  return out;
}

void OutputFile::close() {
  if (!file_) return;
  FILE* file = file_.release();
  errno = 0;
  const bool flushed = std::fflush(file) == 0 && std::ferror(file) == 0;
  const int flushError = errno;
  errno = 0;
  const bool closed = std::fclose(file) == 0;
  const int closeError = errno;
  if (flushed && closed) return;
  // A write that failed earlier may have left no errno behind: EIO then.
  const int error = flushError != 0 ? flushError : closeError != 0 ? closeError : EIO;
  throw std::runtime_error("cannot write '" + path_ + "': " + std::strerror(error));
}

void checkWritable(const std::string& flag, const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) throw cannotOpen(flag, path, errno);
  std::fclose(file);
}

}  // namespace nccl_moe::tools
