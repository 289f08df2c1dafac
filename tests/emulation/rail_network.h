// The network of an emulated cluster: one FIFO channel per (source rank, destination domain),
// and a channel only connects rail peers (the same local index in two different domains), as
// HybridEP's network phase promises. Counts what crosses it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "reference/hybrid_plan.h"
#include "rank_threads.h"
#include "misc/status.h"

namespace nccl_moe::emulation {

template <class Message>
class RailNetwork {
 public:
  RailNetwork(const DomainGrid& grid, FirstError& errors)
      : grid_(grid), errors_(errors), channels_(static_cast<size_t>(grid.ranks) * grid.domains()) {}

  // `payloadBytes`: the row bytes the message carries (what a NIC would move for it).
  void send(int src, int dst, Message message, int64_t payloadBytes) {
    if (!connects(src, dst)) return;
    Channel& channel = channelOf(src, dst);
    std::lock_guard<std::mutex> lock(channel.mutex);
    channel.messages.push_back(std::move(message));
    messages_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(payloadBytes, std::memory_order_relaxed);
  }

  // The oldest message from src not yet received; empty (and an error) when none is left.
  std::optional<Message> receive(int src, int dst) {
    if (!connects(src, dst)) return std::nullopt;
    Channel& channel = channelOf(src, dst);
    std::lock_guard<std::mutex> lock(channel.mutex);
    if (channel.next == channel.messages.size()) {
      errors_.report(format("network: rank %d expected a message from rank %d, none arrived", dst, src));
      return std::nullopt;
    }
    return std::move(channel.messages[channel.next++]);
  }

  int64_t messages() const { return messages_.load(); }
  int64_t bytes() const { return bytes_.load(); }

  // Messages sent but never received (a plan that sends what nobody expects).
  int64_t unreceived() const {
    int64_t left = 0;
    for (const Channel& channel : channels_) left += static_cast<int64_t>(channel.messages.size() - channel.next);
    return left;
  }

 private:
  struct Channel {
    std::mutex mutex;
    std::vector<Message> messages;
    size_t next = 0;
  };

  bool connects(int src, int dst) {
    if (grid_.localIndexOf(src) == grid_.localIndexOf(dst) && grid_.domainOf(src) != grid_.domainOf(dst))
      return true;
    errors_.report(format("network: ranks %d and %d are not rail peers in different domains", src, dst));
    return false;
  }
  Channel& channelOf(int src, int dst) {
    return channels_[static_cast<size_t>(src) * grid_.domains() + grid_.domainOf(dst)];
  }

  DomainGrid grid_;
  FirstError& errors_;
  std::vector<Channel> channels_;
  std::atomic<int64_t> messages_{0};
  std::atomic<int64_t> bytes_{0};
};

// Row copies into another rank's memory (the NVLink stand-in is plain shared memory).
struct NvlinkCounter {
  std::atomic<int64_t> rows{0};
  std::atomic<int64_t> bytes{0};

  void count(int writer, int owner, int64_t rowBytes) {
    if (writer == owner) return;
    rows.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(rowBytes, std::memory_order_relaxed);
  }
};

}  // namespace nccl_moe::emulation
