// The plan command's report: a speed-of-light table and the library's chosen plan for people,
// JSON for tests and scripts.
#pragma once

#include <string>

#include "plan/cost_model.h"
#include "plan/plan_choice.h"
#include "topology/json_io.h"
#include "topology/model.h"

namespace nccl_moe::topo::cli {

struct PlanContext {
  const Cluster& cluster;
  const plan::CostShape& shape;
  const plan::RoutingModel& routing;
  const plan::CostReport& report;
  const plan::ChosenPlan& chosen;  // what the library would run for this cluster and shape
  std::string dispatchType;  // "fp8", "bf16", "fp32"
  std::string combineType;
};

Json planToJson(const PlanContext& context);
std::string planToText(const PlanContext& context);

}  // namespace nccl_moe::topo::cli
