// Colouring of the elements of each hidden variable (Boost.Graph): elements that share a
// factor get different colours, so that each colour's elements can be updated at once; and
// the runs of each colour whose elements are updated together (UpdateListedElements).
#include <algorithm>

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

void FactorGraph::Impl::FindColourRuns() {
  colour_run.assign(num_hidden_elements, ColourRunPlace{});
  run_stat = 0;
  for (uint32_t v : hidden_ids)
    if (updates_in_blocks[v]) run_stat = std::max(run_stat, size_t(variables[v].stat_size));
  // True when elements a < b (hidden ordinals) are connected alike: the same plates and
  // slots in the same order, one factor each, never shared (then each factor of b is that of
  // a moved by b − a, as a binding maps factor n to element begin + n).
  auto alike = [&](size_t a, size_t b) {
    const size_t count = adjacency_offsets[a + 1] - adjacency_offsets[a];
    if (count == 0 || adjacency_offsets[b + 1] - adjacency_offsets[b] != count) return false;
    for (size_t k = 0; k < count; ++k) {
      const AdjacencyEntry& x = adjacency[adjacency_offsets[a] + k];
      const AdjacencyEntry& y = adjacency[adjacency_offsets[b] + k];
      if (x.plate != y.plate || x.slot != y.slot || x.end != x.begin + 1 ||
          plates[x.plate].bindings[x.slot].shared)
        return false;
    }
    return true;
  };
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    if (info.size < 2 || updates_in_blocks[v] || cluster_of[v] >= 0 || steps_on_free_energy[v])
      continue;
    const size_t h0 = info.hidden_ordinal;
    for (const std::vector<size_t>& members : ColourClassesOf(v, 0, info.size)) {
      // Greedy: a run grows while the next member is one step on and connected alike.
      for (size_t first = 0, last; first < members.size(); first = last) {
        last = first + 1;
        if (last == members.size() || !alike(h0 + members[first], h0 + members[last])) continue;
        const size_t step = members[last] - members[first];
        if (step > UINT32_MAX) continue;
        while (last + 1 < members.size() && members[last + 1] - members[last] == step &&
               last - first < UINT32_MAX - 1 && alike(h0 + members[last], h0 + members[last + 1]))
          ++last;
        ++last;  // one past the run's last member
        run_stat = std::max(run_stat, size_t(info.stat_size));
        for (size_t j = first; j < last; ++j)
          colour_run[h0 + members[j]] = {static_cast<uint32_t>(last - j),
                                         static_cast<uint32_t>(step)};
      }
    }
  }
}

size_t FactorGraph::num_colours(const Variable& v) const {
  if (!impl_->finalized) throw GraphError("num_colours: finalise the graph first");
  return impl_->num_colours[impl_->Checked(v, "num_colours").id()];
}

std::vector<std::vector<size_t>> FactorGraph::ColourClasses(const Variable& v) const {
  const Impl& g = *impl_;
  if (!g.finalized) throw GraphError("ColourClasses: finalise the graph first");
  if (g.variables[g.Checked(v, "ColourClasses").id()].observed) return {};
  return g.ColourClassesOf(v.id(), v.begin(), v.begin() + v.size());
}

std::vector<std::vector<size_t>> FactorGraph::Impl::ColourClassesOf(uint32_t v, size_t begin,
                                                                    size_t end) const {
  std::vector<std::vector<size_t>> classes(num_colours[v]);
  for (size_t i = begin; i < end; ++i)
    classes[element_colour[variables[v].hidden_ordinal + i]].push_back(i);
  classes.erase(std::remove_if(classes.begin(), classes.end(),
                               [](const std::vector<size_t>& c) { return c.empty(); }),
                classes.end());
  return classes;
}

}  // namespace vfe
