#include "reference/hybrid_plan.h"

#include <algorithm>

#include "misc/numerics.h"

namespace nccl_moe {

namespace {

// Token t's deliveries, ascending destination rank: its kept rows (layout.sentTo, already in
// rank-then-row order) joined with its selections of each rank's experts.
std::vector<Delivery> tokenDeliveries(const GroupLayout& layout, const RankRouting& routing, int s, int t) {
  const GroupShape& shape = layout.shape;
  const int L = shape.localExperts();
  std::vector<Delivery> deliveries;
  for (const RowRef& ref : layout.sentTo[s][t]) {
    if (deliveries.empty() || deliveries.back().dstRank != ref.dstRank) {
      deliveries.emplace_back();
      deliveries.back().dstRank = ref.dstRank;
    }
    deliveries.back().rows.push_back(ref.row);
  }
  forEachSelection(routing, shape.experts, t, [&](const Selection& sel) {
    const int d = shape.ownerOf(sel.expert);
    auto it = std::find_if(deliveries.begin(), deliveries.end(),
                           [d](const Delivery& delivery) { return delivery.dstRank == d; });
    if (it != deliveries.end()) it->selections.push_back({sel.expert - d * L, sel.slot, sel.prob});
  });
  return deliveries;
}

// Splits a token's deliveries into one route per destination domain.
void addRoutes(const DomainGrid& grid, int s, int t, std::vector<Delivery> deliveries,
               RankHybridSchedule* source, std::vector<std::vector<TokenRoute>>* networkByDomain) {
  const int home = grid.domainOf(s);
  size_t i = 0;
  while (i < deliveries.size()) {
    TokenRoute route;
    route.srcRank = s;
    route.srcToken = t;
    route.domain = grid.domainOf(deliveries[i].dstRank);
    route.collector = route.domain == home ? s : grid.railPeer(s, route.domain);
    for (; i < deliveries.size() && grid.domainOf(deliveries[i].dstRank) == route.domain; ++i)
      route.deliveries.push_back(std::move(deliveries[i]));
    if (route.domain == home)
      source->directRoutes.push_back(std::move(route));
    else
      (*networkByDomain)[route.domain].push_back(std::move(route));
  }
}

// Inbox rows: each collector numbers the deliveries of the routes it sums, its own direct routes
// first, then the routes it relays in arrival order.
void assignInboxSlots(HybridPlan* plan) {
  for (RankHybridSchedule& rank : plan->ranks) {
    for (TokenRoute& route : rank.directRoutes) {
      route.inboxSlot = rank.inboxRows;
      rank.inboxRows += static_cast<int64_t>(route.deliveries.size());
    }
    for (const RouteRef& ref : rank.forwards) {
      TokenRoute& route = plan->ranks[ref.srcRank].networkSends[ref.index];
      route.inboxSlot = rank.inboxRows;
      rank.inboxRows += static_cast<int64_t>(route.deliveries.size());
    }
  }
}

void listPartialSends(HybridPlan* plan) {
  const int R = plan->grid.ranks;
  for (bool network : {false, true}) {
    for (int s = 0; s < R; ++s) {
      const RankHybridSchedule& source = plan->ranks[s];
      const std::vector<TokenRoute>& routes = network ? source.networkSends : source.directRoutes;
      for (size_t i = 0; i < routes.size(); ++i)
        for (size_t j = 0; j < routes[i].deliveries.size(); ++j)
          plan->ranks[routes[i].deliveries[j].dstRank].partialSends.push_back(
              {s, network, static_cast<int32_t>(i), static_cast<int32_t>(j)});
    }
  }
}

int64_t rowCount(const Delivery& delivery) { return static_cast<int64_t>(delivery.rows.size()); }

}  // namespace

Status buildHybridPlan(const GroupShape& shape, int ranksPerDomain,
                       const std::vector<RankRouting>& routings, const LayoutOptions& options,
                       HybridPlan* plan) {
  HybridPlan result;
  if (Status s = buildGroupLayout(shape, routings, options, &result.layout); !s.isOk()) return s;
  if (ranksPerDomain < 1 || shape.ranks % ranksPerDomain != 0)
    return Status::invalidArgument(format("%d ranks do not split into NVLink domains of %d ranks",
                                          shape.ranks, ranksPerDomain));
  result.grid = {shape.ranks, ranksPerDomain};
  result.ranks.resize(shape.ranks);
  const DomainGrid& grid = result.grid;
  for (int s = 0; s < shape.ranks; ++s) {
    std::vector<std::vector<TokenRoute>> networkByDomain(grid.domains());
    for (int t = 0; t < routings[s].numTokens; ++t)
      addRoutes(grid, s, t, tokenDeliveries(result.layout, routings[s], s, t), &result.ranks[s],
                &networkByDomain);
    for (std::vector<TokenRoute>& routes : networkByDomain)
      for (TokenRoute& route : routes) result.ranks[s].networkSends.push_back(std::move(route));
  }
  // Relays learn their work in the order the channels deliver it: by source rank, then token.
  for (int s = 0; s < shape.ranks; ++s) {
    const std::vector<TokenRoute>& sends = result.ranks[s].networkSends;
    for (size_t i = 0; i < sends.size(); ++i)
      result.ranks[sends[i].collector].forwards.push_back({s, static_cast<int32_t>(i)});
  }
  assignInboxSlots(&result);
  listPartialSends(&result);
  *plan = std::move(result);
  return Status::ok();
}

int64_t hybridDispatchRowBytes(int hidden, ElementType rowType, bool fp8) {
  if (fp8) return hidden + static_cast<int64_t>(sizeof(float)) * fp8BlockCount(hidden);
  return static_cast<int64_t>(hidden) * elementBytes(rowType);
}

int64_t hybridCombineRowBytes(int hidden, ElementType rowType) {
  return static_cast<int64_t>(hidden) * elementBytes(rowType);
}

HybridTraffic predictTraffic(const HybridPlan& plan, int64_t dispatchRowBytes, int64_t combineRowBytes) {
  HybridTraffic traffic;
  const int R = plan.grid.ranks;
  traffic.networkRowsSent.assign(R, 0);
  traffic.networkRowsReceived.assign(R, 0);
  int64_t forwardedPartials = 0;
  for (int s = 0; s < R; ++s) {
    const RankHybridSchedule& rank = plan.ranks[s];
    for (const TokenRoute& route : rank.networkSends) {
      ++traffic.networkRowsSent[s];
      ++traffic.networkRowsReceived[route.collector];
    }
    // Every row copy to another rank's memory is NVLink traffic (expert-major: one per row);
    // combine returns one partial per delivery to the collector.
    for (const std::vector<TokenRoute>* routes : {&rank.directRoutes, &rank.networkSends})
      for (const TokenRoute& route : *routes)
        for (const Delivery& delivery : route.deliveries) {
          if (delivery.dstRank == route.collector) continue;
          traffic.dispatch.nvlinkRows += rowCount(delivery);
          ++forwardedPartials;
        }
    traffic.dispatch.networkRows += static_cast<int64_t>(rank.networkSends.size());
  }
  traffic.combine.networkRows = traffic.dispatch.networkRows;
  traffic.combine.nvlinkRows = forwardedPartials;
  traffic.dispatch.networkBytes = traffic.dispatch.networkRows * dispatchRowBytes;
  traffic.dispatch.nvlinkBytes = traffic.dispatch.nvlinkRows * dispatchRowBytes;
  traffic.combine.networkBytes = traffic.combine.networkRows * combineRowBytes;
  traffic.combine.nvlinkBytes = traffic.combine.nvlinkRows * combineRowBytes;
  return traffic;
}

}  // namespace nccl_moe
