// Stochastic variational inference: minibatch sources and the natural-gradient driver. The
// maths of each update stays in the engine (UpdateElements for the local variables,
// UpdateElementsNaturalGradient for the global ones, plate weights for the N/B scaling); this
// file knows only the order of updates and the step sizes.

#include "vfe/schedulers/svi.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include "schedulers/sweeps.h"
#include "vfe/core/error.h"
#include "vfe/core/format.h"

namespace vfe {

// ---- Sources -------------------------------------------------------------------------------

MatrixMinibatches::MatrixMinibatches(Matrix rows, const Variable& data, size_t batch_size,
                                     uint64_t seed)
    : rows_(std::move(rows)), data_(data), batch_size_(batch_size), seed_(seed) {
  if (batch_size_ < 2 || batch_size_ > static_cast<size_t>(rows_.rows()))
    throw GraphError("MatrixMinibatches: the batch size must be in [2, " +
                     std::to_string(rows_.rows()) + "] (the number of rows), got " +
                     std::to_string(batch_size_));
  if (data_.size() != batch_size_)
    throw GraphError("MatrixMinibatches: the data variable has " + std::to_string(data_.size()) +
                     " elements, but the batch size is " + std::to_string(batch_size_));
  batch_.resize(static_cast<Eigen::Index>(batch_size_), rows_.cols());
  Rewind();
}

void MatrixMinibatches::Shuffle() {
  order_.resize(static_cast<size_t>(rows_.rows()));
  std::iota(order_.begin(), order_.end(), size_t{0});
  std::mt19937_64 rng(seed_ + 0x9E3779B97F4A7C15ULL * (pass_ + 1));
  std::shuffle(order_.begin(), order_.end(), rng);
}

void MatrixMinibatches::Rewind() {
  pass_ = 0;
  position_ = 0;
  Shuffle();
}

void MatrixMinibatches::Next(FactorGraph& graph) {
  for (size_t i = 0; i < batch_size_; ++i) {
    if (position_ == order_.size()) {
      ++pass_;
      position_ = 0;
      Shuffle();
    }
    batch_.row(static_cast<Eigen::Index>(i)) = rows_.row(static_cast<Eigen::Index>(order_[position_++]));
  }
  if (rows_.cols() == 1) {
    graph.SetObservedValues(data_, std::vector<double>(batch_.data(), batch_.data() + batch_.size()));
  } else {
    graph.SetObservedRows(data_, batch_);
  }
}

// ---- The driver ----------------------------------------------------------------------------

void SviOptions::Validate() const {
  if (steps < 1) throw OptionsError("steps must be >= 1, got 0");
  if (!(forgetting_rate > 0.5 && forgetting_rate <= 1.0))
    throw OptionsError("forgetting_rate must be in (0.5, 1], got " + FormatNumber(forgetting_rate));
  if (!(delay >= 0.0) || !std::isfinite(delay))
    throw OptionsError("delay must be a finite number >= 0, got " + FormatNumber(delay));
  if (local_sweeps < 1)
    throw OptionsError("local_sweeps must be >= 1, got " + std::to_string(local_sweeps));
  if (!(local_tolerance >= 0.0) || !std::isfinite(local_tolerance))
    throw OptionsError("local_tolerance must be a finite number >= 0, got " +
                       FormatNumber(local_tolerance));
}

StochasticVariationalInference::StochasticVariationalInference(SviOptions options)
    : options_(std::move(options)) {
  options_.Validate();
}

namespace {

/// The roles in one minibatch graph: which variables are local, which plates read the data.
struct Roles {
  std::vector<Variable> local, global;
  std::vector<char> is_local;  ///< by variable id
  std::vector<char> data_plate;
  std::vector<std::vector<double>> local_start;  ///< natural parameters at Finalize
  double scale = 1.0;                            ///< N / B
};

Roles FindRoles(FactorGraph& graph, const std::vector<Variable>& local,
                const MinibatchSource& source) {
  if (!graph.finalized()) throw GraphError("SVI: finalise the minibatch graph first");
  Roles roles;
  roles.is_local.assign(graph.num_variables(), 0);
  const size_t batch = source.batch_size();
  for (const Variable& v : local) {
    const std::string& name = graph.variable_name(v.id());
    if (graph.observed(v)) throw GraphError("SVI: local variable '" + name + "' is observed");
    if (v.begin() != 0 || v.size() != batch)
      throw GraphError("SVI: local variable '" + name + "' must be a whole variable of " +
                       std::to_string(batch) + " elements (one per data point), got " +
                       std::to_string(v.size()));
    roles.is_local[v.id()] = 1;
    roles.local.push_back(v);
    roles.local_start.push_back(graph.NaturalParameters(v));
  }
  for (const Variable& v : graph.HiddenVariables()) {
    if (graph.clustered(v))
      throw GraphError("SVI: variable '" + graph.variable_name(v.id()) +
                       "' is a cluster; SVI takes mean-field models");
    if (!roles.is_local[v.id()]) roles.global.push_back(v);
  }
  if (source.data().size() != batch)
    throw GraphError("SVI: the data variable has " + std::to_string(source.data().size()) +
                     " elements, but the batch size is " + std::to_string(batch));
  roles.scale = static_cast<double>(source.size()) / static_cast<double>(batch);
  roles.data_plate.assign(graph.num_plates(), 0);
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    const size_t slots = graph.node(p).slot_names().size();
    for (size_t s = 0; s < slots; ++s) {
      const uint32_t id = graph.FactorArgument(p, 0, s).id();
      if (roles.is_local[id] || id == source.data().id()) roles.data_plate[p] = 1;
    }
  }
  return roles;
}

/// Local sweeps from the local posteriors' starting point until the minibatch's F settles;
/// returns the sweeps run and leaves the minibatch's free-energy terms in `terms`.
int SolveLocal(FactorGraph& graph, const Roles& roles, const SviOptions& options,
               Scratch& scratch, FactorGraph::FreeEnergyTerms& terms) {
  for (size_t i = 0; i < roles.local.size(); ++i)
    graph.SetNaturalParameters(roles.local[i], roles.local_start[i]);
  double previous = NAN;
  int sweeps = 0;
  while (sweeps < options.local_sweeps) {
    for (const Variable& v : roles.local) {
      const size_t failed = graph.UpdateElements(v.id(), 0, v.size(), scratch);
      if (failed != v.size())
        throw ModelError("SVI: the update of " + graph.ElementName(v[failed]) +
                         " gave an improper posterior");
    }
    ++sweeps;
    terms = graph.FreeEnergyParts(scratch);
    double f = -terms.entropy;
    for (double u : terms.plate_energy) f += u;
    if (sweeps > 1 && std::abs(f - previous) <= options.local_tolerance * std::abs(f)) break;
    previous = f;
  }
  return sweeps;
}

/// The global part of F (global plates' energies minus global entropies) and the data part
/// (data plates' energies minus local entropies) of one minibatch's terms.
void SplitTerms(const FactorGraph::FreeEnergyTerms& terms, const Roles& roles, double& global,
                double& data) {
  global = data = 0.0;
  for (size_t p = 0; p < terms.plate_energy.size(); ++p)
    (roles.data_plate[p] ? data : global) += terms.plate_energy[p];
  for (size_t v = 0; v < terms.variable_entropy.size(); ++v)  // 0 for observed variables
    (roles.is_local[v] ? data : global) -= terms.variable_entropy[v];
}

/// The sum of every process's `value`, added in process order (the same on every process).
double SumOverProcesses(const ShardExchange& exchange, double value, std::vector<double>& shares) {
  shares[static_cast<size_t>(exchange.rank())] = value;
  exchange.AllGatherInPlace(shares.data(), std::vector<size_t>(shares.size(), 1));
  double total = 0.0;
  for (double share : shares) total += share;
  return total;
}

}  // namespace

SviResult StochasticVariationalInference::Run(FactorGraph& graph,
                                              const std::vector<Variable>& local,
                                              MinibatchSource& source) const {
  const auto start = std::chrono::steady_clock::now();
  Roles roles = FindRoles(graph, local, source);
  // Over processes: N is every process's rows (checked before the graph changes); the data
  // plates' blocks are stacked.
  const ShardExchange* exchange = options_.exchange;
  std::vector<double> shares;
  if (exchange) {
    const size_t ranks = static_cast<size_t>(exchange->ranks());
    const size_t rank = static_cast<size_t>(exchange->rank());
    std::vector<double> sizes(2 * ranks);
    sizes[2 * rank] = static_cast<double>(source.size());
    sizes[2 * rank + 1] = static_cast<double>(source.batch_size());
    exchange->AllGatherInPlace(sizes.data(), std::vector<size_t>(ranks, 2));
    double rows = 0.0;
    for (size_t q = 0; q < ranks; ++q) {
      if (sizes[2 * q + 1] != sizes[1])
        throw GraphError("SVI over processes: process " + std::to_string(q) + " has minibatches of " +
                         FormatNumber(sizes[2 * q + 1]) + " points, process 0 of " +
                         FormatNumber(sizes[1]) + "; every process must use the same size");
      rows += sizes[2 * q];
    }
    roles.scale = rows / (static_cast<double>(ranks) * static_cast<double>(source.batch_size()));
    shares.resize(ranks);
  }
  std::vector<double> saved_weights(graph.num_plates());
  for (PlateId p = 0; p < graph.num_plates(); ++p) {
    saved_weights[p] = graph.plate_weight(p);
    if (roles.data_plate[p]) graph.SetPlateWeight(p, roles.scale);
  }
  std::optional<RowShardGuard> end_shard;
  if (exchange) {
    graph.SetRowShard({{}, roles.data_plate, exchange, true});
    end_shard.emplace(graph);
  }
  Scratch scratch = graph.MakeScratch();
  FactorGraph::FreeEnergyTerms terms;
  SviResult result;
  try {
    for (size_t t = 0; t < options_.steps; ++t) {
      source.Next(graph);
      SviStep step;
      step.step = t + 1;
      step.local_sweeps = SolveLocal(graph, roles, options_, scratch, terms);
      double global = 0.0, data = 0.0;
      SplitTerms(terms, roles, global, data);
      if (exchange) data = SumOverProcesses(*exchange, data, shares);
      step.free_energy_estimate = global + roles.scale * data;
      step.step_size = std::pow(static_cast<double>(t) + options_.delay, -options_.forgetting_rate);
      step.step_size = std::min(1.0, step.step_size);
      for (const Variable& v : roles.global) {
        const size_t failed =
            graph.UpdateElementsNaturalGradient(v.id(), 0, v.size(), step.step_size, scratch);
        if (failed != v.size())
          throw ModelError("SVI: the update of " + graph.ElementName(v[failed]) +
                           " gave an improper posterior at step " + std::to_string(t + 1));
      }
      step.elapsed_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      result.free_energy_estimate.push_back(step.free_energy_estimate);
      result.steps = t + 1;
      if (options_.callback && !options_.callback(step)) break;
    }
  } catch (...) {
    for (PlateId p = 0; p < graph.num_plates(); ++p) graph.SetPlateWeight(p, saved_weights[p]);
    throw;
  }
  for (PlateId p = 0; p < graph.num_plates(); ++p) graph.SetPlateWeight(p, saved_weights[p]);
  result.inference_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

double StochasticVariationalInference::FullFreeEnergy(FactorGraph& graph,
                                                      const std::vector<Variable>& local,
                                                      MinibatchSource& source) const {
  const Roles roles = FindRoles(graph, local, source);
  const size_t batch = source.batch_size();
  if (source.size() % batch != 0)
    throw GraphError("SVI: the full free energy needs the batch size to divide the data size; " +
                     std::to_string(batch) + " does not divide " + std::to_string(source.size()));
  Scratch scratch = graph.MakeScratch();
  FactorGraph::FreeEnergyTerms terms;
  source.Rewind();
  double global = 0.0, data_total = 0.0;
  for (size_t b = 0; b < source.size() / batch; ++b) {
    source.Next(graph);
    SolveLocal(graph, roles, options_, scratch, terms);
    double data = 0.0;
    SplitTerms(terms, roles, global, data);
    data_total += data;
  }
  source.Rewind();
  if (options_.exchange) {
    std::vector<double> shares(static_cast<size_t>(options_.exchange->ranks()));
    data_total = SumOverProcesses(*options_.exchange, data_total, shares);
  }
  return global + data_total;
}

}  // namespace vfe
