// How the low-latency dispatch's send half cuts token rows into pieces, a warp each
// (kernels/low_latency_dispatch.cu), host and device, so that the CPU tests check the arithmetic the
// kernel runs: every channel of every row in exactly one piece, every piece starting on an FP8
// block, no more pieces than there are warps for them.
#pragma once

#include <cstdint>

#include "misc/numerics.h"

namespace nccl_moe {

// A piece is whole kSendPieceChannels (the last one of a row shorter): 2 KiB of BF16 input, eight
// 128-channel FP8 blocks (one quantise step), so a piece quantises to the whole row's bits.
constexpr int kSendPieceChannels = 1024;

struct SendPieces {
  int count;     // pieces per token (some past the row's end when count does not divide its granules)
  int channels;  // per piece, a multiple of kSendPieceChannels
};

// As many pieces per token as keep `warps` warps busy over `tokens` tokens, at least one, at most
// one per granule of kSendPieceChannels.
NCCL_MOE_HD SendPieces sendPiecesFor(int hidden, int64_t warps, int tokens) {
  const int granules = (hidden + kSendPieceChannels - 1) / kSendPieceChannels;
  const int64_t spare = warps / (tokens > 1 ? tokens : 1);
  const int count = spare < 1 ? 1 : spare < granules ? static_cast<int>(spare) : granules;
  return SendPieces{count, (granules + count - 1) / count * kSendPieceChannels};
}

// Piece `piece` of a row of `hidden` channels: its first channel and its length, 0 for a piece past
// the row's end (its warp has nothing to do).
NCCL_MOE_HD int pieceChannels(const SendPieces& pieces, int hidden, int piece, int* first) {
  *first = piece * pieces.channels;
  if (*first >= hidden) return 0;
  const int left = hidden - *first;
  return left < pieces.channels ? left : pieces.channels;
}

}  // namespace nccl_moe
