// nccl-moe-perf --json FILE: the run and every row of the table as one JSON document, written with
// nlohmann/json. Field names are kept from the earlier hand-written writer (RESULTS.md's runs and
// /work/shared/peers/deepep/compare.py read them: rows[].tokens, rows_per_rank, dispatch_us,
// combine_us, copy_us, host_us, dispatch_bytes, combine_bytes, phases_us, and sms, device).
// Host code only.
#pragma once

#include <string>
#include <vector>

#include "tools/common/output_file.h"
#include "tools/perf/table.h"

namespace nccl_moe::perf {

// The document, indented, ending with a newline.
std::string perfJsonText(const RunDescription& run, const std::vector<Measurement>& rows);

// Writes `text` and closes the file: throws std::runtime_error naming the path when a write fails
// (OutputFile::close).
void writeJson(tools::OutputFile& file, const std::string& text);

}  // namespace nccl_moe::perf
