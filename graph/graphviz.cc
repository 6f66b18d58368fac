// Graphviz export through Boost.Graph, kept apart so the Boost templates compile once.

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#include <ostream>

#include "graph/factor_graph_impl.h"

namespace vfe {

namespace {

struct VertexLabel {
  std::string label;
  std::string shape;
  bool filled = false;
};

using BipartiteGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, VertexLabel,
                          boost::property<boost::edge_name_t, std::string>>;

}  // namespace

void FactorGraph::WriteGraphviz(std::ostream& out) const {
  const Impl& g = *impl_;
  BipartiteGraph graph;
  // One vertex per declared variable (constants are drawn as part of their factor) and one
  // per plate; plates of several factors are labelled with their size.
  std::vector<BipartiteGraph::vertex_descriptor> variable_vertex(g.variables.size());
  for (size_t v = 0; v < g.variables.size(); ++v) {
    const VariableInfo& info = g.variables[v];
    if (info.constant) continue;
    std::string label = info.name;
    if (!info.shape.empty()) {
      label += "[";
      for (size_t d = 0; d < info.shape.size(); ++d)
        label += (d ? "," : "") + std::to_string(info.shape[d]);
      label += "]";
    }
    variable_vertex[v] = boost::add_vertex(VertexLabel{label, "circle", info.observed}, graph);
  }
  for (PlateId p = 0; p < g.plates.size(); ++p) {
    const Plate& plate = g.plates[p];
    std::string label = plate.name.empty() ? std::string(plate.node->type()) : plate.name;
    if (plate.size > 1) label += " x" + std::to_string(plate.size);
    const auto factor = boost::add_vertex(VertexLabel{label, "box", false}, graph);
    const std::vector<std::string> slots = plate.node->slot_names();
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const uint32_t v = plate.bindings[s].variable;
      if (g.variables[v].constant) continue;
      boost::add_edge(factor, variable_vertex[v], slots[s], graph);
    }
  }
  boost::write_graphviz(
      out, graph,
      [&](std::ostream& os, BipartiteGraph::vertex_descriptor v) {
        const VertexLabel& vertex = graph[v];
        os << "[label=" << boost::escape_dot_string(vertex.label) << ", shape=" << vertex.shape;
        if (vertex.filled) os << ", style=filled, fillcolor=gray80";
        os << "]";
      },
      boost::make_label_writer(boost::get(boost::edge_name, graph)));
}

}  // namespace vfe
