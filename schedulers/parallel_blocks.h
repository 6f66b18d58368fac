#ifndef VFE_SCHEDULERS_PARALLEL_BLOCKS_H_
#define VFE_SCHEDULERS_PARALLEL_BLOCKS_H_

// The block runner of the threaded schedulers (parallel and async): the blocks of one long
// message sum (a global parameter fed by N factors) on every thread of the current arena.

#include <cstddef>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "vfe/graph/factor_graph.h"

namespace vfe {

/// Runs the blocks on every thread of the arena. Isolated, so that a thread waiting for them
/// runs only these blocks (never another element's update or flow-graph body, which would
/// reuse its scratch), with scratch of their own.
class ParallelBlocks final : public BlockRunner {
 public:
  /// The fewest blocks run concurrently (fewer run on the calling thread: at 16384 factors a
  /// block, waking the other threads for a few costs more than it saves).
  static constexpr size_t kFewestParallel = 16;

  explicit ParallelBlocks(tbb::enumerable_thread_specific<Scratch>& scratch) : scratch_(scratch) {}
  void Run(size_t count, const Body& body) const override {
    if (count < kFewestParallel) {  // the same sums on the calling thread
      Scratch& local = scratch_.local();
      for (size_t b = 0; b < count; ++b) body(b, local);
      return;
    }
    tbb::this_task_arena::isolate([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, count, 1),
                        [&](const tbb::blocked_range<size_t>& range) {
                          Scratch& local = scratch_.local();
                          for (size_t b = range.begin(); b != range.end(); ++b) body(b, local);
                        });
    });
  }

 private:
  tbb::enumerable_thread_specific<Scratch>& scratch_;
};

}  // namespace vfe

#endif  // VFE_SCHEDULERS_PARALLEL_BLOCKS_H_
