// A results file (--json FILE) opened before the run, so that a path that cannot be written is a
// usage error at the start instead of a result lost at the end; the writes are checked at close().
#pragma once

#include <cstdio>
#include <memory>
#include <string>

namespace nccl_moe::tools {

class OutputFile {
 public:
  OutputFile() = default;  // no file: the flag was not given

  // Opens `path` for writing, truncating it. Throws UsageError naming `flag`, the path and strerror.
  static OutputFile create(const std::string& flag, const std::string& path);

  explicit operator bool() const { return file_ != nullptr; }
  FILE* get() const { return file_.get(); }
  const std::string& path() const { return path_; }

  // Flushes and closes. Throws std::runtime_error naming the path and strerror when a write failed
  // (a full disk shows here: the writes before were buffered).
  void close();

 private:
  struct Closer {
    void operator()(FILE* file) const { std::fclose(file); }
  };
  std::unique_ptr<FILE, Closer> file_;
  std::string path_;
};

// Throws like OutputFile::create when `path` cannot be opened for writing, and leaves an existing
// file as it is: for the ranks that check the path but leave the writing to rank 0.
void checkWritable(const std::string& flag, const std::string& path);

}  // namespace nccl_moe::tools
