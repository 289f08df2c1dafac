// The library on GPUs: every rank drives ncclMoeLayoutCreate, ncclMoeDispatch and ncclMoeCombine on
// its device buffers (tools/harness/device_layer), the identity expert runs on the host on what
// dispatch delivered, and every output is compared with the CPU reference of the whole group.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/common/loaded_nccl.h"
#include "tools/demo/report.h"
#include "tools/demo/runs.h"
#include "tools/harness/device_layer.h"
#include "tools/harness/group_timing.h"

namespace nccl_moe::demo {
namespace {

using harness::checkCuda;
using harness::checkMoe;
using harness::checkNccl;

// A rank's first wrong value, on stderr (rank 0 prints the totals).
void reportMismatch(int rank, const char* step, const harness::Mismatch& m) {
  if (m.ok()) return;
  std::fprintf(stderr, "nccl-moe-demo: rank %d: %s: %lld of %lld values differ from the CPU reference; first %s\n",
               rank, step, (long long)m.wrong, (long long)m.compared, m.first.c_str());
}

}  // namespace

std::string whyNoGpu() {
  int devices = 0;
  const cudaError_t result = cudaGetDeviceCount(&devices);
  if (result != cudaSuccess)
    return std::string("no GPU (cudaGetDeviceCount: ") + cudaGetErrorString(result) +
           "): the CPU reference alone runs; the library's GPU path is not exercised";
  if (devices == 0) return "no GPU (cudaGetDeviceCount found none): the CPU reference alone runs; the library's GPU "
                           "path is not exercised";
  return "";
}

int runOnGpus(const DemoOptions& o, const RankLayout& layout) {
  const int R = layout.size, me = layout.rank;
  harness::GroupInputs in = makeInputs(o, R);
  if (Status s = checkGroupShape(in.shape); !s.isOk()) {
    std::fprintf(stderr, "nccl-moe-demo: %s\n", s.message().c_str());
    return 2;
  }
  const RankBootstrap setup = bootstrapRank(layout);  // this rank's GPU and the job's unique id
  ncclComm_t nccl = nullptr;
  checkNccl(ncclCommInitRank(&nccl, R, setup.uniqueId, me), "ncclCommInitRank");
  cudaStream_t stream = nullptr;
  checkCuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  ncclMoeConfig_t config = NCCL_MOE_CONFIG_INITIALIZER;
  config.numExperts = o.experts;
  config.hiddenSize = o.hidden;
  config.maxTokensPerRank = std::max(o.tokens, 1);
  config.maxTopk = o.topk;
  config.dataType = ncclBfloat16;
  config.fp8Dispatch = o.fp8;
  ncclMoeComm_t comm = nullptr;
  checkMoe(ncclMoeCommCreate(nccl, &config, &comm), "ncclMoeCommCreate", nullptr);
  ncclMoeCommInfo_t info = NCCL_MOE_COMM_INFO_INITIALIZER;
  checkMoe(ncclMoeCommGetInfo(comm, &info), "ncclMoeCommGetInfo", comm);
  cudaDeviceProp prop;
  checkCuda(cudaGetDeviceProperties(&prop, setup.device), "cudaGetDeviceProperties");

  const LayoutOptions layoutOptions{o.expertMajor() ? OutputLayout::kExpertMajor : OutputLayout::kPerRank, o.pad, -1};
  harness::ReferenceLayer reference;
  // The combine order follows the communicator's NVLink domains (reference.h, CombineOrder).
  const harness::LayerSettings settings{layoutOptions, Fp8Options{o.fp8, false}, CombineOrder{info.ranksPerDomain}};
  if (Status s = harness::runReferenceLayer(in, settings, &reference); !s.isOk())
    throw std::runtime_error("the CPU reference: " + s.message());
  if (me == 0) {
    std::printf("# nccl-moe-demo %s: EP group of %d rank%s (%s), %d experts (%d per rank), top-%d, %d tokens per "
                "rank, hidden %d, bf16%s, %s layout%s, seed %llu\n",
                tools::versionWithLoadedNccl().c_str(), R, R == 1 ? "" : "s", launcherName(layout.launcher),
                o.experts, in.shape.localExperts(), o.topk, o.tokens, o.hidden, o.fp8 ? " with FP8 E4M3 dispatch" : "",
                o.expertMajor() ? "expert-major" : "per-rank", o.pad > 1 ? (", pad " + std::to_string(o.pad)).c_str() : "",
                (unsigned long long)o.seed);
    std::printf("# on the GPU (%s): ncclMoeLayoutCreate, ncclMoeDispatch and ncclMoeCombine of the library, every "
                "rank's outputs compared with the CPU reference; %d NVLink domain%s of %d rank%s\n",
                prop.name, info.domains, info.domains == 1 ? "" : "s", info.ranksPerDomain,
                info.ranksPerDomain == 1 ? "" : "s");
    std::printf("%s", rankTable(o, reference.layout).c_str());
    std::fflush(stdout);
  }

  // One layer, checked.
  harness::LayerShape shape;
  shape.hidden = o.hidden;
  shape.topk = o.topk;
  shape.localExperts = in.shape.localExperts();
  shape.rowType = ElementType::kBf16;
  shape.fp8 = o.fp8;
  shape.layout = layoutOptions;
  shape.routingOutputs = true;
  auto device = std::make_unique<harness::DeviceLayer>(comm, stream, shape);
  harness::DeviceLayer& layer = *device;
  layer.setInputs(in.routings[me], in.x[me]);
  layer.createLayout();
  const harness::Mismatch counts =
      harness::compareCounts(layer.rows(), layer.tokensPerExpert(), reference.layout.recv[me]);
  layer.dispatch();
  const harness::DispatchResult got = layer.downloadDispatch();
  const harness::Mismatch dispatched = harness::compareDispatch(got, reference.dispatched[me]);
  // The expert, on the host, on what this rank's dispatch delivered.
  layer.setExpertOutput(
      harness::identityExpert(got.x, got.scales, got.probs, harness::probsPerRow(reference.layout), ElementType::kBf16));
  layer.combine();
  const HostRows out = layer.downloadCombined();
  const harness::Mismatch combined = harness::compareRows("combine output", out, reference.combined[me]);
  InputCheck inputCheck = checkAgainstInput(o, in.routings[me], in.x[me], out);
  reportMismatch(me, "layout counts", counts);
  reportMismatch(me, "dispatch", dispatched);
  reportMismatch(me, "combine", combined);

  // The same calls, timed.
  std::vector<StepResult> steps;
  {
    harness::GroupReduce group(nccl, stream);
    harness::GroupTimer timer(group, stream);
    const double layoutUs = timer.time(1, o.iters, [&] { layer.createLayout(); });
    const double dispatchUs = timer.time(1, o.iters, [&] { layer.dispatch(); });
    const double combineUs = timer.time(1, o.iters, [&] { layer.combine(); });
    const LayoutTraffic traffic = summarizeTraffic(reference.layout);
    const double payloadRows = static_cast<double>(traffic.rowsReceived - traffic.paddingRows) / R;
    const double dispatchRowBytes = o.fp8 ? o.hidden + fp8BlockCount(o.hidden) * 4.0 : o.hidden * 2.0;
    const auto gbPerSecond = [](double bytes, double us) { return us > 0 ? bytes / us / 1e3 : 0.0; };
    steps.push_back({"layout", layoutUs, std::nullopt, group.sum(counts.compared), group.sum(counts.wrong)});
    steps.push_back({"dispatch", dispatchUs, gbPerSecond(payloadRows * dispatchRowBytes, dispatchUs),
                     group.sum(dispatched.compared), group.sum(dispatched.wrong)});
    steps.push_back({"combine", combineUs, gbPerSecond(payloadRows * o.hidden * 2.0, combineUs),
                     group.sum(combined.compared), group.sum(combined.wrong)});
    inputCheck.checked = group.sum(inputCheck.checked);
    inputCheck.bad = group.sum(inputCheck.bad);
    inputCheck.worst = group.max(inputCheck.worst);
  }
  device.reset();  // the handle, before its communicator
  int64_t wrong = 0;
  for (const StepResult& step : steps) wrong += step.wrong;
  if (me == 0) {
    std::printf("#\n# GPU, %d rank%s: time is the slowest rank's mean of %d calls\n%s", R, R == 1 ? "" : "s", o.iters,
                gpuTable(steps).c_str());
    std::printf("# GPU outputs against the CPU reference, bit for bit: %lld values differ: %s\n", (long long)wrong,
                wrong == 0 ? "PASSED" : "FAILED");
    std::printf("%s", inputCheckLine(inputCheck).c_str());
    std::fflush(stdout);
  }
  checkMoe(ncclMoeCommDestroy(comm), "ncclMoeCommDestroy", nullptr);
  checkNccl(ncclCommDestroy(nccl), "ncclCommDestroy");
  cudaStreamDestroy(stream);
  return wrong == 0 && inputCheck.bad == 0 ? 0 : 1;
}

}  // namespace nccl_moe::demo
