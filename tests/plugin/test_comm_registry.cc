// The process-wide registry of communicators the tuner saw.
#include <gtest/gtest.h>

#include "misc/comm_registry.h"

namespace nccl_moe {
namespace {

TEST(CommRegistry, AddFindRemove) {
  CommRegistry registry;
  CommRecord a;
  a.hasNcclId = true;
  a.ncclCommId = 42;
  a.ranks = 8;
  CommRecord b;
  b.ranks = 4;  // an older ABI: no NCCL id
  const uint64_t keyA = registry.add(a);
  const uint64_t keyB = registry.add(b);
  EXPECT_NE(keyA, keyB);
  EXPECT_EQ(registry.size(), 2u);
  const auto found = registry.findByNcclId(42);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->key, keyA);
  EXPECT_EQ(found->ranks, 8u);
  EXPECT_FALSE(registry.findByNcclId(0).has_value());  // b has no id, and 0 must not match it
  EXPECT_TRUE(registry.remove(keyA));
  EXPECT_FALSE(registry.remove(keyA));
  EXPECT_EQ(registry.snapshot().size(), 1u);
  EXPECT_EQ(registry.snapshot()[0].key, keyB);
}

TEST(CommRegistry, OneInstancePerProcess) { EXPECT_EQ(&commRegistry(), &commRegistry()); }

}  // namespace
}  // namespace nccl_moe
