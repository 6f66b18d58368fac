// The engine interface: the VMP updates of hidden elements (one at a time, in runs, or in
// blocks), natural-gradient steps, and reading and setting natural parameters.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

namespace {

/// Messages of a plate range longer than this are summed in blocks of this many factors,
/// each block into its own partial sum, the partial sums then added in order (unless the
/// node reads cached sums): the same arithmetic on one thread or many.
constexpr size_t kMessageBlockSize = 16384;

/// The blocks of one long plate range: block b of [begin, end) into partial + b·stat.
class MessageBlocks final : public BlockRunner::Body {
 public:
  MessageBlocks(const AdjacencyEntry& entry, double* partial, int stat)
      : entry_(entry), partial_(partial), stat_(stat) {}
  void operator()(size_t b, Scratch& scratch) const override {
    const size_t begin = entry_.begin + b * kMessageBlockSize;
    const size_t end = std::min(entry_.end, begin + kMessageBlockSize);
    double* sum = partial_ + b * stat_;
    std::fill_n(sum, stat_, 0.0);
    entry_.node->AccumulateMessage(static_cast<int>(entry_.slot), begin, end, entry_.views, sum,
                                   scratch.node);
  }

 private:
  const AdjacencyEntry& entry_;
  double* partial_;
  int stat_;
};

/// The average energy of the same blocks: block b of [begin, end) into partial[b].
class EnergyBlocks final : public BlockRunner::Body {
 public:
  EnergyBlocks(const AdjacencyEntry& entry, double* partial) : entry_(entry), partial_(partial) {}
  void operator()(size_t b, Scratch& scratch) const override {
    const size_t begin = entry_.begin + b * kMessageBlockSize;
    const size_t end = std::min(entry_.end, begin + kMessageBlockSize);
    partial_[b] = entry_.node->AverageEnergy(begin, end, entry_.views, scratch.node);
  }

 private:
  const AdjacencyEntry& entry_;
  double* partial_;
};

/// Runs the blocks one after another on the caller's thread.
class InlineRunner final : public BlockRunner {
 public:
  explicit InlineRunner(Scratch& scratch) : scratch_(scratch) {}
  void Run(size_t count, const Body& body) const override {
    for (size_t b = 0; b < count; ++b) body(b, scratch_);
  }

 private:
  Scratch& scratch_;
};

/// The number of blocks the entry's factors are summed in.
size_t MessageBlockCount(const AdjacencyEntry& e) {
  return (e.end - e.begin + kMessageBlockSize - 1) / kMessageBlockSize;
}

/// Block b of `body` is block first + b of the sum.
class OffsetBody final : public BlockRunner::Body {
 public:
  OffsetBody(const BlockRunner::Body& body, size_t first) : body_(body), first_(first) {}
  void operator()(size_t b, Scratch& scratch) const override { body_(first_ + b, scratch); }

 private:
  const BlockRunner::Body& body_;
  size_t first_;
};

static_assert(kMessageBlockSize == FactorGraph::kRowGrain,
              "rows are split over processes at the blocks of the message sums");

}  // namespace

bool FactorGraph::Impl::ShardedEntry(const AdjacencyEntry& e) const {
  return !row_shard.sharded_plates.empty() && row_shard.sharded_plates[e.plate] &&
         plates[e.plate].bindings[e.slot].shared;
}

bool FactorGraph::Impl::SumsInBlocks(const AdjacencyEntry& e) const {
  // Stacked processes exchange every sum of their rows, cached or not.
  if (row_shard.stacked && ShardedEntry(e)) return true;
  if (e.node->SumsCached()) return false;
  // One factor's message is the same added alone or as a block of one (0 + m = m).
  return e.end - e.begin > 1 || ShardedEntry(e);
}

size_t FactorGraph::Impl::RunMessageBlocks(const AdjacencyEntry& e, size_t count, size_t width,
                                           double* partial, const BlockRunner::Body& body,
                                           Scratch& scratch, const BlockRunner* runner) {
  const bool sharded = ShardedEntry(e);
  const bool stacked = sharded && row_shard.stacked;
  const size_t rank = sharded ? static_cast<size_t>(row_shard.exchange->rank()) : 0;
  size_t own_begin = 0, own_end = count;
  if (sharded && !stacked) {
    // Block b starts at row e.begin + b·kRowGrain; process q owns the blocks that start in
    // its rows [bounds[q], bounds[q + 1]).
    const std::vector<size_t>& bounds = row_shard.bounds;
    auto first_block_at = [&](size_t row) {
      if (row <= e.begin) return size_t{0};
      return std::min(count, (row - e.begin + kMessageBlockSize - 1) / kMessageBlockSize);
    };
    shard_counts.resize(bounds.size() - 1);
    for (size_t q = 0; q + 1 < bounds.size(); ++q) {
      const size_t from = first_block_at(bounds[q]), to = first_block_at(bounds[q + 1]);
      shard_counts[q] = (to - from) * width;
      if (q == rank) {
        own_begin = from;
        own_end = to;
      }
    }
  }
  if (own_end > own_begin) {
    const OffsetBody own(body, own_begin);
    if (runner) {
      runner->Run(own_end - own_begin, own);
    } else {
      InlineRunner(scratch).Run(own_end - own_begin, own);
    }
  }
  if (!sharded) return count;
  size_t all = count;
  if (stacked) {
    // Every process's blocks are its own, as many on each: computed at the front, then moved
    // to this process's place among all of them.
    const size_t ranks = static_cast<size_t>(row_shard.exchange->ranks());
    if (rank > 0)
      std::copy_backward(partial, partial + count * width, partial + (rank + 1) * count * width);
    shard_counts.assign(ranks, count * width);
    all = ranks * count;
  }
  row_shard.exchange->AllGatherInPlace(partial, shard_counts);
  return all;
}

bool FactorGraph::Impl::SetFromMessages(uint32_t v, size_t index, bool out_only,
                                        Scratch& scratch, const BlockRunner* runner) {
  const VariableInfo& info = variables[v];
  const size_t h = info.hidden_ordinal + index;
  double* eta = scratch.eta.data();
  std::fill_n(eta, info.stat_size, 0.0);
  bool any = false;
  for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
    const AdjacencyEntry& e = adjacency[k];
    if (out_only && !e.node->IsOutput(static_cast<int>(e.slot))) continue;
    any = true;
    // A weighted plate's messages to a shared element are summed apart, then scaled.
    const Plate& plate = plates[e.plate];
    const bool weighted = plate.weight != 1.0 && plate.bindings[e.slot].shared;
    double* sum = weighted ? scratch.weighted.data() : eta;
    if (weighted) std::fill_n(sum, info.stat_size, 0.0);
    if (!SumsInBlocks(e)) {
      e.node->AccumulateMessage(static_cast<int>(e.slot), e.begin, e.end, e.views, sum,
                                scratch.node);
    } else {
      const size_t blocks = MessageBlockCount(e);
      double* partial = scratch.partial.data();
      const MessageBlocks body(e, partial, info.stat_size);
      const size_t all = RunMessageBlocks(e, blocks, static_cast<size_t>(info.stat_size),
                                          partial, body, scratch, runner);
      for (size_t b = 0; b < all; ++b)
        for (int i = 0; i < info.stat_size; ++i) sum[i] += partial[b * info.stat_size + i];
    }
    if (weighted)
      for (int i = 0; i < info.stat_size; ++i) eta[i] += plate.weight * sum[i];
  }
  if (!any) return false;
  if (!out_only && steps_on_free_energy[v])
    return StepOnFreeEnergy(v, index, eta, scratch, runner);
  double* moment = moments.data() + info.moment_offset + index * info.stat_size;
  if (!MomentsFromNatural(info.family, info.dim, eta, moment, WorkspaceFor(info, scratch)))
    return false;
  std::copy_n(eta, info.stat_size, natural.data() + info.natural_offset + index * info.stat_size);
  Touch(v);
  return true;
}

double FactorGraph::Impl::LocalFreeEnergy(uint32_t v, size_t index, Scratch& scratch,
                                          const BlockRunner* runner) {
  const VariableInfo& info = variables[v];
  const size_t h = info.hidden_ordinal + index;
  double energy = 0.0;
  for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
    const AdjacencyEntry& e = adjacency[k];
    const Plate& plate = plates[e.plate];
    double u = 0.0;
    if (!SumsInBlocks(e)) {
      u = e.node->AverageEnergy(e.begin, e.end, e.views, scratch.node);
    } else {
      // In the blocks of the message sums, added in order: the same F on any thread count.
      const size_t blocks = MessageBlockCount(e);
      double* partial = scratch.partial.data();
      const EnergyBlocks body(e, partial);
      const size_t all = RunMessageBlocks(e, blocks, 1, partial, body, scratch, runner);
      for (size_t b = 0; b < all; ++b) u += partial[b];
    }
    energy += plate.bindings[e.slot].shared ? plate.weight * u : u;
  }
  const size_t at = index * info.stat_size;
  return energy - EntropyOf(info.family, info.dim, natural.data() + info.natural_offset + at,
                            moments.data() + info.moment_offset + at,
                            WorkspaceFor(info, scratch));
}

bool FactorGraph::Impl::StepOnFreeEnergy(uint32_t v, size_t index, const double* target,
                                         Scratch& scratch, const BlockRunner* runner) {
  const VariableInfo& info = variables[v];
  const size_t stat = info.stat_size;
  double* eta = natural.data() + info.natural_offset + index * stat;
  double* moment = moments.data() + info.moment_offset + index * stat;
  Workspace& ws = WorkspaceFor(info, scratch);
  std::copy_n(eta, stat, scratch.previous.data());
  std::copy_n(moment, stat, scratch.previous_moments.data());
  const double before = LocalFreeEnergy(v, index, scratch, runner);
  // Rounding in the sums of energies must not refuse a step at the fixed point.
  const double slack = 1e-13 * (1.0 + std::abs(before));
  double rho = 1.0;
  for (int halving = 0; halving <= kMaxHalvings; ++halving, rho *= 0.5) {
    for (size_t i = 0; i < stat; ++i)
      eta[i] = rho == 1.0 ? target[i] : (1.0 - rho) * scratch.previous[i] + rho * target[i];
    if (!MomentsFromNatural(info.family, info.dim, eta, moment, ws)) continue;
    Touch(v);  // nodes that cache sums over this variable must see the candidate
    if (LocalFreeEnergy(v, index, scratch, runner) <= before + slack) {
      step_refused[v][index] = 0;
      return true;
    }
  }
  step_refused[v][index] = 1;
  std::copy_n(scratch.previous.data(), stat, eta);
  std::copy_n(scratch.previous_moments.data(), stat, moment);
  Touch(v);
  return true;
}

void FactorGraph::Impl::SizePartialSums(size_t processes) {
  size_t most = 0;
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    for (size_t h = info.hidden_ordinal; h < info.hidden_ordinal + info.size; ++h)
      for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k)
        if (SumsInBlocks(adjacency[k]))
          most = std::max(most, MessageBlockCount(adjacency[k]) *
                                    static_cast<size_t>(info.stat_size));
  }
  most *= processes;
  // Scratch made before stays usable unless it is now too small.
  if (most > max_partial || scratch_key == 0) NewScratchKey();
  max_partial = most;
}

void FactorGraph::Impl::NewScratchKey() {
  static std::atomic<uint64_t> last_key{0};
  scratch_key = last_key.fetch_add(1, std::memory_order_relaxed) + 1;
}

void FactorGraph::Impl::ThrowBadScratch(const Scratch& scratch, const char* what) const {
  if (!finalized) ThrowNotFinalized(what);
  throw GraphError(std::string(what) + ": " +
                   (scratch.made_for == 0
                        ? std::string("the Scratch was not made by MakeScratch (a "
                                      "default-constructed Scratch has no room)")
                        : std::string("the Scratch was made by another graph's MakeScratch, or "
                                      "by this graph's before SetRowShard enlarged it")) +
                   ": use MakeScratch() of this graph");
}

size_t FactorGraph::Impl::UpdateRun(uint32_t v, size_t first, size_t step, size_t count,
                                    bool stop_at_failure, Scratch& scratch) {
  if (steps_on_free_energy[v]) {
    // Each element's step is checked on its own share of F.
    size_t failed = SIZE_MAX;
    for (size_t i = 0; i < count && !(stop_at_failure && failed != SIZE_MAX); ++i)
      if (!SetFromMessages(v, first + i * step, /*out_only=*/false, scratch))
        failed = std::min(failed, first + i * step);
    return failed;
  }
  const VariableInfo& info = variables[v];
  const size_t stat = info.stat_size;
  const size_t h0 = info.hidden_ordinal;
  Workspace& ws = WorkspaceFor(info, scratch);
  double* const moment_of = moments.data() + info.moment_offset;
  double* const natural_of = natural.data() + info.natural_offset;
  size_t failed = SIZE_MAX;
  for (size_t done = 0; done < count && !(stop_at_failure && failed != SIZE_MAX);) {
    const size_t size = std::min(kBlockSize, count - done);
    const size_t head = first + done * step;  // the block's first element
    double* eta = scratch.block_eta.data();
    std::fill_n(eta, size * stat, 0.0);
    // The messages of `head` name the factors; the block's j-th element reads factor + j·step.
    for (size_t k = adjacency_offsets[h0 + head]; k < adjacency_offsets[h0 + head + 1]; ++k) {
      const AdjacencyEntry& e = adjacency[k];
      e.node->AccumulateMessages(static_cast<int>(e.slot), e.begin,
                                 e.begin + (size - 1) * step + 1, step, e.views, eta, stat,
                                 scratch.node);
    }
    // The moments of the proper elements, in stretches (an improper one stays as it was).
    // Consecutive elements take theirs in place; the others through block_moments.
    for (size_t j = 0; j < size;) {
      const size_t at = head + j * step;
      double* out = step == 1 ? moment_of + at * stat : scratch.block_moments.data();
      const size_t proper = MomentsOfRun(info.family, info.dim, size - j, eta + j * stat, out, ws);
      if (step == 1) {
        std::copy_n(eta + j * stat, proper * stat, natural_of + at * stat);
      } else {
        for (size_t i = 0; i < proper; ++i) {
          std::copy_n(out + i * stat, stat, moment_of + (at + i * step) * stat);
          std::copy_n(eta + (j + i) * stat, stat, natural_of + (at + i * step) * stat);
        }
      }
      j += proper;
      if (j == size) break;
      failed = std::min(failed, head + j * step);
      if (stop_at_failure) break;
      ++j;
    }
    done += size;
  }
  Touch(v);
  return failed;
}

Scratch FactorGraph::MakeScratch() const {
  const Impl& g = *impl_;
  g.CheckFinalized("MakeScratch");
  Scratch scratch;
  scratch.by_dim.resize(g.max_dim + 1);
  for (int d : g.dims_in_use) scratch.by_dim[d].Resize(d);
  scratch.node.Resize(g.max_dim);
  scratch.eta.assign(g.max_stat, 0.0);
  scratch.block_eta.assign(Impl::kBlockSize * g.run_stat, 0.0);
  scratch.block_moments.assign(Impl::kBlockSize * g.run_stat, 0.0);
  scratch.partial.assign(g.max_partial, 0.0);
  scratch.weighted.assign(g.max_stat, 0.0);
  scratch.previous.assign(g.max_stat, 0.0);
  scratch.previous_moments.assign(g.max_stat, 0.0);
  scratch.made_for = g.scratch_key;
  return scratch;
}

namespace {

[[noreturn]] void ThrowClusterElement(const FactorGraph& graph, uint32_t variable,
                                      const char* what) {
  throw GraphError(std::string(what) + ": variable '" + graph.variable_name(variable) +
                   "' is a cluster with one joint posterior: update all of its elements "
                   "with UpdateElements");
}

}  // namespace

bool FactorGraph::UpdateElement(uint32_t variable, size_t index, Scratch& scratch) {
  impl_->CheckHiddenElement(variable, index, "UpdateElement");
  impl_->CheckScratch(scratch, "UpdateElement");
  if (impl_->cluster_of[variable] >= 0) ThrowClusterElement(*this, variable, "UpdateElement");
  return impl_->SetFromMessages(variable, index, /*out_only=*/false, scratch);
}

bool FactorGraph::UpdateElement(uint32_t variable, size_t index, Scratch& scratch,
                                const BlockRunner& runner) {
  impl_->CheckHiddenElement(variable, index, "UpdateElement");
  impl_->CheckScratch(scratch, "UpdateElement");
  if (impl_->cluster_of[variable] >= 0) ThrowClusterElement(*this, variable, "UpdateElement");
  return impl_->SetFromMessages(variable, index, /*out_only=*/false, scratch, &runner);
}

size_t FactorGraph::UpdateListedElements(uint32_t variable, const size_t* elements,
                                         size_t count, Scratch& scratch,
                                         const BlockRunner* runner) {
  Impl& g = *impl_;
  g.CheckHiddenRange(variable, 0, 0, "UpdateListedElements");
  g.CheckScratch(scratch, "UpdateListedElements");
  if (g.cluster_of[variable] >= 0) ThrowClusterElement(*this, variable, "UpdateListedElements");
  if (!elements && count > 0)
    throw GraphError("UpdateListedElements: variable '" + g.variables[variable].name +
                     "': no list given (elements is null, count " + std::to_string(count) + ")");
  const size_t h0 = g.variables[variable].hidden_ordinal;
  const size_t size = g.variables[variable].size;
  size_t failed = SIZE_MAX;
  for (size_t i = 0; i < count;) {
    // The longest stretch of the list from elements[i] that follows its colour run. Only its
    // first element needs a check: the run's others lie in its colour run, inside the variable.
    const size_t first = elements[i];
    if (first >= size)
      g.ThrowBadHidden(variable, first, first + 1, /*one_element=*/true, "UpdateListedElements");
    const Impl::ColourRunPlace place = g.colour_run[h0 + first];
    const size_t most = std::min<size_t>(place.left, count - i);
    size_t run = 1;
    while (run < most && elements[i + run] == first + run * place.step) ++run;
    if (run > 1) {
      failed = std::min(failed, g.UpdateRun(variable, first, place.step, run,
                                            /*stop_at_failure=*/false, scratch));
    } else if (!g.SetFromMessages(variable, first, /*out_only=*/false, scratch, runner)) {
      failed = std::min(failed, first);
    }
    i += run;
  }
  return failed;
}

bool FactorGraph::reads_itself(const Variable& v) const {
  if (!impl_->finalized) throw GraphError("reads_itself: finalise the graph first");
  return impl_->reads_itself[impl_->Checked(v, "reads_itself").id()] != 0;
}

bool FactorGraph::updates_in_blocks(const Variable& v) const {
  if (!impl_->finalized) throw GraphError("updates_in_blocks: finalise the graph first");
  return impl_->updates_in_blocks[impl_->Checked(v, "updates_in_blocks").id()] != 0;
}

size_t FactorGraph::UpdateElements(uint32_t variable, size_t begin, size_t end,
                                   Scratch& scratch) {
  Impl& g = *impl_;
  g.CheckHiddenRange(variable, begin, end, "UpdateElements");
  g.CheckScratch(scratch, "UpdateElements");
  if (g.cluster_of[variable] >= 0) {
    Cluster& cluster = g.clusters[g.cluster_of[variable]];
    if (begin != 0 || end != cluster.size)
      throw GraphError("UpdateElements: variable '" + g.variables[variable].name +
                       "' is a cluster with one joint posterior: update all of its " +
                       std::to_string(cluster.size) + " elements together, not [" +
                       std::to_string(begin) + ", " + std::to_string(end) + ")");
    const size_t failed = g.UpdateCluster(cluster, scratch);
    g.Touch(variable);
    return failed == SIZE_MAX ? end : failed;
  }
  if (g.updates_in_blocks[variable] && end - begin > 1) {
    const size_t failed =
        g.UpdateRun(variable, begin, 1, end - begin, /*stop_at_failure=*/true, scratch);
    return failed == SIZE_MAX ? end : failed;
  }
  for (size_t i = begin; i < end; ++i)
    if (!g.SetFromMessages(variable, i, /*out_only=*/false, scratch)) return i;
  return end;
}

size_t FactorGraph::UpdateElementsNaturalGradient(uint32_t variable, size_t begin, size_t end,
                                                   double step, Scratch& scratch) {
  Impl& g = *impl_;
  g.CheckHiddenRange(variable, begin, end, "UpdateElementsNaturalGradient");
  g.CheckScratch(scratch, "UpdateElementsNaturalGradient");
  if (!(step > 0.0 && step <= 1.0))
    throw GraphError("UpdateElementsNaturalGradient: the step must be in (0, 1], got " +
                     FormatNumber(step));
  if (g.cluster_of[variable] >= 0)
    throw GraphError("UpdateElementsNaturalGradient: variable '" + g.variables[variable].name +
                     "' is a cluster; natural-gradient steps apply to mean-field variables");
  std::string plate;
  if (step != 1.0 && g.KeptMessagesReach(variable, &plate))
    throw GraphError("UpdateElementsNaturalGradient: variable '" + g.variables[variable].name +
                     "' is joined to " + plate + ", whose sum-product messages must enter the "
                     "posterior whole; only a step of 1 applies");
  const VariableInfo& info = g.variables[variable];
  const size_t stat = static_cast<size_t>(info.stat_size);
  Workspace& ws = Impl::WorkspaceFor(info, scratch);
  for (size_t i = begin; i < end; ++i) {
    double* eta = g.natural.data() + info.natural_offset + i * stat;
    double* moments = g.moments.data() + info.moment_offset + i * stat;
    std::copy_n(eta, stat, scratch.previous.data());
    if (!g.SetFromMessages(variable, i, /*out_only=*/false, scratch)) return i;
    if (step == 1.0) continue;
    for (size_t k = 0; k < stat; ++k)
      eta[k] = (1.0 - step) * scratch.previous[k] + step * eta[k];
    const bool proper = MomentsFromNatural(info.family, info.dim, eta, moments, ws);
    if (!proper) {
      std::copy_n(scratch.previous.data(), stat, eta);
      MomentsFromNatural(info.family, info.dim, eta, moments, ws);
    }
    g.Touch(variable);
    if (!proper) return i;
  }
  return end;
}

std::vector<double> FactorGraph::NaturalParameters(const Variable& v) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v, "NaturalParameters").id()];
  if (!g.finalized)
    throw GraphError("NaturalParameters: finalise the graph first (variable '" + info.name + "')");
  if (info.observed) throw GraphError("NaturalParameters: " + g.Describe(v.id()) + " is observed");
  const double* eta = g.natural.data() + info.natural_offset + v.begin() * info.stat_size;
  return std::vector<double>(eta, eta + v.size() * info.stat_size);
}

void FactorGraph::SetNaturalParameters(const Variable& v, const std::vector<double>& eta) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v, "SetNaturalParameters").id()];
  if (!g.finalized)
    throw GraphError("SetNaturalParameters: finalise the graph first (variable '" + info.name +
                     "')");
  if (info.observed)
    throw GraphError("SetNaturalParameters: " + g.Describe(v.id()) + " is observed");
  const size_t stat = static_cast<size_t>(info.stat_size);
  if (eta.size() != v.size() * stat)
    throw GraphError("SetNaturalParameters: " + g.Describe(v.id()) + ": expected " +
                     std::to_string(v.size() * stat) + " numbers (" + std::to_string(v.size()) +
                     " elements of " + std::to_string(stat) + "), got " +
                     std::to_string(eta.size()));
  Workspace ws(IsMultivariate(info.family) ? info.dim : 0);
  std::vector<double> moments(eta.size());
  for (size_t i = 0; i < v.size(); ++i)
    if (!MomentsFromNatural(info.family, info.dim, eta.data() + i * stat,
                            moments.data() + i * stat, ws))
      throw ModelError("SetNaturalParameters: " + g.ElementName(v.id(), v.begin() + i) +
                       ": the natural parameters are not a proper " + FamilyName(info.family) +
                       " density");
  std::copy(eta.begin(), eta.end(), g.natural.begin() + info.natural_offset + v.begin() * stat);
  std::copy(moments.begin(), moments.end(),
            g.moments.begin() + info.moment_offset + v.begin() * stat);
  g.Touch(v.id());
  if (g.cluster_of[v.id()] >= 0) g.ResetClusterPairs(g.clusters[g.cluster_of[v.id()]]);
  g.ForgetKeptMessages(v.id());
}

void FactorGraph::Impl::ForgetKeptMessages(uint32_t variable) {
  for (Plate& plate : plates) {
    if (!plate.node->KeepsMessages()) continue;
    for (const Binding& b : plate.bindings)
      if (b.variable == variable) {
        plate.node->ForgetMessages();
        break;
      }
  }
}

bool FactorGraph::Impl::KeptMessagesReach(uint32_t variable, std::string* plate_label) const {
  for (PlateId p = 0; p < plates.size(); ++p) {
    if (!plates[p].node->KeepsMessages()) continue;
    for (const Binding& b : plates[p].bindings)
      if (b.variable == variable) {
        if (plate_label) *plate_label = PlateLabel(p);
        return true;
      }
  }
  return false;
}

void FactorGraph::SetRowShard(RowShard shard) {
  Impl& g = *impl_;
  g.CheckFinalized("SetRowShard");
  if (shard.sharded_plates.empty()) {
    g.row_shard = RowShard();
    return;
  }
  if (!shard.exchange) throw GraphError("SetRowShard: no exchange given");
  const size_t ranks = static_cast<size_t>(shard.exchange->ranks());
  if (shard.sharded_plates.size() != g.plates.size())
    throw GraphError("SetRowShard: " + std::to_string(shard.sharded_plates.size()) +
                     " plate flags for " + std::to_string(g.plates.size()) + " plates");
  if (shard.stacked) {
    g.row_shard = std::move(shard);
    g.SizePartialSums(ranks);  // every process's blocks
    return;
  }
  if (shard.bounds.size() != ranks + 1 || shard.bounds.front() != 0)
    throw GraphError("SetRowShard: expected " + std::to_string(ranks + 1) +
                     " row bounds from 0, found " + std::to_string(shard.bounds.size()));
  for (size_t q = 0; q + 1 < shard.bounds.size(); ++q)
    if (shard.bounds[q] > shard.bounds[q + 1] ||
        (q + 1 < ranks && shard.bounds[q + 1] % kRowGrain != 0))
      throw GraphError("SetRowShard: row bound " + std::to_string(shard.bounds[q + 1]) +
                       " is not a multiple of " + std::to_string(kRowGrain) +
                       " at or after the one before");
  for (PlateId p = 0; p < g.plates.size(); ++p)
    if (shard.sharded_plates[p] && g.plates[p].size > shard.bounds.back())
      throw GraphError("SetRowShard: " + g.PlateLabel(p) + " has " +
                       std::to_string(g.plates[p].size) + " factors, more than the " +
                       std::to_string(shard.bounds.back()) + " rows");
  for (const AdjacencyEntry& e : g.adjacency)
    if (shard.sharded_plates[e.plate] && g.plates[e.plate].bindings[e.slot].shared &&
        e.begin % kRowGrain != 0)
      throw GraphError("SetRowShard: the messages of " + g.PlateLabel(e.plate) +
                       " to a shared element start at factor " + std::to_string(e.begin) +
                       ", not at a multiple of " + std::to_string(kRowGrain));
  g.row_shard = std::move(shard);
  g.SizePartialSums();
}

}  // namespace vfe
