// Data-parallel VMP over processes: the split of a model by rows (Plan) and the sweep that
// updates local variables on their own rows and global ones from exchanged blocks.

#include "vfe/schedulers/sharded.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <string>
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

/// Local elements are updated kChunk at a time on the threads of the process.
constexpr size_t kChunk = 2048;

std::string PlateText(const FactorGraph& graph, PlateId p) {
  const std::string& name = graph.plate_name(p);
  return name.empty() ? "plate " + std::to_string(p) : "factor '" + name + "'";
}

/// The process that owns `row`.
int OwnerOf(const std::vector<size_t>& bounds, size_t row) {
  const auto it = std::upper_bound(bounds.begin(), bounds.end(), row);
  return static_cast<int>(std::min<ptrdiff_t>(it - bounds.begin() - 1,
                                              static_cast<ptrdiff_t>(bounds.size()) - 2));
}

}  // namespace

struct ShardedScheduler::Arena {
  explicit Arena(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

ShardedScheduler::ShardedScheduler(SchedulerOptions options, const ShardExchange& exchange,
                                   int threads)
    : options_(std::move(options)), exchange_(exchange) {
  options_.Validate();
  if (threads < 0)
    throw OptionsError("threads must be >= 0 (0: every core), got " + std::to_string(threads));
  arena_ = std::make_unique<Arena>(threads == 0 ? tbb::info::default_concurrency() : threads);
}

ShardedScheduler::~ShardedScheduler() = default;

int ShardedScheduler::threads() const { return arena_->arena.max_concurrency(); }

ShardPlan ShardedScheduler::Plan(const FactorGraph& graph, int ranks) {
  if (!graph.finalized()) throw GraphError("sharded run: finalise the graph first");
  if (ranks < 1) throw GraphError("sharded run: expected 1 or more processes, got " +
                                  std::to_string(ranks));
  ShardPlan plan;
  const size_t variables = graph.num_variables();
  for (uint32_t id = 0; id < variables; ++id) {
    const Variable v = graph.WholeVariable(id);
    if (graph.observed(v)) plan.rows = std::max(plan.rows, v.size());
  }
  if (plan.rows == 0) throw GraphError("sharded run: the model has no observed data to split");
  const size_t grain = FactorGraph::kRowGrain;
  const size_t blocks = (plan.rows + grain - 1) / grain;
  for (int q = 0; q <= ranks; ++q)
    plan.bounds.push_back(std::min(plan.rows, blocks * static_cast<size_t>(q) /
                                                  static_cast<size_t>(ranks) * grain));
  // Local variables: hidden, one element per row.
  plan.is_local.assign(variables, 0);
  for (const Variable& v : graph.HiddenVariables())
    if (v.size() == plan.rows) {
      if (graph.clustered(v))
        throw GraphError("sharded run: the local variable '" + graph.variable_name(v.id()) +
                         "' is a cluster (a joint posterior over rows of different processes); "
                         "it cannot be split by rows");
      plan.is_local[v.id()] = 1;
      plan.local.push_back(v);
    }
  // Sharded plates: factor n reads row n of every variable of N elements it joins.
  plan.sharded_plates.assign(graph.num_plates(), 0);
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    const size_t size = graph.plate_size(p);
    const size_t slots = graph.node(p).slot_names().size();
    bool rows = false, hidden_local = false, joins_cluster = false;
    for (size_t s = 0; s < slots; ++s) {
      const Variable first = graph.FactorArgument(p, 0, s);
      const Variable whole = graph.WholeVariable(first.id());
      if (!graph.observed(whole) && graph.clustered(whole)) joins_cluster = true;
      if (whole.size() != plan.rows) continue;
      const Variable last = graph.FactorArgument(p, size - 1, s);
      if (first.begin() != 0 || last.begin() != size - 1)
        throw GraphError(
            "sharded run: " + PlateText(graph, p) + " joins " + graph.ElementName(first) +
            (size > 1 ? " … " + graph.ElementName(last) : std::string()) +
            ": its factor n must read row n of '" + graph.variable_name(first.id()) +
            "' (plates over the rows must be independent given the global variables: no "
            "factor joins two rows, as a chain across rows does)");
      rows = true;
      hidden_local |= plan.is_local[first.id()] != 0;
    }
    if (!rows) continue;
    if (joins_cluster)
      throw GraphError("sharded run: " + PlateText(graph, p) +
                       " joins a cluster to the rows; clusters are not split by rows yet");
    if (graph.node(p).SumsCached()) {
      if (hidden_local)
        throw GraphError("sharded run: " + PlateText(graph, p) +
                         " sums cached statistics of a local variable over every row");
      // Sums of the data alone, which every process holds: each evaluates them whole.
      continue;
    }
    plan.sharded_plates[p] = 1;
  }
  // Who evaluates each free-energy block.
  for (size_t b = 0; b < graph.num_free_energy_blocks(); ++b) {
    const FactorGraph::FreeEnergyBlockSpan span = graph.FreeEnergyBlockSpanOf(b);
    const bool sharded = span.entropy ? plan.is_local[span.index] != 0
                                      : plan.sharded_plates[span.index] != 0;
    if (!sharded) {
      plan.block_owner.push_back(-1);
      continue;
    }
    const int owner = OwnerOf(plan.bounds, span.begin);
    if (OwnerOf(plan.bounds, span.end - 1) != owner)
      throw GraphError("sharded run: a free-energy block crosses the rows of two processes");
    plan.block_owner.push_back(owner);
  }
  return plan;
}

Result ShardedScheduler::Run(FactorGraph& graph) const {
  const int rank = exchange_.rank(), ranks = exchange_.ranks();
  const ShardPlan plan = Plan(graph, ranks);
  std::vector<std::string> warnings;
  // (Plan has refused local clusters.)
  const std::vector<Variable> order = SweepOrder(graph, options_, warnings);
  graph.SetRowShard({plan.bounds, plan.sharded_plates, &exchange_});
  const RowShardGuard guard(graph);

  const size_t own_first = plan.bounds[static_cast<size_t>(rank)];
  const size_t own_last = plan.bounds[static_cast<size_t>(rank) + 1];
  Scratch scratch = graph.MakeScratch();
  tbb::enumerable_thread_specific<Scratch> thread_scratch([&] { return graph.MakeScratch(); });
  const ParallelBlocks runner(thread_scratch);
  // The free-energy blocks this process evaluates, and each process's count of sharded ones.
  std::vector<size_t> own_blocks, everyone_blocks;
  std::vector<size_t> block_counts(static_cast<size_t>(ranks), 0);
  for (size_t b = 0; b < plan.block_owner.size(); ++b) {
    const int owner = plan.block_owner[b];
    if (owner >= 0) ++block_counts[static_cast<size_t>(owner)];
    if (owner == rank) own_blocks.push_back(b);
    if (owner < 0) everyone_blocks.push_back(b);
  }
  // Where each process's sharded blocks go in the exchanged buffer.
  std::vector<size_t> starts(static_cast<size_t>(ranks) + 1, 0);
  for (size_t q = 0; q < block_counts.size(); ++q) starts[q + 1] = starts[q] + block_counts[q];
  std::vector<double> values(plan.block_owner.size()), packed(starts.back());
  std::vector<size_t> next(static_cast<size_t>(ranks));
  const std::vector<size_t> one_each(static_cast<size_t>(ranks), 1);
  std::vector<double> agreed(static_cast<size_t>(ranks));

  auto update = [&](const Variable& v) -> size_t {
    const size_t end = v.begin() + v.size();
    if (!plan.is_local[v.id()]) {
      // A global element: every process alike, one element at a time (each exchanges).
      if (graph.clustered(v)) return graph.UpdateElements(v.id(), v.begin(), end, scratch);
      for (size_t i = v.begin(); i < end; ++i)
        if (!graph.UpdateElement(v.id(), i, scratch, runner)) return i;
      return end;
    }
    // This process's rows of a local variable, on its threads; then every process agrees on
    // the first element that failed anywhere.
    const size_t first = std::max(v.begin(), own_first), last = std::min(end, own_last);
    std::atomic<size_t> failed{end};
    if (last > first)
      tbb::parallel_for(tbb::blocked_range<size_t>(first, last, kChunk),
                        [&](const tbb::blocked_range<size_t>& range) {
                          const size_t stop = graph.UpdateElements(
                              v.id(), range.begin(), range.end(), thread_scratch.local());
                          if (stop == range.end()) return;
                          size_t seen = failed.load();
                          while (stop < seen && !failed.compare_exchange_weak(seen, stop)) {
                          }
                        });
    agreed[static_cast<size_t>(rank)] = static_cast<double>(failed.load());
    exchange_.AllGatherInPlace(agreed.data(), one_each);
    return static_cast<size_t>(*std::min_element(agreed.begin(), agreed.end()));
  };
  auto free_energy = [&] {
    tbb::parallel_for(size_t{0}, own_blocks.size(), [&](size_t i) {
      values[own_blocks[i]] = graph.FreeEnergyBlock(own_blocks[i], thread_scratch.local());
    });
    for (size_t b : everyone_blocks) values[b] = graph.FreeEnergyBlock(b, scratch);
    // Every process's sharded blocks, in block order within each process.
    double* mine = packed.data() + starts[static_cast<size_t>(rank)];
    for (size_t i = 0; i < own_blocks.size(); ++i) mine[i] = values[own_blocks[i]];
    exchange_.AllGatherInPlace(packed.data(), block_counts);
    std::fill(next.begin(), next.end(), 0);
    for (size_t b = 0; b < plan.block_owner.size(); ++b) {
      const int owner = plan.block_owner[b];
      if (owner < 0) continue;
      const size_t q = static_cast<size_t>(owner);
      values[b] = packed[starts[q] + next[q]++];
    }
    return graph.FreeEnergyFromBlocks(values);
  };
  Result result;
  arena_->arena.execute([&] {
    result = RunSweeps(graph, options_, order, std::move(warnings), update, free_energy);
  });
  return result;
}

void ShardedScheduler::GatherLocals(FactorGraph& graph) const {
  const ShardPlan plan = Plan(graph, exchange_.ranks());
  for (const Variable& v : plan.local) {
    const std::vector<double> own = graph.NaturalParameters(v);
    const size_t stat = own.size() / v.size();
    std::vector<double> all(own.size());
    std::vector<size_t> counts;
    for (size_t q = 0; q + 1 < plan.bounds.size(); ++q)
      counts.push_back((plan.bounds[q + 1] - plan.bounds[q]) * stat);
    const size_t rank = static_cast<size_t>(exchange_.rank());
    const size_t from = plan.bounds[rank] * stat;
    std::copy(own.begin() + static_cast<ptrdiff_t>(from),
              own.begin() + static_cast<ptrdiff_t>(from + counts[rank]),
              all.begin() + static_cast<ptrdiff_t>(from));
    exchange_.AllGatherInPlace(all.data(), counts);
    graph.SetNaturalParameters(v, all);
  }
}

}  // namespace vfe
