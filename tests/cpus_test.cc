#include "base/cpus.h"

#include "gtest/gtest.h"

namespace filemesh::internal {
namespace {

TEST(UsableCpusTest, TheCgroupQuotaCapsTheAffinityMask) {
  EXPECT_EQ(UsableCpusFrom(64, "150000 100000\n"), 2);  // 1.5 CPUs: 2 threads
  EXPECT_EQ(UsableCpusFrom(64, "100000 100000"), 1);
  EXPECT_EQ(UsableCpusFrom(64, "50000 100000"), 1);  // half a CPU is still one
  EXPECT_EQ(UsableCpusFrom(4, "800000 100000"), 4);  // a quota above the mask
}

TEST(UsableCpusTest, NoQuotaOrAnUnreadableOneLeavesTheMask) {
  EXPECT_EQ(UsableCpusFrom(8, "max 100000\n"), 8);
  EXPECT_EQ(UsableCpusFrom(8, ""), 8);
  EXPECT_EQ(UsableCpusFrom(8, nullptr), 8);
  EXPECT_EQ(UsableCpusFrom(8, "lots 100000"), 8);
  EXPECT_EQ(UsableCpusFrom(8, "100000 0"), 8);
  EXPECT_EQ(UsableCpusFrom(8, "-1 100000"), 8);
  EXPECT_EQ(UsableCpusFrom(0, ""), 1);  // never below one
}

TEST(UsableCpusTest, ThisProcessHasAtLeastOne) {
  EXPECT_GE(UsableCpus(), 1);
  EXPECT_EQ(UsableCpus(), UsableCpus());
}

}  // namespace
}  // namespace filemesh::internal
