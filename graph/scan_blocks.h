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
/// none) among blocks [first, last), or SIZE_MAX.
inline size_t FirstFailure(const std::vector<size_t>& failed, size_t first, size_t last) {
  for (size_t b = first; b < last; ++b)
    if (failed[b] != SIZE_MAX) return failed[b];
  return SIZE_MAX;
}

/// The first failure of a pass over every block, or SIZE_MAX.
inline size_t FirstFailure(const std::vector<size_t>& failed) {
  return FirstFailure(failed, 0, failed.size());
}

/// Blocks per chunk for solvers that go through a long chain chunk by chunk, so that what one
/// pass writes for a chunk is still in the last-level cache when the next pass reads it
/// (16 blocks of a 4-D Gaussian chain: about 4 MB). Fixed, like kScanBlock.
constexpr size_t kScanChunkBlocks = 16;

/// Runs body(block) for every block in [first, last), on the threads of the caller's task
/// arena.
template <class Body>
void ForEachBlock(size_t first, size_t last, const Body& body) {
  if (first >= last) return;
  tbb::parallel_for(tbb::blocked_range<size_t>(first, last, 1),
                    [&](const tbb::blocked_range<size_t>& range) {
                      for (size_t b = range.begin(); b != range.end(); ++b) body(b);
                    });
}

/// Runs body(block) for every block, on the threads of the caller's task arena.
template <class Body>
void ForEachBlock(size_t blocks, const Body& body) {
  ForEachBlock(0, blocks, body);
}

}  // namespace vfe

#endif  // VFE_GRAPH_SCAN_BLOCKS_H_
