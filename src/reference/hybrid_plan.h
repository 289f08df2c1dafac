// HybridEP two-hop schedule for an EP group split into NVLink domains (pure data, no threads).
//
// Ranks are grouped into domains of D consecutive ranks: rank = domain * D + g, g the local index.
// Dispatch:
//   direct   a token's rows for ranks of its own domain go over NVLink straight from the source.
//   network  a token that needs ranks of another domain m crosses the network ONCE, to its rail
//            peer (m, g), carrying the destination ranks in m and, per destination, the token's
//            selections of that rank's experts (local expert id, slot, prob) and receive rows.
//   forward  the rail peer copies the row over NVLink to those ranks (itself included).
// Combine mirrors it: each destination rank sums its rows of a token (fp32, row order, rounded to
// the row type) into a rank partial and hands it to the route's collector (the source for direct
// routes, the rail peer for network routes); the collector sums the partials of one route in rank
// order (fp32, rounded) into one domain partial, which crosses the network once; the source sums
// its domain partials in domain order. That is referenceCombine's CombineOrder{D}, bit for bit.
//
// Rows a row budget drops travel nowhere: a delivery exists only for a destination that keeps at
// least one of the token's rows, and a route only with at least one delivery. Without a budget,
// network routes are exactly the (token, other domain with a selected expert) pairs.
#pragma once

#include <cstdint>
#include <vector>

#include "misc/status.h"
#include "reference/layout.h"
#include "plan/routing.h"

namespace nccl_moe {

// Domains of `ranksPerDomain` consecutive ranks.
struct DomainGrid {
  int ranks = 0;
  int ranksPerDomain = 0;

  int domains() const { return ranks / ranksPerDomain; }
  int domainOf(int rank) const { return rank / ranksPerDomain; }
  int localIndexOf(int rank) const { return rank % ranksPerDomain; }
  int rankAt(int domain, int localIndex) const { return domain * ranksPerDomain + localIndex; }
  // The same-index rank of `domain`: where `rank`'s tokens for that domain cross the network to.
  int railPeer(int rank, int domain) const { return rankAt(domain, localIndexOf(rank)); }
};

// One selection of a token, as the rank owning the expert sees it.
struct LocalSelection {
  int32_t localExpert;
  int32_t slot;  // k (top-k) or the global expert id (map): the source's routing column
  float prob;
};

// A token's arrival on one destination rank.
struct Delivery {
  int32_t dstRank = -1;
  std::vector<LocalSelection> selections;  // the token's selections of dstRank's experts, slot order
  std::vector<int64_t> rows;               // receive rows on dstRank, ascending (kept rows only)
};

// One token's rows headed into one domain: the unit that crosses the network once, and the unit
// combine reduces to one domain partial.
struct TokenRoute {
  int32_t srcRank = -1;
  int32_t srcToken = -1;
  int32_t domain = -1;              // destination domain
  int32_t collector = -1;           // who copies the row out and sums the partials: the source
                                    // (own domain) or the source's rail peer in `domain`
  int64_t inboxSlot = 0;            // combine: delivery i's rank partial lands in the collector's
                                    // inbox row inboxSlot + i
  std::vector<Delivery> deliveries;  // ascending destination rank
};

// Names a route of a source rank's networkSends.
struct RouteRef {
  int32_t srcRank;
  int32_t index;
};

// Names one delivery of a route: rank srcRank's directRoutes or networkSends[routeIndex].
struct DeliveryRef {
  int32_t srcRank;
  bool network;
  int32_t routeIndex;
  int32_t deliveryIndex;
};

struct RankHybridSchedule {
  // Dispatch, network phase: this rank's tokens for other domains, by domain, then token.
  std::vector<TokenRoute> networkSends;
  // Dispatch, NVLink phase: this rank's tokens for its own domain, by token.
  std::vector<TokenRoute> directRoutes;
  // Dispatch, NVLink phase: the network routes this rank receives and fans out, by source rank,
  // then token (the order they arrive on each network channel).
  std::vector<RouteRef> forwards;
  // Combine, first hop: every delivery to this rank (direct routes by source rank, then network
  // routes by source rank); each becomes one rank partial sent to the route's collector.
  std::vector<DeliveryRef> partialSends;
  int64_t inboxRows = 0;  // combine: rank partials this rank collects (its routes' deliveries)
};

// Rows and bytes one phase moves over each link. Row payload only: the route headers (token id,
// destinations, selections) are small and not counted. Copies a rank makes into its own output
// cross no link.
struct LinkTraffic {
  int64_t networkRows = 0;
  int64_t nvlinkRows = 0;
  int64_t networkBytes = 0;
  int64_t nvlinkBytes = 0;
};

struct HybridTraffic {
  LinkTraffic dispatch;                   // rows x dispatch row bytes (FP8: codes + scales)
  LinkTraffic combine;                    // partials x combine row bytes
  std::vector<int64_t> networkRowsSent;   // [rank] dispatch rows sent over the network
  std::vector<int64_t> networkRowsReceived;
};

struct HybridPlan {
  DomainGrid grid;
  GroupLayout layout;
  std::vector<RankHybridSchedule> ranks;

  const TokenRoute& route(const RouteRef& ref) const { return ranks[ref.srcRank].networkSends[ref.index]; }
  const TokenRoute& route(const DeliveryRef& ref) const {
    const RankHybridSchedule& owner = ranks[ref.srcRank];
    return ref.network ? owner.networkSends[ref.routeIndex] : owner.directRoutes[ref.routeIndex];
  }
  const Delivery& delivery(const DeliveryRef& ref) const { return route(ref).deliveries[ref.deliveryIndex]; }
};

// Validates like buildGroupLayout, plus 1 <= ranksPerDomain, ranks % ranksPerDomain == 0.
Status buildHybridPlan(const GroupShape& shape, int ranksPerDomain,
                       const std::vector<RankRouting>& routings, const LayoutOptions& options,
                       HybridPlan* plan);

// Bytes of one dispatched row (FP8: hidden codes + one fp32 scale per 128 channels) and one
// combine row.
int64_t hybridDispatchRowBytes(int hidden, ElementType rowType, bool fp8);
int64_t hybridCombineRowBytes(int hidden, ElementType rowType);

HybridTraffic predictTraffic(const HybridPlan& plan, int64_t dispatchRowBytes, int64_t combineRowBytes);

}  // namespace nccl_moe
