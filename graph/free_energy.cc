// The free energy: its blocks (plates' average energies and variables' entropies), and
// their sum in a fixed order.

#include <algorithm>
#include <vector>

#include "graph/factor_graph_impl.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

void FactorGraph::Impl::SplitFreeEnergyBlocks() {
  free_energy_blocks.clear();
  for (PlateId p = 0; p < plates.size(); ++p) {
    const Plate& plate = plates[p];
    const size_t step = plate.node->SumsCached() ? plate.size : kFreeEnergyBlockSize;
    for (size_t begin = 0; begin < plate.size; begin += step)
      free_energy_blocks.push_back({false, p, begin, std::min(plate.size, begin + step)});
  }
  for (uint32_t v : hidden_ids)
    for (size_t begin = 0; begin < variables[v].size; begin += kFreeEnergyBlockSize)
      free_energy_blocks.push_back(
          {true, v, begin, std::min(variables[v].size, begin + kFreeEnergyBlockSize)});
}

double FactorGraph::Impl::EvaluateBlock(const EnergyBlock& block, Scratch& scratch) const {
  if (!block.entropy) {
    const Plate& plate = plates[block.index];
    return plate.node->AverageEnergy(block.begin, block.end, plate.views.data(), scratch.node);
  }
  const VariableInfo& info = variables[block.index];
  const double* eta = natural.data() + info.natural_offset + block.begin * info.stat_size;
  const double* moment = moments.data() + info.moment_offset + block.begin * info.stat_size;
  Workspace& ws = WorkspaceFor(info, scratch);
  double entropy = 0.0;
  for (size_t i = block.begin; i < block.end; ++i, eta += info.stat_size, moment += info.stat_size)
    entropy += EntropyOf(info.family, info.dim, eta, moment, ws);
  if (cluster_of[block.index] >= 0) {
    // The Bethe entropy of a tree: Σ H[q_i] − Σ I(x_c; x_parent).
    for (size_t i = block.begin; i < block.end; ++i)
      entropy -= mutual_information[info.hidden_ordinal + i];
  }
  return entropy;
}

template <class Value>
double FactorGraph::Impl::CombineBlocks(Value value, std::vector<double>* plate_energy,
                                        double* entropy_out) const {
  double energy = 0.0, entropy = 0.0, plate_sum = 0.0;
  for (size_t b = 0; b < free_energy_blocks.size(); ++b) {
    const EnergyBlock& block = free_energy_blocks[b];
    if (block.entropy) {
      entropy += value(b);
      continue;
    }
    plate_sum += value(b);
    const bool last_of_plate = b + 1 == free_energy_blocks.size() ||
                               free_energy_blocks[b + 1].entropy ||
                               free_energy_blocks[b + 1].index != block.index;
    if (!last_of_plate) continue;
    energy += plate_sum;
    if (plate_energy) plate_energy->push_back(plate_sum);
    plate_sum = 0.0;
  }
  if (entropy_out) *entropy_out = entropy;
  return energy - entropy;
}

size_t FactorGraph::num_free_energy_blocks() const {
  impl_->CheckFinalized("num_free_energy_blocks");
  return impl_->free_energy_blocks.size();
}

FactorGraph::FreeEnergyBlockSpan FactorGraph::FreeEnergyBlockSpanOf(size_t block) const {
  if (block >= impl_->free_energy_blocks.size())
    impl_->ThrowBadBlock(block, "FreeEnergyBlockSpanOf");
  const EnergyBlock& b = impl_->free_energy_blocks[block];
  return {b.entropy, b.index, b.begin, b.end};
}

double FactorGraph::FreeEnergyBlock(size_t block, Scratch& scratch) const {
  // There are no blocks before Finalize: one compare covers both errors.
  if (block >= impl_->free_energy_blocks.size()) impl_->ThrowBadBlock(block, "FreeEnergyBlock");
  impl_->CheckScratch(scratch, "FreeEnergyBlock");
  return impl_->EvaluateBlock(impl_->free_energy_blocks[block], scratch);
}

double FactorGraph::FreeEnergyBlockPosition(size_t block) const {
  const Impl& g = *impl_;
  if (block >= g.free_energy_blocks.size()) g.ThrowBadBlock(block, "FreeEnergyBlockPosition");
  const EnergyBlock& b = g.free_energy_blocks[block];
  const size_t middle = b.begin + (b.end - b.begin) / 2;
  if (b.entropy)
    return static_cast<double>(middle) / static_cast<double>(g.variables[b.index].size);
  const Plate& plate = g.plates[b.index];
  const Binding* chosen = nullptr;
  for (const Binding& binding : plate.bindings) {
    if (binding.shared || g.variables[binding.variable].constant) continue;
    if (!g.variables[binding.variable].observed) {
      chosen = &binding;
      break;
    }
    if (!chosen) chosen = &binding;
  }
  if (!chosen) return 0.0;
  return static_cast<double>(chosen->begin + middle) /
         static_cast<double>(g.variables[chosen->variable].size);
}

double FactorGraph::FreeEnergyFromBlocks(const std::vector<double>& values) const {
  impl_->CheckFinalized("FreeEnergyFromBlocks");
  if (values.size() != impl_->free_energy_blocks.size())
    throw GraphError("FreeEnergyFromBlocks: " + std::to_string(values.size()) +
                     " values for " + std::to_string(impl_->free_energy_blocks.size()) +
                     " blocks");
  return impl_->CombineBlocks([&](size_t b) { return values[b]; }, nullptr, nullptr);
}

FactorGraph::FreeEnergyTerms FactorGraph::FreeEnergyParts(Scratch& scratch) const {
  const Impl& g = *impl_;
  g.CheckFinalized("FreeEnergyParts");
  g.CheckScratch(scratch, "FreeEnergyParts");
  FreeEnergyTerms terms;
  terms.variable_entropy.assign(g.variables.size(), 0.0);
  g.CombineBlocks(
      [&](size_t b) {
        const EnergyBlock& block = g.free_energy_blocks[b];
        const double value = g.EvaluateBlock(block, scratch);
        if (block.entropy) terms.variable_entropy[block.index] += value;
        return value;
      },
      &terms.plate_energy, &terms.entropy);
  return terms;
}

double FactorGraph::FreeEnergy(Scratch& scratch) const {
  const Impl& g = *impl_;
  g.CheckFinalized("FreeEnergy");
  g.CheckScratch(scratch, "FreeEnergy");
  return g.CombineBlocks(
      [&](size_t b) { return g.EvaluateBlock(g.free_energy_blocks[b], scratch); }, nullptr,
      nullptr);
}

}  // namespace vfe
