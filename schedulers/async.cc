// The asynchronous scheduler: change-driven updates of blocks of elements on a flow graph.
//
// Design (why it is free of data races by construction):
//  - Blocks. The elements of the order are split into blocks: a variable whose elements no
//    factor joins (FactorGraph::updates_in_blocks) into runs of consecutive elements, any
//    other variable into runs of one colour class (FactorGraph::ColourClasses), so that no
//    two elements of one block share a factor. Blocks are numbered in the parallel
//    scheduler's sweep order: variables as in the order, then colours, then runs.
//  - Dependencies. Two blocks depend on each other when an element of one shares a factor
//    with an element of the other (FactorGraph::HiddenNeighbours): an update of either reads
//    what the other writes. For every such pair the flow graph has an edge from the block
//    numbered first to the other. The edges orient the conflict graph by a total order, so
//    the flow graph is acyclic, and two blocks that conflict are never run at the same time:
//    one of them waits for the other's continue message. Blocks that share no factor run
//    concurrently, with no barrier between colours or variables.
//  - Rounds. One round is one pass of messages through the flow graph: every block is
//    offered once, after the blocks it depends on that come before it. A round ends when the
//    flow graph is idle (wait_for_all), and only then is F evaluated, so it never reads a
//    posterior that is being written.
//  - Change. Each block keeps the moments its neighbours were last told about. After an
//    update it measures how far its moments moved from them (AsyncOptions::threshold); past
//    the threshold it tells its neighbours, which raises their flags: a neighbour later in
//    the round updates in this round (its edge makes it run after the block), one earlier in
//    the next. A block whose flag is down skips its update: its inputs have not moved since
//    its last update. A round that leaves every flag down is quiescent and ends the run.
//    Flags are atomic, because neighbours that share no factor with each other may raise the
//    same block's flag at once; all other shared state is written by one block at a time.
// Each update reads the state it would read in the one-thread order (its predecessors in the
// flow graph are exactly its neighbours that come before it), so the result does not depend on
// the thread count. Nothing in a flow-graph body throws: failures are recorded and reported
// after the round.
#include "vfe/schedulers/async.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/flow_graph.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "schedulers/parallel_blocks.h"
#include "schedulers/sweeps.h"
#include "vfe/core/format.h"

namespace vfe {
namespace {

/// The most elements of one block: small enough for two to eight threads to find blocks
/// that share no factor, large enough to cover a flow-graph message (about a microsecond).
constexpr size_t kBlockElements = 512;
constexpr uint32_t kNoBlock = UINT32_MAX;


/// A block of elements of one variable that no factor joins.
struct Block {
  Variable variable;              ///< the whole variable (elements are indices into it)
  std::vector<size_t> elements;   ///< increasing
  bool consecutive = false;       ///< elements[0] .. elements.back() without gaps
  bool in_blocks = false;         ///< its variable updates in blocks (UpdateElements)
  bool reads_itself = false;      ///< its messages read its own posterior (reads_itself)
  size_t told_offset = 0;         ///< where its told moments start
  int stat_size = 0;
  std::vector<uint32_t> neighbours;  ///< blocks sharing a factor with it, increasing
};

/// The blocks of a run and everything they share; built once per Run.
class Plan {
 public:
  Plan(FactorGraph& graph, const std::vector<Variable>& order) : graph_(graph) {
    MakeBlocks(order);
    FindNeighbours();
  }
  std::vector<Block>& blocks() { return blocks_; }
  size_t told_size() const { return told_size_; }

 private:
  void MakeBlocks(const std::vector<Variable>& order) {
    // By variable id: the block of each element (kNoBlock: not in the order).
    const std::vector<Variable> hidden = graph_.HiddenVariables();
    block_of_.resize(graph_.num_variables());
    std::vector<Variable> whole_of(graph_.num_variables());
    for (const Variable& v : hidden) {
      block_of_[v.id()].assign(v.size(), kNoBlock);
      whole_of[v.id()] = v;
    }
    for (const Variable& run : order) {
      const Variable whole = whole_of[run.id()];
      const bool in_blocks = graph_.updates_in_blocks(run);
      const int stat = StatSize(graph_.family(run), graph_.dim(run));
      std::vector<uint32_t>& owner = block_of_[run.id()];
      // A cluster (one joint posterior) is one block: a sum-product pass over all of it.
      const std::vector<std::vector<size_t>> classes =
          graph_.clustered(run) ? std::vector<std::vector<size_t>>{} : graph_.ColourClasses(run);
      if (graph_.clustered(run) && owner.front() == kNoBlock) {
        Block block;
        block.variable = whole;
        block.elements.resize(whole.size());
        for (size_t i = 0; i < whole.size(); ++i) block.elements[i] = i;
        block.consecutive = true;
        block.in_blocks = true;
        block.stat_size = stat;
        block.told_offset = told_size_;
        told_size_ += block.elements.size() * static_cast<size_t>(stat);
        for (size_t i : block.elements) owner[i] = static_cast<uint32_t>(blocks_.size());
        blocks_.push_back(std::move(block));
      }
      for (const std::vector<size_t>& colour : classes) {
        // An element the order names twice belongs to the block of its first mention.
        std::vector<size_t> fresh;
        for (size_t i : colour)
          if (owner[i] == kNoBlock) fresh.push_back(i);
        for (size_t first = 0; first < fresh.size(); first += kBlockElements) {
          Block block;
          block.variable = whole;
          block.elements.assign(fresh.begin() + first,
                                fresh.begin() + std::min(fresh.size(), first + kBlockElements));
          block.consecutive =
              block.elements.back() - block.elements.front() + 1 == block.elements.size();
          block.in_blocks = in_blocks && block.consecutive;
          block.reads_itself = graph_.reads_itself(whole);
          block.stat_size = stat;
          block.told_offset = told_size_;
          told_size_ += block.elements.size() * static_cast<size_t>(stat);
          for (size_t i : block.elements) owner[i] = static_cast<uint32_t>(blocks_.size());
          blocks_.push_back(std::move(block));
        }
      }
    }
  }

  void FindNeighbours() {
    // Marks the blocks already listed for block b (mark[c] == b), so each appears once.
    std::vector<uint32_t> mark(blocks_.size(), kNoBlock);
    for (uint32_t b = 0; b < blocks_.size(); ++b) {
      Block& block = blocks_[b];
      auto add_range = [&](const FactorGraph::ElementRange& range) {
        const std::vector<uint32_t>& owner = block_of_[range.variable];
        for (size_t i = range.begin; i < range.end; ++i) {
          const uint32_t c = owner[i];
          if (c == kNoBlock) continue;
          if (c != b && mark[c] != b) {
            mark[c] = b;
            block.neighbours.push_back(c);
          }
          // The rest of a consecutive block adds nothing new.
          if (blocks_[c].consecutive) i = std::max(i, blocks_[c].elements.back());
        }
      };
      if (block.consecutive) {
        const Variable run = block.variable.Slice(block.elements.front(),
                                                  block.elements.back() + 1);
        for (const FactorGraph::ElementRange& r : graph_.HiddenNeighbours(run)) add_range(r);
      } else {
        for (size_t i : block.elements)
          for (const FactorGraph::ElementRange& r : graph_.HiddenNeighbours(block.variable[i]))
            add_range(r);
      }
      std::sort(block.neighbours.begin(), block.neighbours.end());
    }
  }

  FactorGraph& graph_;
  std::vector<Block> blocks_;
  std::vector<std::vector<uint32_t>> block_of_;
  size_t told_size_ = 0;
};

/// How far moments moved from the ones told: max_k |m_k − t_k| / max(1, |t_k|).
double MomentChange(const double* moments, const double* told, int size) {
  double change = 0.0;
  for (int k = 0; k < size; ++k) {
    const double d = std::abs(moments[k] - told[k]) / std::max(1.0, std::abs(told[k]));
    // A NaN counts as a change (and is then caught by F).
    if (!(d <= change)) change = d;
  }
  return change;
}

/// The state of one run that the flow-graph bodies share.
class Rounds {
 public:
  Rounds(FactorGraph& graph, Plan& plan, const AsyncOptions& async)
      : graph_(graph),
        blocks_(plan.blocks()),
        async_(async),
        told_(plan.told_size()),
        flags_(new std::atomic<bool>[plan.blocks().size()]),
        scratch_([&graph] { return graph.MakeScratch(); }),
        sum_scratch_([&graph] { return graph.MakeScratch(); }),
        message_blocks_(sum_scratch_) {
    // Every block starts flagged (its first update is due) with its moments as told.
    for (size_t b = 0; b < blocks_.size(); ++b) {
      flags_[b].store(true, std::memory_order_relaxed);
      Tell(blocks_[b]);
    }
  }

  /// One block's turn in a round: updates it if flagged, then tells its neighbours if it
  /// moved past the threshold. Runs in a flow-graph body: never throws.
  void Turn(uint32_t b) {
    Block& block = blocks_[b];
    if (failed_.load(std::memory_order_relaxed) || capped_.load(std::memory_order_relaxed))
      return;
    if (!flags_[b].load(std::memory_order_relaxed)) return;
    const int64_t count = static_cast<int64_t>(block.elements.size());
    if (async_.max_updates > 0 &&
        updates_.fetch_add(count, std::memory_order_relaxed) + count > async_.max_updates) {
      capped_.store(true, std::memory_order_relaxed);  // the block stays flagged
      return;
    }
    // Lowered before the update: a neighbour that changes later raises it again.
    flags_[b].store(false, std::memory_order_relaxed);
    Scratch& scratch = scratch_.local();
    const uint32_t id = block.variable.id();
    size_t failed_at = SIZE_MAX;
    if (block.in_blocks) {
      const size_t end = block.elements.back() + 1;
      const size_t stop = graph_.UpdateElements(id, block.elements.front(), end, scratch);
      if (stop != end) failed_at = stop;
    } else {
      // Runs of the block's colour are updated together (UpdateListedElements).
      failed_at = graph_.UpdateListedElements(id, block.elements.data(), block.elements.size(),
                                              scratch, &message_blocks_);
    }
    if (failed_at != SIZE_MAX) {
      RecordFailure(b, failed_at);
      return;
    }
    if (async_.max_updates == 0) updates_.fetch_add(count, std::memory_order_relaxed);
    bool moved = false;
    for (size_t j = 0; j < block.elements.size() && !moved; ++j)
      moved = !(MomentChange(graph_.Moments(block.variable[block.elements[j]]),
                             &told_[block.told_offset + j * block.stat_size],
                             block.stat_size) <= async_.threshold);  // NaN: moved
    if (!moved) return;
    Tell(block);
    for (uint32_t c : block.neighbours) flags_[c].store(true, std::memory_order_relaxed);
    // Its own move changes its messages: it is due again next round.
    if (block.reads_itself) flags_[b].store(true, std::memory_order_relaxed);
  }

  /// True when some block is flagged: a change is pending for the next round.
  bool Pending() const {
    for (size_t b = 0; b < blocks_.size(); ++b)
      if (flags_[b].load(std::memory_order_relaxed)) return true;
    return false;
  }
  bool capped() const { return capped_.load(); }
  bool failed() const { return failed_.load(); }
  /// "x[3]": the element whose update failed.
  const std::string& failure() const { return failure_; }
  Family failed_family() const { return failed_family_; }
  tbb::enumerable_thread_specific<Scratch>& scratch() { return scratch_; }

 private:
  void Tell(const Block& block) {
    double* told = &told_[block.told_offset];
    for (size_t i : block.elements) {
      told = std::copy_n(graph_.Moments(block.variable[i]), block.stat_size, told);
    }
  }

  void RecordFailure(uint32_t b, size_t element) {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    // Of concurrent failures, the one of the block first in the order is reported.
    if (failed_.load() && b >= failed_block_) return;
    failed_block_ = b;
    failure_ = graph_.ElementName(blocks_[b].variable[element]);
    failed_family_ = graph_.family(blocks_[b].variable);
    failed_.store(true);
  }

  FactorGraph& graph_;
  std::vector<Block>& blocks_;
  const AsyncOptions& async_;
  std::vector<double> told_;  ///< the moments each block last told its neighbours
  std::unique_ptr<std::atomic<bool>[]> flags_;  ///< by block: an update is due
  tbb::enumerable_thread_specific<Scratch> scratch_;
  tbb::enumerable_thread_specific<Scratch> sum_scratch_;  ///< for the long message sums
  ParallelBlocks message_blocks_;
  std::atomic<int64_t> updates_{0};
  std::atomic<bool> capped_{false};
  std::atomic<bool> failed_{false};
  std::mutex failure_mutex_;
  uint32_t failed_block_ = kNoBlock;
  std::string failure_;
  Family failed_family_ = Family::kGaussian;
};

}  // namespace

void AsyncOptions::Validate() const {
  if (threads < 0)
    throw OptionsError("threads must be >= 0 (0: every core), got " + std::to_string(threads));
  if (!(threshold >= 0) || !std::isfinite(threshold))
    throw OptionsError("threshold must be a finite number >= 0, got " + FormatNumber(threshold));
  if (max_updates < 0)
    throw OptionsError("max_updates must be >= 0 (0: no cap), got " +
                       std::to_string(max_updates));
}

struct AsyncScheduler::Arena {
  explicit Arena(int threads) : arena(threads) {}
  tbb::task_arena arena;
};

AsyncScheduler::AsyncScheduler(SchedulerOptions options, AsyncOptions async)
    : options_(std::move(options)), async_(async) {
  options_.Validate();
  async_.Validate();
  arena_ = std::make_unique<Arena>(async_.threads == 0 ? tbb::info::default_concurrency()
                                                       : async_.threads);
}

AsyncScheduler::~AsyncScheduler() = default;

int AsyncScheduler::threads() const { return arena_->arena.max_concurrency(); }

Result AsyncScheduler::Run(FactorGraph& graph) const {
  std::vector<std::string> warnings;
  const std::vector<Variable> order = SweepOrder(graph, options_, warnings);
  // The plan's building counts in the time of the run.
  const auto start = std::chrono::steady_clock::now();
  Plan plan(graph, order);
  Rounds rounds(graph, plan, async_);
  std::vector<double> energy_blocks(graph.num_free_energy_blocks());
  auto free_energy = [&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, energy_blocks.size(), 1),
                      [&](const tbb::blocked_range<size_t>& range) {
                        Scratch& local = rounds.scratch().local();
                        for (size_t b = range.begin(); b != range.end(); ++b)
                          energy_blocks[b] = graph.FreeEnergyBlock(b, local);
                      });
    return graph.FreeEnergyFromBlocks(energy_blocks);
  };

  Result result;
  arena_->arena.execute([&] {
    // Built inside the arena, so that the flow graph's tasks run on its threads.
    using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
    tbb::flow::graph flow;
    tbb::flow::broadcast_node<tbb::flow::continue_msg> begin_round(flow);
    std::vector<std::unique_ptr<Node>> nodes;
    std::vector<Block>& blocks = plan.blocks();
    nodes.reserve(blocks.size());
    for (uint32_t b = 0; b < blocks.size(); ++b)
      nodes.push_back(std::make_unique<Node>(flow, [&rounds, b](const tbb::flow::continue_msg&) {
        rounds.Turn(b);
        return tbb::flow::continue_msg();
      }));
    for (uint32_t b = 0; b < blocks.size(); ++b) {
      bool first = true;  // no neighbour before it: it starts the round
      for (uint32_t c : blocks[b].neighbours) {
        if (c < b) {
          tbb::flow::make_edge(*nodes[c], *nodes[b]);
          first = false;
        }
      }
      if (first) tbb::flow::make_edge(begin_round, *nodes[b]);
    }

    auto round = [&](int number) {
      begin_round.try_put(tbb::flow::continue_msg());
      flow.wait_for_all();
      if (rounds.failed())
        return StepOutcome::Failed(ImproperPosteriorText(rounds.failure(),
                                                         rounds.failed_family()));
      // RunLoop applies these ends once the round's F is recorded and the callback has seen it.
      if (rounds.capped())
        return StepOutcome::Finished(Termination::kMaxIterations,
                                     "stopped at the cap of " +
                                         std::to_string(async_.max_updates) +
                                         " element updates, in round " + std::to_string(number));
      if (!rounds.Pending())
        return StepOutcome::Finished(Termination::kConverged,
                                     "quiescent after " + kRoundWords.Count(number) +
                                         ": no posterior moved by more than the threshold (" +
                                         FormatNumber(async_.threshold) + ")");
      return StepOutcome::Done();
    };
    LoopRules rules(options_.max_iterations, options_.tolerance, options_.callback, kRoundWords);
    rules.warnings = std::move(warnings);
    rules.mean_field = EveryUpdateLowersF(graph);
    result = RunLoop(rules, start, round, free_energy);
  });
  AddEndOfRunWarnings(graph, result);
  // The time of the run includes taking the flow graph down.
  result.inference_ms = ElapsedMs(start);
  return result;
}

}  // namespace vfe
