// The kernels' failure checks (transport/device_sync.cuh): blockErrorRaised gives every thread of
// every block the answer errorRaised gives one thread, for a failure in the device record, in the
// host-mapped record (the network watchdog's), or none; and twice in one kernel.
#include <gtest/gtest.h>

#include <vector>

#include "../support/gpu.h"
#include "misc/cuda_memory.h"
#include "transport/device_sync.cuh"

namespace nccl_moe::test {
namespace {

// answers[2 * thread + i]: call i's answer (1 raised, 0 not); the host record is set between the
// two calls by thread 0 of block 0 only after every block made its first call (a grid-wide count).
__global__ void askTwice(DomainView view, int setHostBetween, int* arrived, int* answers) {
  const int thread = blockIdx.x * blockDim.x + threadIdx.x;
  answers[2 * thread] = blockErrorRaised(view) ? 1 : 0;
  if (setHostBetween) {
    __syncthreads();
    if (threadIdx.x == 0) {
      atomicAdd(arrived, 1);
      if (blockIdx.x == 0) {
        while (atomicAdd(arrived, 0) < static_cast<int>(gridDim.x)) {
        }
        *reinterpret_cast<volatile int32_t*>(&view.errorHost->kind) = kErrorNetworkTimeout;
        __threadfence_system();
        atomicAdd(arrived, 1);
      } else {
        while (atomicAdd(arrived, 0) <= static_cast<int>(gridDim.x)) {
        }
      }
    }
    __syncthreads();
  }
  answers[2 * thread + 1] = blockErrorRaised(view) ? 1 : 0;
}

struct Records {
  DeviceMemory<ErrorRecord> device;
  PinnedMemory<ErrorRecord> host;
  DeviceMemory<int> arrived;
  DomainView view;

  Records() {
    EXPECT_TRUE(allocateDevice(1, &device, "cudaMalloc(record)").isOk());
    EXPECT_TRUE(allocateMapped(1, &host, "cudaHostAlloc(record)").isOk());
    EXPECT_TRUE(allocateDevice(1, &arrived, "cudaMalloc(arrived)").isOk());
    *host.get() = ErrorRecord{};
    EXPECT_EQ(cudaMemset(device.get(), 0, sizeof(ErrorRecord)), cudaSuccess);
    EXPECT_EQ(cudaMemset(arrived.get(), 0, sizeof(int)), cudaSuccess);
    view.error = device.get();
    EXPECT_EQ(cudaHostGetDevicePointer(reinterpret_cast<void**>(&view.errorHost), host.get(), 0), cudaSuccess);
    view.hostRecordsFailures = true;  // as with two hops (a network watchdog)
  }

  // Every thread's two answers (blocks x threads, both calls).
  std::vector<int> ask(int blocks, int threads, bool setHostBetween) {
    const size_t count = static_cast<size_t>(blocks) * threads * 2;
    DeviceMemory<int> answers;
    EXPECT_TRUE(allocateDevice(count, &answers, "cudaMalloc(answers)").isOk());
    EXPECT_EQ(cudaMemset(answers.get(), 0xFF, count * sizeof(int)), cudaSuccess);  // poisoned
    askTwice<<<blocks, threads>>>(view, setHostBetween ? 1 : 0, arrived.get(), answers.get());
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<int> out(count);
    EXPECT_EQ(cudaMemcpy(out.data(), answers.get(), count * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
};

int countOf(const std::vector<int>& answers, int call, int value) {
  int n = 0;
  for (size_t i = call; i < answers.size(); i += 2) n += answers[i] == value;
  return n;
}

constexpr int kBlocks = 8, kThreads = 512, kAll = kBlocks * kThreads;  // 8 blocks stay resident together

TEST(ErrorChecks, EveryThreadGetsTheBlocksAnswer) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  Records records;
  std::vector<int> answers = records.ask(kBlocks, kThreads, false);
  EXPECT_EQ(countOf(answers, 0, 0), kAll);
  EXPECT_EQ(countOf(answers, 1, 0), kAll);

  const int32_t kind = kErrorTimeout;  // a kernel's failure: the device record
  ASSERT_EQ(cudaMemcpy(&records.device.get()->kind, &kind, sizeof(kind), cudaMemcpyHostToDevice), cudaSuccess);
  answers = records.ask(kBlocks, kThreads, false);
  EXPECT_EQ(countOf(answers, 0, 1), kAll);
  EXPECT_EQ(countOf(answers, 1, 1), kAll);
}

TEST(ErrorChecks, TheWatchdogsHostRecordReachesEveryThreadAndALaterCallSeesIt) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  Records records;
  // Set on the device between the two calls: the first sees nothing, the second the failure.
  std::vector<int> answers = records.ask(kBlocks, kThreads, true);
  EXPECT_EQ(countOf(answers, 0, 0), kAll);
  EXPECT_EQ(countOf(answers, 1, 1), kAll);
  EXPECT_EQ(records.host.get()->kind, kErrorNetworkTimeout);
  // Set by the host before the launch (what the watchdog does).
  ASSERT_EQ(cudaMemset(records.arrived.get(), 0, sizeof(int)), cudaSuccess);
  answers = records.ask(kBlocks, kThreads, false);
  EXPECT_EQ(countOf(answers, 0, 1), kAll);
  EXPECT_EQ(countOf(answers, 1, 1), kAll);
}

// One domain: no watchdog writes the host record, so kernels do not read it (a PCIe read each).
TEST(ErrorChecks, OneDomainKernelsLeaveTheHostRecordUnread) {
  NCCL_MOE_SKIP_WITHOUT_GPU();
  Records records;
  records.view.hostRecordsFailures = false;
  std::vector<int> answers = records.ask(kBlocks, kThreads, true);
  EXPECT_EQ(countOf(answers, 0, 0), kAll);
  EXPECT_EQ(countOf(answers, 1, 0), kAll) << "the host record was read";
}

}  // namespace
}  // namespace nccl_moe::test
