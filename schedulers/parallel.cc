#include "vfe/schedulers/parallel.h"

#include <algorithm>
#include <atomic>
#include <memory>
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

/// Colours of at most this many elements, and variables updated in blocks of at most
/// kRunGrain elements, are updated on the calling thread: too little work to share. Above
/// that, a thread takes a colour's elements kElementGrain at a time and a variable's runs
/// kRunGrain at a time. The result depends on neither.
constexpr size_t kElementGrain = 256;
constexpr size_t kRunGrain = 2048;

/// Runs the phases of a sweep (a colour's elements, a variable's runs, the free-energy blocks)
/// with one part of each phase per thread: part k is started by the arena's thread k, and
/// static partitioning keeps that mapping from phase to phase and from sweep to sweep, so a
/// thread works on the same share of the flat arrays in every phase and finds it still in its
/// core's cache. (On two cores that took the Ising grid's sweep from 1.4× to 1.7–2.0× one thread:
/// its phases last a few milliseconds, and moving the data between cores at every phase cost
/// as much as the work.) A thread that has finished its part takes the chunks of the others
/// that nobody has started, so an unequal or busy core does not hold the phase up. Which
/// thread runs a chunk never changes what the chunk computes.
class PhaseRunner {
 public:
  /// (One part needs no counters: its chunks run in order on the calling thread.)
  explicit PhaseRunner(size_t parts)
      : parts_(parts), next_(parts > 1 ? new Counter[parts] : nullptr) {}
  size_t parts() const { return parts_; }

  /// Calls body(worker, part, chunk) once for every chunk in [0, chunks(part)) of every
  /// part. `worker`, in [0, parts), names the task making the call: calls of one worker never
  /// overlap, so state kept per worker (a scratch) needs no lock and no lookup by thread.
  /// With one part, worker 0 is the calling thread.
  template <class Chunks, class Body>
  void Run(const Chunks& chunks, const Body& body) const {
    if (parts_ == 1) {
      for (size_t c = 0, n = chunks(size_t{0}); c < n; ++c) body(size_t{0}, size_t{0}, c);
      return;
    }
    for (size_t p = 0; p < parts_; ++p) next_[p].value.store(0, std::memory_order_relaxed);
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, parts_, 1),
        [&](const tbb::blocked_range<size_t>& range) {
          for (size_t self = range.begin(); self != range.end(); ++self)
            for (size_t k = 0; k < parts_; ++k) {  // its own part first, then the others
              const size_t part = (self + k) % parts_, n = chunks(part);
              for (size_t c; (c = next_[part].value.fetch_add(1, std::memory_order_relaxed)) < n;)
                body(self, part, c);
            }
        },
        tbb::static_partitioner());
  }

  /// Splits [0, size) into one part per thread and each part into chunks of `grain`, and
  /// calls body(worker, first, last) once for every chunk [first, last), as Run does.
  template <class Body>
  void RunRanges(size_t size, size_t grain, const Body& body) const {
    Run(
        [&](size_t part) {
          return (PartBegin(size, part + 1) - PartBegin(size, part) + grain - 1) / grain;
        },
        [&](size_t worker, size_t part, size_t chunk) {
          const size_t first = PartBegin(size, part) + chunk * grain;
          body(worker, first, std::min(first + grain, PartBegin(size, part + 1)));
        });
  }

 private:
  /// The first index of part `part` of parts_ equal parts of [0, size).
  size_t PartBegin(size_t size, size_t part) const { return size * part / parts_; }

  /// The next chunk of a part not yet taken; one cache line each, so that threads taking
  /// chunks of their own parts do not contend.
  struct alignas(64) Counter {
    std::atomic<size_t> value{0};
  };
  size_t parts_;
  std::unique_ptr<Counter[]> next_;
};

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
  std::vector<std::string> warnings;
  const std::vector<Variable> order = SweepOrder(graph, options_, warnings);
  // How each variable of the order is updated, and the colour classes of those updated colour
  // by colour, once.
  enum class Kind { kCluster, kInBlocks, kByColour };
  std::vector<Kind> kinds;
  std::vector<std::vector<std::vector<size_t>>> classes;
  for (const Variable& v : order) {
    kinds.push_back(graph.clustered(v)           ? Kind::kCluster
                    : graph.updates_in_blocks(v) ? Kind::kInBlocks
                                                 : Kind::kByColour);
    classes.push_back(kinds.back() == Kind::kByColour ? graph.ColourClasses(v)
                                                      : std::vector<std::vector<size_t>>{});
  }
  const PhaseRunner phases(static_cast<size_t>(threads()));
  const size_t parts = phases.parts();
  // A scratch per worker of the phases; between phases the calling thread uses worker 0's.
  std::vector<Scratch> scratch;
  scratch.reserve(parts);
  for (size_t w = 0; w < parts; ++w) scratch.push_back(graph.MakeScratch());
  tbb::enumerable_thread_specific<Scratch> block_scratch([&] { return graph.MakeScratch(); });
  const ParallelBlocks blocks(block_scratch);
  // Each free-energy block goes to the part whose elements it reads (PhaseRunner).
  std::vector<double> block_values(graph.num_free_energy_blocks());
  std::vector<std::vector<size_t>> blocks_of_part(parts);
  for (size_t b = 0; b < block_values.size(); ++b) {
    const auto part = static_cast<size_t>(graph.FreeEnergyBlockPosition(b) * parts);
    blocks_of_part[std::min(part, parts - 1)].push_back(b);
  }

  auto update = [&](const Variable& v) -> size_t {
    // RunSweeps passes the entries of `order` itself: their position indexes `classes`.
    const size_t k = static_cast<size_t>(&v - order.data());
    const size_t end = v.begin() + v.size();
    std::atomic<size_t> failed{end};
    // A cluster is one sum-product pass over its elements, on this thread.
    if (kinds[k] == Kind::kCluster)
      return graph.UpdateElements(v.id(), v.begin(), end, scratch[0]);
    if (kinds[k] == Kind::kInBlocks) {
      // One colour, consecutive elements: runs of them, each updated in blocks.
      if (v.size() <= kRunGrain) return graph.UpdateElements(v.id(), v.begin(), end, scratch[0]);
      phases.RunRanges(v.size(), kRunGrain, [&](size_t worker, size_t first, size_t last) {
        const size_t stop = graph.UpdateElements(v.id(), v.begin() + first, v.begin() + last,
                                                 scratch[worker]);
        if (stop != v.begin() + last) KeepSmallest(failed, stop);
      });
      return failed.load();
    }
    for (const std::vector<size_t>& colour : classes[k]) {
      auto update_range = [&](size_t worker, size_t first, size_t last) {
        const size_t stop = graph.UpdateListedElements(v.id(), colour.data() + first,
                                                       last - first, scratch[worker], &blocks);
        if (stop != SIZE_MAX) KeepSmallest(failed, stop);
      };
      if (colour.size() <= kElementGrain) {
        update_range(0, 0, colour.size());
      } else {
        phases.RunRanges(colour.size(), kElementGrain, update_range);
      }
      if (failed.load() != end) break;
    }
    return failed.load();
  };
  auto free_energy = [&] {
    phases.Run([&](size_t part) { return blocks_of_part[part].size(); },
               [&](size_t worker, size_t part, size_t chunk) {
                 const size_t b = blocks_of_part[part][chunk];
                 block_values[b] = graph.FreeEnergyBlock(b, scratch[worker]);
               });
    return graph.FreeEnergyFromBlocks(block_values);
  };
  Result result;
  arena_->arena.execute([&] {
    result = RunSweeps(graph, options_, order, std::move(warnings), update, free_energy);
  });
  return result;
}

}  // namespace vfe
