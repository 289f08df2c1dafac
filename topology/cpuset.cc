#include "topology/cpuset.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "topology/error.h"

namespace nccl_moe::topo {

namespace {

constexpr int kMaxCpu = 1 << 16;

int parseCpuNumber(const std::string& text, const std::string& list) {
  if (text.empty() || text.size() > 6 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(c) != 0; })) {
    fail("CPU list '", excerpt(list), "': '", excerpt(text), "' is not a CPU number");
  }
  int cpu = std::stoi(text);
  if (cpu >= kMaxCpu) fail("CPU list '", excerpt(list), "': CPU ", cpu, " is beyond ", kMaxCpu - 1);
  return cpu;
}

// Sorted, overlapping and adjacent ranges merged: a list of many copies of "0-65535" stays a
// few ranges instead of billions of CPUs.
std::vector<std::pair<int, int>> mergedRanges(std::vector<std::pair<int, int>> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<int, int>> merged;
  for (const auto& range : ranges) {
    if (!merged.empty() && range.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, range.second);
    } else {
      merged.push_back(range);
    }
  }
  return merged;
}

}  // namespace

std::vector<int> parseCpuList(const std::string& list) {
  std::vector<std::pair<int, int>> ranges;
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    size_t dash = item.find('-');
    int first = parseCpuNumber(item.substr(0, dash), list);
    int last = dash == std::string::npos ? first : parseCpuNumber(item.substr(dash + 1), list);
    if (last < first) fail("CPU list '", excerpt(list), "': range '", excerpt(item), "' runs backwards");
    ranges.emplace_back(first, last);
    start = end + 1;
    if (end + 1 == list.size()) fail("CPU list '", excerpt(list), "': ends with a comma");
  }
  std::vector<int> cpus;
  for (const auto& [first, last] : mergedRanges(std::move(ranges))) {
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

std::string formatCpuList(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  std::string text;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!text.empty()) text += ",";
    text += std::to_string(cpus[i]);
    if (j > i) text += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return text;
}

std::string cpuListToMask(const std::string& list) {
  std::vector<int> cpus = parseCpuList(list);
  int words = cpus.empty() ? 1 : cpus.back() / 32 + 1;
  std::vector<uint32_t> bits(words, 0);
  for (int cpu : cpus) bits[cpu / 32] |= 1u << (cpu % 32);
  std::string mask;
  for (int w = words - 1; w >= 0; --w) {
    char word[16];
    std::snprintf(word, sizeof(word), "%08x", bits[w]);
    if (!mask.empty()) mask += ",";
    mask += word;
  }
  return mask;
}

std::string cpuMaskToList(const std::string& mask) {
  std::vector<std::string> words;
  size_t start = 0;
  while (true) {
    size_t end = mask.find(',', start);
    words.push_back(mask.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::vector<int> cpus;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[words.size() - 1 - i];  // least significant word last
    if (word.empty() || word.size() > 8 ||
        !std::all_of(word.begin(), word.end(), [](char c) { return std::isxdigit(c) != 0; })) {
      fail("CPU mask '", excerpt(mask), "': '", excerpt(word), "' is not a 32-bit hex word");
    }
    uint32_t bits = static_cast<uint32_t>(std::stoul(word, nullptr, 16));
    if (bits == 0) continue;
    // The same limit as CPU lists: the list made here must parse again.
    if (i >= static_cast<size_t>(kMaxCpu / 32)) {
      fail("CPU mask '", excerpt(mask), "': sets CPUs beyond ", kMaxCpu - 1);
    }
    for (int b = 0; b < 32; ++b) {
      if (bits & (1u << b)) cpus.push_back(static_cast<int>(i) * 32 + b);
    }
  }
  return formatCpuList(cpus);
}

}  // namespace nccl_moe::topo
