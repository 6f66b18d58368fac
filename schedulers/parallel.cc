#include "vfe/schedulers/parallel.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "schedulers/parallel_blocks.h"
#include "schedulers/sweeps.h"

namespace vfe {
namespace {

/// Elements of one colour handed to a task at a time: enough to cover the cost of a task,
/// small enough to balance two to eight threads. The result does not depend on it.
constexpr size_t kElementGrain = 256;
/// Runs of a variable that updates in blocks, handed to a task at a time.
constexpr size_t kRunGrain = 2048;

/// Lowers `target` to `value` if smaller (the first failed element, whichever thread saw it).
void KeepSmallest(std::atomic<size_t>& target, size_t value) {
  size_t current = target.load();
  while (value < current && !target.compare_exchange_weak(current, value)) {
  }
}

}  // namespace

struct ParallelScheduler::Arena {
  explicit Arena(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

ParallelScheduler::ParallelScheduler(SchedulerOptions options, int threads)
    : options_(std::move(options)) {
  options_.Validate();
  if (threads < 0)
    throw OptionsError("threads must be >= 0 (0: every core), got " + std::to_string(threads));
  arena_ = std::make_unique<Arena>(threads == 0 ? tbb::info::default_concurrency() : threads);
}

ParallelScheduler::~ParallelScheduler() = default;

int ParallelScheduler::threads() const { return arena_->arena.max_concurrency(); }

Result ParallelScheduler::Run(FactorGraph& graph) const {
  const std::vector<Variable> order = SweepOrder(graph, options_);
  // The colour classes of every variable of the order, once.
  std::vector<std::vector<std::vector<size_t>>> classes;
  for (const Variable& v : order) classes.push_back(graph.ColourClasses(v));
  tbb::enumerable_thread_specific<Scratch> scratch([&] { return graph.MakeScratch(); });
  tbb::enumerable_thread_specific<Scratch> block_scratch([&] { return graph.MakeScratch(); });
  const ParallelBlocks blocks(block_scratch);
  std::vector<double> block_values(graph.num_free_energy_blocks());

  auto update = [&](const Variable& v) -> size_t {
    // RunSweeps passes the entries of `order` itself: their position indexes `classes`.
    const size_t k = static_cast<size_t>(&v - order.data());
    const size_t end = v.begin() + v.size();
    std::atomic<size_t> failed{end};
    // A cluster is one sum-product pass over its elements, on this thread.
    if (graph.clustered(v)) return graph.UpdateElements(v.id(), v.begin(), end, scratch.local());
    if (graph.updates_in_blocks(v)) {
      // One colour, consecutive elements: runs of it, each updated in blocks.
      tbb::parallel_for(tbb::blocked_range<size_t>(v.begin(), end, kRunGrain),
                        [&](const tbb::blocked_range<size_t>& run) {
                          const size_t stop = graph.UpdateElements(v.id(), run.begin(),
                                                                   run.end(), scratch.local());
                          if (stop != run.end()) KeepSmallest(failed, stop);
                        });
      return failed.load();
    }
    for (const std::vector<size_t>& colour : classes[k]) {
      auto update_range = [&](const tbb::blocked_range<size_t>& range) {
        Scratch& local = scratch.local();
        for (size_t i = range.begin(); i != range.end(); ++i)
          if (!graph.UpdateElement(v.id(), colour[i], local, blocks))
            KeepSmallest(failed, colour[i]);
      };
      if (colour.size() <= kElementGrain) {
        update_range(tbb::blocked_range<size_t>(0, colour.size()));
      } else {
        tbb::parallel_for(tbb::blocked_range<size_t>(0, colour.size(), kElementGrain),
                          update_range);
      }
      if (failed.load() != end) break;
    }
    return failed.load();
  };
  auto free_energy = [&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, block_values.size(), 1),
                      [&](const tbb::blocked_range<size_t>& range) {
                        Scratch& local = scratch.local();
                        for (size_t b = range.begin(); b != range.end(); ++b)
                          block_values[b] = graph.FreeEnergyBlock(b, local);
                      });
    return graph.FreeEnergyFromBlocks(block_values);
  };
  Result result;
  arena_->arena.execute([&] { result = RunSweeps(graph, options_, order, update, free_energy); });
  return result;
}

}  // namespace vfe
