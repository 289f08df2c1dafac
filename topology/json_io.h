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

// Text forms; parse errors carry the line and column of the text.
Json parseJsonText(const std::string& text, const std::string& source);
std::string toJsonText(const Cluster& cluster);
Cluster parseClusterJson(const std::string& text, const std::string& source);

}  // namespace nccl_moe::topo
