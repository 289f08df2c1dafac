// The cluster model as versioned JSON ("schema": "nccl-moe-cluster", "version": 1).
//
// Parsing is strict: unknown keys, wrong types and out-of-range values are errors that name the
// JSON path (e.g. "dgx.json: nodes[0].gpus[3].nvlink.links: expected an integer, got string").
// Optional fields take documented defaults and derived matrices are filled by completeDerived().
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "topology/model.h"

namespace nccl_moe::topo {

using Json = nlohmann::ordered_json;

inline constexpr const char* kClusterSchemaName = "nccl-moe-cluster";
inline constexpr int kClusterSchemaVersion = 1;

Json toJson(const Node& node);
Json toJson(const Cluster& cluster);

// `source` prefixes every message (a file name, "<stdin>", "rank 3").
Node nodeFromJson(const Json& json, const std::string& source, const std::string& path);
Cluster clusterFromJson(const Json& json, const std::string& source);

// Text forms; parse errors carry the line and column of the text. Nesting deeper than
// kMaxJsonDepth is an error: no format here needs more, and deeper values would reach code that
// recurses (nlohmann's dump and comparisons).
inline constexpr int kMaxJsonDepth = 64;
Json parseJsonText(const std::string& text, const std::string& source);
std::string toJsonText(const Cluster& cluster);
Cluster parseClusterJson(const std::string& text, const std::string& source);

// dump() that writes bytes which are not UTF-8 (XML and hwloc text, file names) as U+FFFD
// instead of throwing nlohmann's type_error 316.
std::string dumpJson(const Json& json, int indent = -1);

// For messages: a scalar as written (cut short), anything else by its type name, so that a
// message never holds a whole (possibly huge) value.
std::string describeJson(const Json& value);

// An integer in [min, max]. Unlike get<int64_t>(), an unsigned value above INT64_MAX does not
// wrap into a negative number that passes the check.
bool integerInRange(const Json& value, int64_t min, int64_t max);

}  // namespace nccl_moe::topo
