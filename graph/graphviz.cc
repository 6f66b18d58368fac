// Graphviz export of the structure graph through Boost.Graph, kept apart so the Boost
// templates compile once.

#include <boost/graph/graphviz.hpp>
#include <ostream>

#include "graph/factor_graph_impl.h"

namespace vfe {

void FactorGraph::WriteGraphviz(std::ostream& out) const {
  const Impl& g = *impl_;
  if (!g.finalized) throw GraphError("WriteGraphviz: finalise the graph first");
  // Variables are circles (observed ones shaded), plates boxes labelled with their size.
  auto vertex_writer = [&](std::ostream& os, StructureGraph::vertex_descriptor vertex) {
    const StructureVertex& v = g.structure[vertex];
    std::string label;
    if (v.is_plate) {
      const Plate& plate = g.plates[v.index];
      // The node type and the plate's size ("GaussianMixture ×300"), after its name if it has
      // one.
      label = (plate.name.empty() ? "" : plate.name + ": ") + plate.node->type();
      if (plate.size > 1) label += " \u00d7" + std::to_string(plate.size);
      os << "[label=" << boost::escape_dot_string(label) << ", shape=box]";
      return;
    }
    const VariableInfo& info = g.variables[v.index];
    label = info.name;
    if (!info.shape.empty()) {
      label += "[";
      for (size_t d = 0; d < info.shape.size(); ++d)
        label += (d ? "," : "") + std::to_string(info.shape[d]);
      label += "]";
    }
    os << "[label=" << boost::escape_dot_string(label) << ", shape=circle";
    if (info.observed) os << ", style=filled, fillcolor=gray80";
    os << "]";
  };
  auto edge_writer = [&](std::ostream& os, StructureGraph::edge_descriptor edge) {
    const auto a = boost::source(edge, g.structure), b = boost::target(edge, g.structure);
    const StructureVertex& plate = g.structure[a].is_plate ? g.structure[a] : g.structure[b];
    const std::vector<std::string> slots = g.plates[plate.index].node->slot_names();
    os << "[label=" << boost::escape_dot_string(slots[g.structure[edge].slot]) << "]";
  };
  boost::write_graphviz(out, g.structure, vertex_writer, edge_writer);
}

}  // namespace vfe
