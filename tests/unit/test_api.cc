// The public C API as a user sees it: through the shared library's exported symbols.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "nccl_moe.h"

namespace {

TEST(Api, VersionAndErrorStrings) {
  int version = 0;
  ASSERT_EQ(ncclMoeGetVersion(&version), ncclSuccess);
  EXPECT_EQ(version, NCCL_MOE_VERSION_CODE);
  EXPECT_EQ(ncclMoeGetVersion(nullptr), ncclInvalidArgument);
  std::set<std::string> strings;
  for (int r = 0; r < ncclNumResults; ++r) {
    const char* text = ncclMoeGetErrorString(static_cast<ncclResult_t>(r));
    ASSERT_NE(text, nullptr);
    EXPECT_TRUE(strings.insert(text).second) << "result " << r;
  }
}

TEST(Api, CommCreateChecksItsOwnArgumentsFirst) {
  ncclMoeComm_t moe = reinterpret_cast<ncclMoeComm_t>(0x1);
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  EXPECT_EQ(ncclMoeCommCreate(nullptr, &config, &moe), ncclInvalidArgument);
  EXPECT_EQ(moe, nullptr) << "the output handle is cleared on failure";
  EXPECT_NE(std::string(ncclMoeGetLastError(nullptr)).find("comm is NULL"), std::string::npos);
  EXPECT_EQ(ncclMoeCommCreate(nullptr, &config, nullptr), ncclInvalidArgument);
  // An invalid configuration is no longer refused before the NCCL communicator is used: every
  // rank first exchanges its verdict, so that all ranks fail together instead of the others
  // waiting for the one that gave up (the virtual-cluster case r4_bad_config_on_one_rank). The
  // configuration checks themselves are unit-tested through resolveConfig (test_checks.cc).
}

TEST(Api, CallsOnUnknownObjectsFailWithoutDereferencing) {
  // Pointers that were never returned by the library are recognised as such.
  auto* bogusComm = reinterpret_cast<ncclMoeComm_t>(0x10);
  auto* bogusHandle = reinterpret_cast<ncclMoeHandle_t>(0x20);
  ncclMoeRouting_t routing = NCCL_MOE_ROUTING_INITIALIZER;
  ncclMoeLayoutOptions_t options = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  ncclMoeDispatchArgs_t dargs = NCCL_MOE_DISPATCH_ARGS_INITIALIZER;
  ncclMoeCombineArgs_t cargs = NCCL_MOE_COMBINE_ARGS_INITIALIZER;
  ncclMoeHandle_t handle = bogusHandle;
  int64_t rows = 0;
  EXPECT_EQ(ncclMoeLayoutCreate(bogusComm, &routing, &options, &handle, nullptr), ncclInvalidArgument);
  EXPECT_EQ(handle, nullptr);
  EXPECT_NE(std::string(ncclMoeGetLastError(bogusComm)).find("not a live ncclMoeComm_t"), std::string::npos);
  EXPECT_EQ(ncclMoeDispatch(bogusComm, bogusHandle, &dargs, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeCombine(nullptr, bogusHandle, &cargs, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeHandleGetCounts(bogusHandle, &rows, nullptr, nullptr), ncclInvalidArgument);
  EXPECT_NE(std::string(ncclMoeGetLastError(nullptr)).find("not a live ncclMoeHandle_t"), std::string::npos);
  EXPECT_EQ(ncclMoeHandleDestroy(bogusHandle), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeCommDestroy(bogusComm), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeHandleDestroy(nullptr), ncclInvalidArgument);
  ncclMoePhaseTimes_t times = NCCL_MOE_PHASE_TIMES_INITIALIZER;
  EXPECT_EQ(ncclMoeCommSetPhaseTiming(bogusComm, 1), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeCommGetPhaseTimes(bogusComm, &times), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeCommGetPhaseTimes(nullptr, &times), ncclInvalidArgument);
  ncclMoeInputBuffers_t areas = NCCL_MOE_INPUT_BUFFERS_INITIALIZER;
  EXPECT_EQ(ncclMoeCommGetInputBuffers(bogusComm, &areas), ncclInvalidArgument);
  EXPECT_EQ(areas.dispatchX, nullptr);
  EXPECT_EQ(ncclMoeCommResize(bogusComm, 64), ncclInvalidArgument);
  EXPECT_NE(std::string(ncclMoeGetLastError(nullptr)).find("not a live ncclMoeComm_t"), std::string::npos);
  EXPECT_EQ(ncclMoeCommResize(nullptr, 64), ncclInvalidArgument);
}

TEST(Api, LowLatencyCallsOnUnknownCommunicatorsFailWithoutEnqueueing) {
  auto* bogusComm = reinterpret_cast<ncclMoeComm_t>(0x10);
  ncclMoeLowLatencyDispatchArgs_t dispatch = NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER;
  ncclMoeLowLatencyCombineArgs_t combine = NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER;
  EXPECT_EQ(ncclMoeLowLatencyDispatch(bogusComm, &dispatch, nullptr), ncclInvalidArgument);
  EXPECT_NE(std::string(ncclMoeGetLastError(nullptr)).find("ncclMoeLowLatencyDispatch"), std::string::npos);
  EXPECT_EQ(ncclMoeLowLatencyDispatchSend(nullptr, &dispatch, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeLowLatencyDispatchRecv(bogusComm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeLowLatencyCombine(bogusComm, &combine, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeLowLatencyCombineSend(bogusComm, &combine, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclMoeLowLatencyCombineRecv(nullptr, nullptr), ncclInvalidArgument);
  EXPECT_NE(std::string(ncclMoeGetLastError(nullptr)).find("comm is NULL"), std::string::npos);
}

TEST(Api, LowLatencyStructsAndTheirInitializers) {
  const ncclMoeLowLatencyDispatchArgs_t dispatch = NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER;
  EXPECT_EQ(dispatch.size, sizeof(dispatch));
  EXPECT_EQ(dispatch.magic, NCCL_MOE_MAGIC);
  EXPECT_EQ(dispatch.version, NCCL_MOE_STRUCT_VERSION);
  EXPECT_EQ(dispatch.numTokens, 0);
  EXPECT_EQ(dispatch.recvSrcInfo, nullptr);
  const ncclMoeLowLatencyCombineArgs_t combine = NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER;
  EXPECT_EQ(combine.size, sizeof(combine));
  EXPECT_EQ(combine.weights, nullptr);
  EXPECT_EQ(combine.out, nullptr);
  const ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  EXPECT_EQ(config.lowLatencyMaxTokens, NCCL_MOE_UNDEF_INT);
  EXPECT_EQ(config.lowLatencyFp8, NCCL_MOE_UNDEF_INT);
  const ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  EXPECT_EQ(info.size, sizeof(info));
  EXPECT_EQ(info.lowLatencyBufferBytes, 0u);
}

TEST(Api, EveryPhaseHasItsOwnName) {
  std::set<std::string> names;
  for (int p = 0; p < ncclMoeNumPhases; ++p) {
    const char* name = ncclMoePhaseName(static_cast<ncclMoePhase_t>(p));
    ASSERT_NE(name, nullptr) << "phase " << p;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(ncclMoePhaseName(ncclMoeNumPhases), nullptr);
  EXPECT_EQ(ncclMoePhaseName(static_cast<ncclMoePhase_t>(-1)), nullptr);
  const ncclMoePhaseTimes_t times = NCCL_MOE_PHASE_TIMES_INITIALIZER;
  EXPECT_EQ(times.size, sizeof(ncclMoePhaseTimes_t));
  EXPECT_EQ(times.magic, NCCL_MOE_MAGIC);
}

class Library {
 public:
  Library() : handle_(dlopen(NCCL_MOE_LIBRARY_PATH, RTLD_NOW | RTLD_LOCAL)) {}
  ~Library() {
    if (handle_) dlclose(handle_);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  void* get() const { return handle_; }

 private:
  void* handle_;
};

TEST(Api, SharedLibraryExportsOnlyThePublicApi) {
  Library library;
  ASSERT_NE(library.get(), nullptr) << dlerror();
  for (const char* symbol :
       {"ncclMoeGetVersion", "ncclMoeGetErrorString", "ncclMoeGetLastError", "ncclMoeCommCreate",
        "ncclMoeCommDestroy", "ncclMoeCommGetAsyncError", "ncclMoeLayoutCreate", "ncclMoeHandleGetCounts",
        "ncclMoeHandleGetDeviceCounts", "ncclMoeHandleDestroy", "ncclMoeDispatch", "ncclMoeCombine",
        "ncclMoeCommSetPhaseTiming", "ncclMoeCommGetPhaseTimes", "ncclMoePhaseName",
        "ncclMoeCommGetInputBuffers", "ncclMoeCommGetInfo", "ncclMoeCommResize", "ncclMoeLowLatencyDispatch",
        "ncclMoeLowLatencyDispatchSend", "ncclMoeLowLatencyDispatchRecv", "ncclMoeLowLatencyCombine",
        "ncclMoeLowLatencyCombineSend", "ncclMoeLowLatencyCombineRecv"})
    EXPECT_NE(dlsym(library.get(), symbol), nullptr) << symbol << " is not exported";
  // Internals stay hidden (C++ symbols of the reference and the kernels' launchers).
  EXPECT_EQ(dlsym(library.get(), "_ZN8nccl_moe18buildGroupLayoutERKNS_10GroupShapeERKSt6vectorINS_11RankRoutingESaIS4_EERKNS_13LayoutOptionsEPNS_11GroupLayoutE"), nullptr);
  auto getVersion = reinterpret_cast<ncclResult_t (*)(int*)>(dlsym(library.get(), "ncclMoeGetVersion"));
  int version = 0;
  ASSERT_EQ(getVersion(&version), ncclSuccess);
  EXPECT_EQ(version, NCCL_MOE_VERSION_CODE);
}

}  // namespace
