#include "tools/harness/reference_layer.h"

#include "reference/fp8.h"

namespace nccl_moe::harness {

int probsPerRow(const GroupLayout& layout) {
  if (layout.options.layout == OutputLayout::kExpertMajor) return 1;
  return layout.format == RoutingFormat::kTopk ? layout.topk : layout.shape.localExperts();
}

HostRows identityExpert(const HostRows& rows, const std::vector<float>& scales, const std::vector<float>& probs,
                        int probsPerRow, ElementType outType) {
  const int H = rows.cols();
  const bool fp8 = rows.type() == ElementType::kE4m3;
  const int blocks = fp8BlockCount(H);
  HostRows out(outType, rows.rows(), H);
  std::vector<float> row(H);
  for (int64_t r = 0; r < rows.rows(); ++r) {
    float p = probs.empty() ? 1.0f : 0.0f;
    if (!probs.empty())
      for (int k = 0; k < probsPerRow; ++k) p += probs[static_cast<size_t>(r) * probsPerRow + k];
    if (fp8)
      dequantizeRowE4m3(rows.row(r), scales.data() + static_cast<size_t>(r) * blocks, H, row.data());
    else
      for (int c = 0; c < H; ++c) row[c] = rows.get(r, c);
    for (int c = 0; c < H; ++c) out.set(r, c, row[c] * p);
  }
  return out;
}

Status runReferenceLayer(const GroupInputs& in, const LayerSettings& settings, ReferenceLayer* out) {
  if (in.x.empty()) return Status::invalidArgument("no token rows");
  Status status = buildGroupLayout(in.shape, in.routings, settings.layout, &out->layout);
  if (status.isOk()) status = referenceDispatch(out->layout, in.routings, in.x, settings.fp8, &out->dispatched);
  if (!status.isOk()) return status;
  const int width = probsPerRow(out->layout);
  out->expertOut.clear();
  for (const RankDispatchOutput& d : out->dispatched)
    out->expertOut.push_back(identityExpert(d.x, d.scales, d.probs, width, in.x[0].type()));
  return referenceCombine(out->layout, out->expertOut, settings.order, &out->combined);
}

}  // namespace nccl_moe::harness
