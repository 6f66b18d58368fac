// Colouring of the elements of each hidden variable (Boost.Graph): elements that share a
// factor get different colours, so that each colour's elements can be updated at once.
#include <boost/graph/sequential_vertex_coloring.hpp>

#include "graph/factor_graph_impl.h"

namespace vfe {

void FactorGraph::Impl::ColourElements() {
  using ElementGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
  element_colour.assign(num_hidden_elements, 0);
  num_colours.assign(variables.size(), 0);
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    num_colours[v] = 1;
    if (info.size < 2 || updates_in_blocks[v]) continue;  // no factor joins two elements
    // An edge for each pair of elements bound by the same factor: only plates that bind the
    // variable in two slots or more make any.
    ElementGraph elements(info.size);
    bool any_edge = false;
    std::vector<const Binding*> bound;
    for (const Plate& plate : plates) {
      bound.clear();
      for (const Binding& b : plate.bindings)
        if (b.variable == v) bound.push_back(&b);
      if (bound.size() < 2) continue;
      bool all_shared = true;
      for (const Binding* b : bound) all_shared = all_shared && b->shared;
      const size_t factors = all_shared ? 1 : plate.size;
      for (size_t n = 0; n < factors; ++n)
        for (size_t i = 0; i < bound.size(); ++i)
          for (size_t j = i + 1; j < bound.size(); ++j) {
            const size_t a = bound[i]->begin + (bound[i]->shared ? 0 : n);
            const size_t b = bound[j]->begin + (bound[j]->shared ? 0 : n);
            if (a == b) continue;
            boost::add_edge(a, b, elements);
            any_edge = true;
          }
    }
    if (!any_edge) continue;
    std::vector<ElementGraph::vertices_size_type> colour(info.size);
    const auto colour_map = boost::make_iterator_property_map(
        colour.begin(), boost::get(boost::vertex_index, elements));
    num_colours[v] = static_cast<uint32_t>(boost::sequential_vertex_coloring(elements, colour_map));
    for (size_t i = 0; i < info.size; ++i)
      element_colour[info.hidden_ordinal + i] = static_cast<uint32_t>(colour[i]);
  }
}

}  // namespace vfe
