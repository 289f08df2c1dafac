#include "reference/random_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nccl_moe {

RankRouting randomTopkRouting(const RoutingRecipe& recipe, std::mt19937_64& rng) {
  RankRouting routing;
  routing.format = RoutingFormat::kTopk;
  routing.numTokens = recipe.numTokens;
  routing.topk = recipe.topk;
  routing.withProbs = recipe.withProbs;
  const size_t slots = static_cast<size_t>(recipe.numTokens) * recipe.topk;
  routing.topkIdx.assign(slots, -1);
  if (recipe.withProbs) routing.topkProbs.assign(slots, 0.0f);

  std::vector<double> weights(recipe.experts);
  for (int e = 0; e < recipe.experts; ++e)
    weights[e] = std::max(std::pow(1.0 / (e + 1), recipe.skew), 1e-300);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> remaining;
  for (int t = 0; t < recipe.numTokens; ++t) {
    remaining = weights;
    float sum = 0.0f;
    for (int k = 0; k < recipe.topk; ++k) {
      // Draw without replacement by weight; a masked slot still consumes no expert.
      double total = std::accumulate(remaining.begin(), remaining.end(), 0.0);
      double pick = unit(rng) * total;
      int e = 0;
      while (e + 1 < recipe.experts && (remaining[e] == 0.0 || pick >= remaining[e])) {
        pick -= remaining[e];
        ++e;
      }
      while (remaining[e] == 0.0) --e;  // rounding walked past the last live expert
      remaining[e] = 0.0;
      const size_t i = static_cast<size_t>(t) * recipe.topk + k;
      if (unit(rng) < recipe.maskedFraction) continue;
      routing.topkIdx[i] = e;
      if (recipe.withProbs) {
        routing.topkProbs[i] = static_cast<float>(0.05 + unit(rng));
        sum += routing.topkProbs[i];
      }
    }
    if (recipe.withProbs && sum > 0.0f)
      for (int k = 0; k < recipe.topk; ++k) routing.topkProbs[static_cast<size_t>(t) * recipe.topk + k] /= sum;
  }
  return routing;
}

RankRouting toRoutingMap(const RankRouting& topk, int experts) {
  RankRouting map;
  map.format = RoutingFormat::kMap;
  map.numTokens = topk.numTokens;
  map.withProbs = topk.withProbs;
  const size_t cells = static_cast<size_t>(topk.numTokens) * experts;
  map.routingMap.assign(cells, 0);
  if (topk.hasProbs()) map.denseProbs.assign(cells, 0.0f);
  for (int t = 0; t < topk.numTokens; ++t)
    forEachSelection(topk, experts, t, [&](const Selection& sel) {
      const size_t i = static_cast<size_t>(t) * experts + sel.expert;
      map.routingMap[i] = 1;
      if (topk.hasProbs()) map.denseProbs[i] = sel.prob;
    });
  return map;
}

HostRows randomRows(ElementType type, int64_t rows, int hidden, float range, std::mt19937_64& rng) {
  HostRows x(type, rows, hidden);
  std::uniform_real_distribution<float> value(-range, range);
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 0; c < hidden; ++c) x.set(r, c, value(rng));
  return x;
}

}  // namespace nccl_moe
