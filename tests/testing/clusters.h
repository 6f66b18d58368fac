#ifndef VFE_TESTS_TESTING_CLUSTERS_H_
#define VFE_TESTS_TESTING_CLUSTERS_H_

// Checks shared by the tests of clusters and their solvers.

#include <gtest/gtest.h>

#include <tbb/task_arena.h>

#include "tests/testing/allocation_counter.h"
#include "vfe/model.h"

namespace vfe::testing {

/// After a first update of the whole cluster `x` (its `size` elements), three more on one
/// thread allocate nothing.
inline void ExpectClusterUpdatesAllocateNothing(FactorGraph& graph, const Variable& x,
                                                size_t size) {
  Scratch scratch = graph.MakeScratch();
  tbb::task_arena arena(1);
  arena.execute([&] {
    ASSERT_EQ(graph.UpdateElements(x.id(), 0, size, scratch), size);
    const long before = AllocationCount();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(graph.UpdateElements(x.id(), 0, size, scratch), size);
    EXPECT_EQ(AllocationCount() - before, 0);
  });
}

}  // namespace vfe::testing

#endif  // VFE_TESTS_TESTING_CLUSTERS_H_
