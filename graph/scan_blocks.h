#ifndef VFE_GRAPH_SCAN_BLOCKS_H_
#define VFE_GRAPH_SCAN_BLOCKS_H_

// The block structure shared by the parallel-in-time solvers of chains
// (cluster_parallel_scan.cc for Gaussian chains, cluster_parallel_scan_categorical.cc for
// Categorical ones). Private to the library.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace vfe {

/// Positions per block: the unit of parallel work, fixed so that results do not depend on
/// the number of threads. A block's per-step elements stay in the second-level cache between
/// the passes over it.
constexpr size_t kScanBlock = 256;

/// The first failure of a pass in block order (`failed` holds one per block, SIZE_MAX for
/// none), or SIZE_MAX.
inline size_t FirstFailure(const std::vector<size_t>& failed) {
  for (size_t f : failed)
    if (f != SIZE_MAX) return f;
  return SIZE_MAX;
}

/// Runs body(block) for every block, on the threads of the caller's task arena.
template <class Body>
void ForEachBlock(size_t blocks, const Body& body) {
  tbb::parallel_for(tbb::blocked_range<size_t>(0, blocks, 1),
                    [&](const tbb::blocked_range<size_t>& range) {
                      for (size_t b = range.begin(); b != range.end(); ++b) body(b);
                    });
}

}  // namespace vfe

#endif  // VFE_GRAPH_SCAN_BLOCKS_H_
