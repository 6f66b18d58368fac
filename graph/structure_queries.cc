// Read-only structure queries for schedulers that pass their own messages (loopy belief
// propagation, the async scheduler's dependencies).

#include <algorithm>
#include <string>
#include <vector>

#include "graph/factor_graph_impl.h"

namespace vfe {

namespace {

// A template, so that it may take the private FactorGraph::Impl without naming it.
template <class GraphImpl>
const Plate& CheckedFactor(const GraphImpl& g, PlateId plate, size_t n, const char* what) {
  g.CheckFinalized(what);
  const Plate& p = g.CheckedPlate(plate, what);
  if (n >= p.size)
    throw GraphError(std::string(what) + ": factor " + std::to_string(n) + " is out of range: " +
                     g.PlateLabel(plate) + " has " + std::to_string(p.size));
  return p;
}

}  // namespace

Variable FactorGraph::FactorArgument(PlateId plate, size_t n, size_t slot) const {
  const Plate& p = CheckedFactor(*impl_, plate, n, "FactorArgument");
  if (slot >= p.bindings.size())
    throw GraphError("FactorArgument: slot " + std::to_string(slot) + " is out of range: " +
                     impl_->PlateLabel(plate) + " has " + std::to_string(p.bindings.size()));
  const Binding& b = p.bindings[slot];
  return Variable(b.variable, b.shared ? b.begin : b.begin + n, 1);
}

const double* FactorGraph::Moments(const Variable& element) const {
  const Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(element, "Moments").id()];
  if (!g.finalized) throw GraphError("Moments: finalise the graph first");
  if (element.size() != 1)
    throw GraphError("Moments: variable '" + info.name + "' has " +
                     std::to_string(element.size()) + " elements: ask for one, e.g. " +
                     g.ElementName(element.id(), element.begin()));
  return g.moments.data() + info.moment_offset + element.begin() * info.stat_size;
}

const double* FactorGraph::FactorLogTable(PlateId plate, size_t n) const {
  const Plate& p = CheckedFactor(*impl_, plate, n, "FactorLogTable");
  return p.node->LogTable(n, p.views.data());
}

std::vector<FactorGraph::ElementRange> FactorGraph::HiddenNeighbours(const Variable& v) const {
  const Impl& g = *impl_;
  if (!g.finalized) throw GraphError("HiddenNeighbours: finalise the graph first");
  const VariableInfo& info = g.variables[g.Checked(v, "HiddenNeighbours").id()];
  std::vector<ElementRange> ranges;
  if (info.observed) return ranges;
  auto by_position = [](const ElementRange& a, const ElementRange& b) {
    if (a.variable != b.variable) return a.variable < b.variable;
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  };
  auto same = [](const ElementRange& a, const ElementRange& b) {
    return a.variable == b.variable && a.begin == b.begin && a.end == b.end;
  };
  auto compact = [&] {
    std::sort(ranges.begin(), ranges.end(), by_position);
    ranges.erase(std::unique(ranges.begin(), ranges.end(), same), ranges.end());
  };
  size_t compacted = 0;  // the size after the last compaction: a long run repeats its ranges
  for (size_t i = v.begin(); i < v.begin() + v.size(); ++i) {
    const size_t h = info.hidden_ordinal + i;
    for (size_t k = g.adjacency_offsets[h]; k < g.adjacency_offsets[h + 1]; ++k) {
      const AdjacencyEntry& e = g.adjacency[k];
      const Plate& plate = g.plates[e.plate];
      // Factors [e.begin, e.end) of the plate read element i through slot e.slot; every other
      // slot of theirs binds one shared element or one element per factor.
      for (uint32_t s = 0; s < plate.bindings.size(); ++s) {
        const Binding& b = plate.bindings[s];
        if (s == e.slot || g.variables[b.variable].observed) continue;
        ElementRange range{b.variable, b.begin, b.begin + 1};
        if (!b.shared) range = {b.variable, b.begin + e.begin, b.begin + e.end};
        ranges.push_back(range);
      }
    }
    if (ranges.size() > 2 * compacted + 64) {
      compact();
      compacted = ranges.size();
    }
  }
  compact();
  return ranges;
}
}  // namespace vfe
