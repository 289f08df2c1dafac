// The LL dispatch's row pieces (kernels/send_pieces.h, the arithmetic its send half runs): every
// channel of every row in exactly one piece, pieces on FP8 block boundaries, no more pieces per
// token than there are warps for them or granules of the row.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/send_pieces.h"

namespace nccl_moe {
namespace {

TEST(SendPieces, CoverEveryChannelOnceFromBlockBoundaries) {
  for (int hidden : {1, 7, 127, 128, 1000, 1023, 1024, 1025, 2048, 7168, 7169, 8191, 65536})
    for (int tokens : {0, 1, 2, 3, 7, 32, 128, 1024})
      for (int64_t warps : {1, 2, 5, 16, 256, 512, 4096}) {
        SCOPED_TRACE(testing::Message() << "hidden " << hidden << ", tokens " << tokens << ", warps " << warps);
        const SendPieces pieces = sendPiecesFor(hidden, warps, tokens);
        const int granules = (hidden + kSendPieceChannels - 1) / kSendPieceChannels;
        ASSERT_GE(pieces.count, 1);
        EXPECT_LE(pieces.count, granules);
        if (pieces.count > 1) {
          EXPECT_LE(pieces.count, warps / (tokens > 1 ? tokens : 1));
        }
        EXPECT_EQ(pieces.channels % kSendPieceChannels, 0);
        std::vector<int> covered(hidden, 0);
        for (int p = 0; p < pieces.count; ++p) {
          int first = -1;
          const int channels = pieceChannels(pieces, hidden, p, &first);
          ASSERT_GE(channels, 0);
          if (channels == 0) continue;
          EXPECT_EQ(first % 128, 0) << "piece " << p << " starts inside an FP8 block";
          ASSERT_LE(first + channels, hidden);
          for (int c = first; c < first + channels; ++c) ++covered[c];
        }
        for (int c = 0; c < hidden; ++c) ASSERT_EQ(covered[c], 1) << "channel " << c;
      }
}

// The grid's spare warps are used: a 7168-channel row at T = 1 on one block of 16 warps goes in 7
// pieces (one per 1024 channels), at T = 128 on 256 warps in 2, at T = 256 on 256 warps whole.
TEST(SendPieces, UseTheSpareWarpsOfTheLowLatencyGrids) {
  EXPECT_EQ(sendPiecesFor(7168, 16, 1).count, 7);
  EXPECT_EQ(sendPiecesFor(7168, 16, 1).channels, 1024);
  EXPECT_EQ(sendPiecesFor(7168, 256, 128).count, 2);
  EXPECT_EQ(sendPiecesFor(7168, 256, 128).channels, 4096);
  EXPECT_EQ(sendPiecesFor(7168, 256, 256).count, 1);
  EXPECT_EQ(sendPiecesFor(7168, 256, 256).channels, 7168);
  EXPECT_EQ(sendPiecesFor(7168, 256, 0).count, 7);  // no token: no unit, whatever the count
}

}  // namespace
}  // namespace nccl_moe
