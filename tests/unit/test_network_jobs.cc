// The network jobs of the two-hop path: which slots of a rank's buffer go to and come from each
// rail peer. Checked against the buffer layout for every domain a rank can sit in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/comm.h"
#include "core/network_jobs.h"

namespace nccl_moe {
namespace {

CommConfig twoHopConfig(int ranks, int hidden, int tokens, int topk, bool fp8) {
  CommConfig config;
  config.shape = GroupShape{ranks, ranks * 2, hidden, tokens, topk};
  config.fp8Dispatch = fp8;
  config.rowType = ElementType::kBf16;
  return config;
}

DomainView viewOf(const BufferLayout& layout, int domain, int domains, int ranksPerDomain) {
  DomainView view;
  view.domain = domain;
  view.domains = domains;
  view.localRanks = ranksPerDomain;
  view.ranks = domains * ranksPerDomain;
  view.rank = domain * ranksPerDomain + 1;
  view.localRank = 1;
  view.layout = layout;
  return view;
}

// [offset, offset + bytes) of a pointer into `base`.
std::pair<size_t, size_t> span(const uint8_t* base, const void* p, size_t bytes) {
  const size_t offset = static_cast<size_t>(static_cast<const uint8_t*>(p) - base);
  return {offset, offset + bytes};
}

void expectDisjointInside(std::vector<std::pair<size_t, size_t>> spans, size_t begin, size_t end) {
  std::sort(spans.begin(), spans.end());
  for (size_t i = 0; i < spans.size(); ++i) {
    EXPECT_GE(spans[i].first, begin);
    EXPECT_LE(spans[i].second, end);
    if (i > 0) {
      EXPECT_LE(spans[i - 1].second, spans[i].first) << "slots overlap";
    }
  }
}

TEST(NetworkJobs, EveryOtherDomainGetsItsOwnSlotsInsideTheRegions) {
  const int D = 4, M = 3, tokens = 50, topk = 6;
  for (bool fp8 : {false, true}) {
    const BufferLayout layout = computeBufferLayout(twoHopConfig(D * M, 333, tokens, topk, fp8), D * M, D, M);
    std::vector<uint8_t> buffer(layout.total);
    uint8_t* base = buffer.data();
    for (int m = 0; m < M; ++m) {
      const DomainView view = viewOf(layout, m, M, D);
      const RailJob meta = metaJob(base, view), dispatch = dispatchJob(base, view), combine = combineJob(base, view);
      for (const RailJob* job : {&meta, &dispatch, &combine}) {
        ASSERT_EQ(job->legs.size(), static_cast<size_t>(M - 1));
        int expectedPeer = 0;
        for (const RailLeg& leg : job->legs) {
          if (expectedPeer == m) ++expectedPeer;
          EXPECT_EQ(leg.peer, expectedPeer++) << "legs go to the other domains in order";
        }
      }
      EXPECT_EQ(meta.phase, kPhaseMetaReady);
      EXPECT_EQ(dispatch.phase, kPhaseNetRowsReady);
      EXPECT_EQ(combine.phase, kPhaseNetPartialsReady);
      EXPECT_FALSE(meta.selfOnly);
      EXPECT_FALSE(dispatch.selfOnly);
      EXPECT_TRUE(combine.selfOnly);  // only the source reads its domain partials

      // Meta: this rank's own slot out, the peer's domain slot in.
      std::vector<std::pair<size_t, size_t>> metaIn;
      for (const RailLeg& leg : meta.legs) {
        EXPECT_EQ(leg.rows, 1);
        EXPECT_EQ(leg.rowBytes, layout.metaSlotBytes);
        EXPECT_EQ(span(base, leg.send, 0).first, layout.meta + m * layout.metaSlotBytes);
        EXPECT_EQ(span(base, leg.recv, 0).first, layout.meta + leg.peer * layout.metaSlotBytes);
        metaIn.push_back(span(base, leg.recv, layout.metaSlotBytes));
      }
      metaIn.push_back({layout.meta + m * layout.metaSlotBytes, layout.meta + (m + 1) * layout.metaSlotBytes});
      expectDisjointInside(metaIn, layout.meta, layout.dispatchRows);

      // Dispatch and combine: whole slots of maxTokens rows, disjoint, inside their regions.
      std::vector<std::pair<size_t, size_t>> dispatchOut, dispatchIn, combineOut, combineIn;
      for (const RailLeg& leg : dispatch.legs) {
        EXPECT_EQ(leg.rows, tokens);
        EXPECT_EQ(leg.rowBytes, layout.netDispatchRowBytes);
        dispatchOut.push_back(span(base, leg.send, leg.rows * leg.rowBytes));
        dispatchIn.push_back(span(base, leg.recv, leg.rows * leg.rowBytes));
      }
      for (const RailLeg& leg : combine.legs) {
        EXPECT_EQ(leg.rows, tokens);
        EXPECT_EQ(leg.rowBytes, layout.netCombineRowBytes);
        combineOut.push_back(span(base, leg.send, leg.rows * leg.rowBytes));
        combineIn.push_back(span(base, leg.recv, leg.rows * leg.rowBytes));
        // Domain n's partials land in slot n: the kernels address them by domain.
        EXPECT_EQ(combineIn.back().first, layout.netCombineRecv + leg.peer * size_t{tokens} * layout.netCombineRowBytes);
      }
      // The own domain's slot of the receive region is filled locally, never by the network.
      combineIn.push_back({layout.netCombineRecv + m * size_t{tokens} * layout.netCombineRowBytes,
                           layout.netCombineRecv + (m + 1) * size_t{tokens} * layout.netCombineRowBytes});
      expectDisjointInside(dispatchOut, layout.netDispatchSend, layout.netDispatchRecv);
      expectDisjointInside(dispatchIn, layout.netDispatchRecv, layout.netCombineSend);
      expectDisjointInside(combineOut, layout.netCombineSend, layout.netCombineRecv);
      expectDisjointInside(combineIn, layout.netCombineRecv, layout.total);
    }
  }
}

// What rank (m, g) sends to domain n is what rank (n, g) receives from domain m: same bytes, and
// the sender's slot for n is the slot the kernels pack (index n, skipping the own domain).
TEST(NetworkJobs, SendAndReceiveSizesPairUpBetweenRailPeers) {
  const int D = 2, M = 4;
  const BufferLayout layout = computeBufferLayout(twoHopConfig(D * M, 256, 40, 8, true), D * M, D, M);
  std::vector<uint8_t> buffer(layout.total);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < M; ++n) {
      if (m == n) continue;
      const DomainView sender = viewOf(layout, m, M, D), receiver = viewOf(layout, n, M, D);
      for (auto job : {&dispatchJob, &combineJob, &metaJob}) {
        const RailJob out = job(buffer.data(), sender), in = job(buffer.data(), receiver);
        const RailLeg& toN = out.legs[n < m ? n : n - 1];
        const RailLeg& fromM = in.legs[m < n ? m : m - 1];
        ASSERT_EQ(toN.peer, n);
        ASSERT_EQ(fromM.peer, m);
        EXPECT_EQ(toN.rows * toN.rowBytes, fromM.rows * fromM.rowBytes);
      }
      const RailJob out = dispatchJob(buffer.data(), sender);
      const size_t slot = static_cast<size_t>(n < m ? n : n - 1);
      EXPECT_EQ(static_cast<const uint8_t*>(out.legs[slot].send) - buffer.data(),
                static_cast<ptrdiff_t>(layout.netDispatchSend + slot * layout.netSlotRows * layout.netDispatchRowBytes));
    }
}

TEST(NetworkJobs, ChunkingCoversTheSlotWithNoEmptyChunk) {
  for (int64_t rows : {1, 2, 7, 16, 40, 64, 4096})
    for (int requested : {1, 2, 3, 4, 5, 8, 64}) {
      const NetworkChunking chunking = chunkSlots(rows, requested);
      SCOPED_TRACE(testing::Message() << rows << " rows, " << requested << " chunks asked");
      EXPECT_GE(chunking.chunks, 1);
      EXPECT_LE(chunking.chunks, requested);
      EXPECT_LE(chunking.chunks, rows);
      // The chunks cover the slot and the last one is not empty.
      EXPECT_GE(static_cast<int64_t>(chunking.chunks) * chunking.rowsPerChunk, rows);
      EXPECT_LT(static_cast<int64_t>(chunking.chunks - 1) * chunking.rowsPerChunk, rows);
    }
  EXPECT_EQ(chunkSlots(64, 4).rowsPerChunk, 16);
  EXPECT_EQ(chunkSlots(64, 5).chunks, 5);  // 13 rows each, the last one 12
  EXPECT_EQ(chunkSlots(7, 4).chunks, 4);   // 2, 2, 2, 1
  EXPECT_EQ(chunkSlots(6, 4).chunks, 3);   // 2 rows each: a fourth chunk would be empty
  EXPECT_EQ(chunkSlots(40, 64).rowsPerChunk, 1);
}

// The chunks of a job, in order, carry exactly the whole job's bytes of every leg, back to back, and
// signal their own chunk; the kernels find row r of a slot in chunk r / rowsPerChunk.
TEST(NetworkJobs, ChunksSplitEveryLegInOrder) {
  const int D = 2, M = 3, tokens = 37;
  const BufferLayout layout = computeBufferLayout(twoHopConfig(D * M, 200, tokens, 4, true), D * M, D, M);
  std::vector<uint8_t> buffer(layout.total);
  const DomainView view = viewOf(layout, 1, M, D);
  for (int requested : {1, 3, 4, 37}) {
    const NetworkChunking chunking = chunkSlots(tokens, requested);
    for (auto make : {&dispatchJob, &combineJob}) {
      const RailJob whole = make(buffer.data(), view);
      for (size_t l = 0; l < whole.legs.size(); ++l) {
        const RailLeg& all = whole.legs[l];
        const auto* nextSend = static_cast<const uint8_t*>(all.send);
        const auto* nextRecv = static_cast<const uint8_t*>(all.recv);
        int64_t rows = 0;
        for (int c = 0; c < chunking.chunks; ++c) {
          const RailJob chunk = chunkOf(whole, chunking, c);
          EXPECT_EQ(chunk.chunk, c);
          EXPECT_EQ(chunk.chunks, chunking.chunks);
          EXPECT_EQ(chunk.phase, whole.phase);
          ASSERT_EQ(chunk.legs.size(), whole.legs.size());
          const RailLeg& part = chunk.legs[l];
          EXPECT_EQ(part.peer, all.peer);
          EXPECT_EQ(part.rowBytes, all.rowBytes);
          EXPECT_GT(part.rows, 0);
          EXPECT_EQ(part.send, nextSend) << "chunk " << c << " starts where chunk " << c - 1 << " ended";
          EXPECT_EQ(part.recv, nextRecv);
          EXPECT_EQ(static_cast<const uint8_t*>(part.send) - static_cast<const uint8_t*>(all.send),
                    static_cast<ptrdiff_t>(static_cast<size_t>(c) * chunking.rowsPerChunk * all.rowBytes));
          nextSend += part.rows * part.rowBytes;
          nextRecv += part.rows * part.rowBytes;
          rows += part.rows;
        }
        EXPECT_EQ(rows, all.rows);
      }
    }
  }
}

TEST(NetworkJobs, CommunicatorJobsAreTheViewsChunks) {
  const int D = 2, M = 2, tokens = 50;
  const BufferLayout layout = computeBufferLayout(twoHopConfig(D * M, 64, tokens, 2, false), D * M, D, M);
  std::vector<uint8_t> buffer(layout.total);
  DomainView view = viewOf(layout, 0, M, D);
  const NetworkChunking chunking = chunkSlots(tokens, 4);
  view.netChunks = chunking.chunks;
  view.netChunkRows = chunking.rowsPerChunk;
  const NetworkJobs jobs = networkJobs(buffer.data(), view);
  ASSERT_EQ(jobs.dispatch.size(), 4u);
  ASSERT_EQ(jobs.combine.size(), 4u);
  EXPECT_EQ(jobs.meta.chunk, -1);  // the layout's meta travels whole
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(jobs.dispatch[c].chunk, c);
    EXPECT_EQ(jobs.combine[c].chunk, c);
    EXPECT_EQ(jobs.dispatch[c].legs[0].rows, c < 3 ? 13 : 11);
  }
}

// With the row counts known, each chunk moves only the counted rows that fall into it: per leg the
// chunks' rows add up to the counts, each chunk a prefix of its slice of the slot.
TEST(NetworkJobs, FittedChunksCarryExactlyTheCountedRows) {
  const int D = 2, M = 4, tokens = 40;
  const BufferLayout layout = computeBufferLayout(twoHopConfig(D * M, 64, tokens, 4, false), D * M, D, M);
  std::vector<uint8_t> buffer(layout.total);
  const DomainView view = viewOf(layout, 2, M, D);
  const int32_t sendRows[M] = {0, 40, 0, 17};  // domain 2 is this rank's own: never a leg
  const int32_t recvRows[M] = {9, 0, 0, 31};
  for (int requested : {1, 3, 4, 40}) {
    const NetworkChunking chunking = chunkSlots(tokens, requested);
    const RailJob whole = dispatchJob(buffer.data(), view);
    std::vector<int64_t> sent(M, 0), received(M, 0);
    for (int c = 0; c < chunking.chunks; ++c) {
      RailJob chunk = chunkOf(whole, chunking, c);
      const RailJob unfitted = chunk;
      fitToCounts(&chunk, static_cast<int64_t>(c) * chunking.rowsPerChunk, sendRows, recvRows);
      for (size_t l = 0; l < chunk.legs.size(); ++l) {
        const RailLeg& leg = chunk.legs[l];
        EXPECT_EQ(leg.send, unfitted.legs[l].send) << "fitting keeps the addresses";
        EXPECT_EQ(leg.rows, unfitted.legs[l].rows);
        EXPECT_GE(leg.sendRows, 0);
        EXPECT_LE(leg.sendRows, leg.rows);
        EXPECT_LE(leg.recvRows, leg.rows);
        // Rows land in the chunk only after the chunk before is full.
        if (leg.sendRows > 0) {
          EXPECT_EQ(sent[leg.peer], static_cast<int64_t>(c) * chunking.rowsPerChunk);
        }
        sent[leg.peer] += leg.sendRows;
        received[leg.peer] += leg.recvRows;
      }
    }
    for (int n = 0; n < M; ++n) {
      if (n == view.domain) continue;
      EXPECT_EQ(sent[n], sendRows[n]) << "domain " << n << ", " << requested << " chunks";
      EXPECT_EQ(received[n], recvRows[n]) << "domain " << n << ", " << requested << " chunks";
    }
  }
}

TEST(NetworkJobs, OneDomainHasNoNetworkLegs) {
  const BufferLayout layout = computeBufferLayout(twoHopConfig(8, 128, 16, 4, false), 8, 8, 1);
  std::vector<uint8_t> buffer(layout.total);
  const DomainView view = viewOf(layout, 0, 1, 8);
  EXPECT_TRUE(metaJob(buffer.data(), view).legs.empty());
  EXPECT_TRUE(dispatchJob(buffer.data(), view).legs.empty());
  EXPECT_TRUE(combineJob(buffer.data(), view).legs.empty());
}

}  // namespace
}  // namespace nccl_moe
