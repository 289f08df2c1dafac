// libnccl_moe.so beside an NCCL older than it supports (old_nccl_stub.cc, loaded as
// libnccl.so.2 before it): the library still loads with RTLD_NOW, as Python's ctypes and NCCL's
// plugin loader open it, because the newer NCCL functions are weak references
// (src/misc/nccl_symbols.h); ncclMoeCommCreate then refuses with the versions named. Nothing here
// links NCCL or nccl-moe: both are dlopen()ed, the stub first.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "nccl_moe.h"

namespace {

using CommCreate = ncclResult_t (*)(ncclComm_t, const ncclMoeConfig_t*, ncclMoeComm_t*);
using LastError = const char* (*)(ncclMoeComm_t);

class OldNccl : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("OLD_NCCL_STUB_VERSION", "21706", 1);
    stub_ = dlopen(OLD_NCCL_STUB_PATH, RTLD_NOW | RTLD_GLOBAL);
    if (stub_ != nullptr) library_ = dlopen(NCCL_MOE_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) loadError_ = dlerror();
  }
  static void* stub_;
  static void* library_;
  static std::string loadError_;
};
void* OldNccl::stub_ = nullptr;
void* OldNccl::library_ = nullptr;
std::string OldNccl::loadError_;

TEST_F(OldNccl, LibraryLoadsWithEveryReferenceBound) {
  ASSERT_NE(stub_, nullptr) << OLD_NCCL_STUB_PATH;
  ASSERT_NE(library_, nullptr) << loadError_;
  // The NCCL the library got is the stub (it was loaded first under the same soname).
  using GetVersion = ncclResult_t (*)(int*);
  auto stubVersion = reinterpret_cast<GetVersion>(dlsym(stub_, "ncclGetVersion"));
  ASSERT_NE(stubVersion, nullptr);
  int version = 0;
  EXPECT_EQ(stubVersion(&version), ncclSuccess);
  EXPECT_EQ(version, 21706);
}

TEST_F(OldNccl, CommCreateNamesBothVersions) {
  ASSERT_NE(library_, nullptr) << loadError_;
  auto create = reinterpret_cast<CommCreate>(dlsym(library_, "ncclMoeCommCreate"));
  auto lastError = reinterpret_cast<LastError>(dlsym(library_, "ncclMoeGetLastError"));
  ASSERT_TRUE(create != nullptr && lastError != nullptr);
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  ncclMoeComm_t moe = reinterpret_cast<ncclMoeComm_t>(0x1);
  // The version check comes before any NCCL call: the communicator is never looked at.
  const ncclComm_t fakeComm = reinterpret_cast<ncclComm_t>(0x1);
  EXPECT_EQ(create(fakeComm, &config, &moe), ncclInvalidUsage);
  EXPECT_EQ(moe, nullptr);
  const std::string message = lastError(nullptr);
  EXPECT_NE(message.find("ncclMoeCommCreate"), std::string::npos) << message;
  EXPECT_NE(message.find("loaded in this process is 2.17.6; nccl-moe needs NCCL 2.18 or newer"), std::string::npos)
      << message;
  EXPECT_NE(message.find("built against nccl.h " NCCL_HEADER_VERSION), std::string::npos) << message;
}

}  // namespace
