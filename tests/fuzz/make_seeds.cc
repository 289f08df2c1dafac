// Writes seed corpora into DIR/<target>/ from the library itself: presets as cluster JSON, rank
// probes and NCCL XML, traces sized to the presets, and config inputs. Generated at build time so
// that the seeds follow the formats as they change, instead of being committed.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "config_input.h"
#include "topology/assembly.h"
#include "topology/json_io.h"
#include "topology/nccl_xml.h"
#include "topology/presets.h"

namespace {

namespace fs = std::filesystem;
using namespace nccl_moe;

void write(const fs::path& path, const void* data, size_t size) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}
void write(const fs::path& path, const std::string& text) { write(path, text.data(), text.size()); }

fuzz::ConfigInput configInput(int experts, int hidden, int tokens, int ranks) {
  fuzz::ConfigInput input;
  std::memset(&input, 0, sizeof(input));
  input.config = NCCL_MOE_CONFIG_INITIALIZER;
  input.config.numExperts = experts;
  input.config.hiddenSize = hidden;
  input.config.maxTokensPerRank = tokens;
  input.layout = NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER;
  input.ranks = ranks;
  input.lo = 1;
  input.hi = 1024;
  input.fallback = 24;
  return input;
}

void writeConfig(const fs::path& path, const fuzz::ConfigInput& input, const std::string& env = "") {
  std::string bytes(reinterpret_cast<const char*>(&input), sizeof(input));
  write(path, bytes + env);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  // gb200-nvl72 is left out: a 100 KB seed would slow every run for little new structure.
  for (const char* preset : {"dgx-h100", "dgx-a100", "pcie-8gpu-2nic", "aws-p5"}) {
    const topo::Cluster one = topo::makePreset(preset, 1);
    const topo::Cluster two = topo::makePreset(preset, 2);
    write(dir / "cluster_json" / (std::string(preset) + ".json"), topo::dumpJson(topo::toJson(one)));
    write(dir / "cluster_json" / (std::string(preset) + "-rank-probe.json"),
          topo::serializeRankProbe({0, one.nodes[0].gpus.empty() ? "" : one.nodes[0].gpus[0].busId, one.nodes[0]}));
    write(dir / "nccl_xml" / (std::string(preset) + ".xml"), topo::toNcclXmlText(one));
    write(dir / "nccl_xml" / (std::string(preset) + "-x2.xml"), topo::toNcclXmlText(two));
  }
  write(dir / "cluster_json" / "pcie-8gpu-2nic-x2-pretty.json", topo::toJsonText(topo::makePreset("pcie-8gpu-2nic", 2)));

  // Traces for the fuzz target's clusters (16 or 8 ranks, 64 experts), top-4.
  std::string trace = "# rank: experts\n";
  for (int t = 0; t < 32; ++t)
    trace += std::to_string(t % 16) + ": " + std::to_string(t % 64) + " " + std::to_string((t * 7 + 1) % 64) + " " +
             std::to_string((t * 13 + 2) % 64) + " " + std::to_string((t * 29 + 3) % 64) + "\n";
  write(dir / "routing_trace" / "generated.trace", trace);

  writeConfig(dir / "config" / "minimal", configInput(64, 7168, 4096, 8));
  fuzz::ConfigInput full = configInput(256, 7168, 8192, 64);
  full.config.maxTopk = 8;
  full.config.dataType = ncclFloat32;
  full.config.fp8Dispatch = 1;
  full.config.fp8PowerOfTwoScales = 1;
  full.layout.layout = NCCL_MOE_LAYOUT_EXPERT_MAJOR;
  full.layout.padMultiple = 128;
  full.layout.rowBudget = 1 << 20;
  writeConfig(dir / "config" / "full", full);
  fuzz::ConfigInput env = configInput(8, 128, 16, 2);
  env.flags = fuzz::kSetTimeoutEnv | fuzz::kSetDispatchSmsEnv | fuzz::kSetCombineSmsEnv | fuzz::kSetFreeEnv;
  writeConfig(dir / "config" / "env", env, "5000\n0x20\n-1\n9223372036854775807");
  return 0;
}
