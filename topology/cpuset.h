// CPU sets in the two spellings the formats use: Linux CPU lists ("0-55,112-167", as in
// nvidia-smi's "CPU Affinity" column and our JSON) and sysfs cpumap masks ("ffffffff,00000000",
// 32-bit hex words, most significant first, as in NCCL's topology XML).
#pragma once

#include <string>
#include <vector>

namespace nccl_moe::topo {

// Throws topo::Error on malformed text; the empty list is the empty set.
std::vector<int> parseCpuList(const std::string& list);
std::string formatCpuList(std::vector<int> cpus);

std::string cpuListToMask(const std::string& list);
std::string cpuMaskToList(const std::string& mask);

}  // namespace nccl_moe::topo
