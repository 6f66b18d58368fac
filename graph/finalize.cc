// Finalize: validation of the built graph, the flat layout of moments and natural
// parameters, the adjacency the updates run over, and the starting posteriors.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "graph/factor_graph_impl.h"
#include "graph/large_buffer.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {

PointMass FactorGraph::Impl::ObservedValue(const VariableInfo& info, size_t index) const {
  const size_t len = static_cast<size_t>(info.value_rows) * info.value_cols;
  const double* data = info.values.data() + index * len;
  if (info.scalar_values) return PointMass(data[0]);
  return PointMass(Matrix(ConstMatrixMap(data, info.value_rows, info.value_cols)));
}

std::string FactorGraph::Impl::ElementName(uint32_t id, size_t index) const {
  const VariableInfo& info = variables[id];
  if (info.shape.empty()) return info.name;
  std::string suffix;
  size_t rest = index;
  for (size_t d = info.shape.size(); d-- > 0;) {
    suffix = "[" + std::to_string(rest % info.shape[d]) + "]" + suffix;
    rest /= info.shape[d];
  }
  return info.name + suffix;
}

std::string FactorGraph::Impl::Describe(uint32_t id) const {
  const VariableInfo& info = variables[id];
  if (info.constant) return info.name;  // "factor 'f' (Gaussian): constant precision"
  return std::string(info.observed ? "observed variable '" : "variable '") + info.name + "'";
}

void FactorGraph::Impl::InferObservedFamilies() {
  for (PlateId p = 0; p < plates.size(); ++p) {
    const Plate& plate = plates[p];
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      VariableInfo& info = variables[plate.bindings[s].variable];
      if (!info.observed) continue;
      const PointMass sample = ObservedValue(info, plate.bindings[s].begin);
      const Family family = plate.node->ObservedFamily(static_cast<int>(s), sample);
      // An outcome does not tell how many outcomes there are: categorical data are declared
      // with their number of categories (AddObservedCategorical).
      if (family == Family::kCategorical &&
          !(info.family_known && info.family == Family::kCategorical))
        throw GraphError(PlateLabel(p) + ": " + Describe(plate.bindings[s].variable) +
                         " is read as Categorical here; declare categorical data with "
                         "AddObservedCategorical (values and number of categories)");
      const Eigen::Index rows = HasDimension(family) ? sample.value().rows() : 1;
      const int most = IsMultivariate(family) ? kMaxMatrixDim : kMaxVectorDim;
      if (family != Family::kCategorical && rows > most)
        throw GraphError(PlateLabel(p) + ": " + Describe(plate.bindings[s].variable) +
                         " is read as " + FamilyName(family) + " of dimension " +
                         std::to_string(rows) + ", more than the most, " + std::to_string(most));
      const int dim = family == Family::kCategorical ? info.dim : static_cast<int>(rows);
      if (info.family_known && (info.family != family || info.dim != dim))
        throw GraphError(PlateLabel(p) + ": " + Describe(plate.bindings[s].variable) +
                         " is read as " + FamilyName(family) + " (dimension " +
                         std::to_string(dim) + ") here but as " + FamilyName(info.family) +
                         " (dimension " + std::to_string(info.dim) + ") elsewhere");
      info.family = family;
      info.dim = dim;
      info.family_known = true;
    }
  }
}

void FactorGraph::Impl::CheckEveryElementConnected() const {
  std::vector<std::vector<char>> used(variables.size());
  for (size_t v = 0; v < variables.size(); ++v) used[v].assign(variables[v].size, 0);
  for (const Plate& plate : plates) {
    for (const Binding& b : plate.bindings) {
      const size_t count = b.shared ? 1 : plate.size;
      std::fill_n(used[b.variable].begin() + b.begin, count, 1);
    }
  }
  for (uint32_t v = 0; v < variables.size(); ++v) {
    const auto it = std::find(used[v].begin(), used[v].end(), 0);
    if (it == used[v].end()) continue;
    const size_t index = it - used[v].begin();
    if (variables[v].shape.empty())
      throw GraphError(Describe(v) + " is not connected to any factor");
    throw GraphError(Describe(v) + ": element " + ElementName(v, index) +
                     " is not connected to any factor");
  }
}

void FactorGraph::Impl::CheckNoDoubleConnection() const {
  for (PlateId p = 0; p < plates.size(); ++p) {
    const Plate& plate = plates[p];
    const std::vector<std::string> slots = plate.node->slot_names();
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      for (size_t t = s + 1; t < plate.bindings.size(); ++t) {
        const Binding& a = plate.bindings[s];
        const Binding& b = plate.bindings[t];
        if (a.variable != b.variable || variables[a.variable].observed) continue;
        // Some factor n sees the same element at both slots.
        bool clash;
        if (a.shared && b.shared) clash = a.begin == b.begin;
        else if (a.shared) clash = a.begin >= b.begin && a.begin < b.begin + plate.size;
        else if (b.shared) clash = b.begin >= a.begin && b.begin < a.begin + plate.size;
        else clash = a.begin == b.begin;
        if (clash)
          throw GraphError(PlateLabel(p) + ": " + Describe(a.variable) + " is connected to both '" +
                           slots[s] + "' and '" + slots[t] +
                           "' of one factor (a factor must see distinct variables)");
      }
    }
  }
}

void FactorGraph::Impl::BindNodes() {
  for (PlateId p = 0; p < plates.size(); ++p) {
    Plate& plate = plates[p];
    const std::vector<std::string> names = plate.node->slot_names();
    std::vector<SlotInfo> infos;
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const VariableInfo& info = variables[plate.bindings[s].variable];
      SlotInfo slot;
      slot.name = names[s];
      slot.family = info.family;
      slot.dim = info.dim;
      slot.shared = plate.bindings[s].shared;
      slot.observed = info.observed;
      slot.variable = Describe(plate.bindings[s].variable);
      infos.push_back(slot);
    }
    plate.node->Bind(infos, plate.size, PlateLabel(p));
  }
}

void FactorGraph::Impl::LayOut() {
  size_t moment_offset = 0, natural_offset = 0, hidden_ordinal = 0;
  max_dim = 1;
  max_stat = 1;
  for (VariableInfo& info : variables) {
    info.stat_size = StatSize(info.family, info.dim);
    info.moment_offset = moment_offset;
    moment_offset += info.size * info.stat_size;
    max_stat = std::max(max_stat, info.stat_size);
    // Only the matrix families need workspaces of their dimension (a Categorical of K = 1000
    // must not allocate 1000 x 1000 matrices).
    if (IsMultivariate(info.family)) {
      max_dim = std::max(max_dim, info.dim);
      dims_in_use.push_back(info.dim);
    }
    if (info.observed) continue;
    info.natural_offset = natural_offset;
    natural_offset += info.size * info.stat_size;
    info.hidden_ordinal = hidden_ordinal;
    hidden_ordinal += info.size;
  }
  num_hidden_elements = hidden_ordinal;
  AssignLarge(moments, moment_offset, 0.0);
  AssignLarge(natural, natural_offset, 0.0);
}

void FactorGraph::Impl::WriteObservedMoments() {
  for (uint32_t v = 0; v < variables.size(); ++v) {
    const VariableInfo& info = variables[v];
    if (!info.observed) continue;
    double* out = moments.data() + info.moment_offset;
    // Built only for an error: with millions of data points, a string per element costs more
    // than the checks.
    auto where = [&](size_t i) {
      return Describe(v) + (info.shape.empty() ? "" : " at " + ElementName(v, i));
    };
    const bool scalar = info.scalar_values && PointMass::IsScalarFamily(info.family);
    for (size_t i = 0; i < info.size; ++i, out += info.stat_size) {
      if (scalar) {
        // The common case avoids building a PointMass per value.
        const double x = info.values[i];
        const std::string problem = PointMass::ScalarProblem(info.family, info.dim, x);
        if (!problem.empty()) throw ModelError(where(i) + ": " + problem);
        PointMass::ScalarMoments(info.family, info.dim, x, out);
        continue;
      }
      const PointMass value = ObservedValue(info, i);
      value.Validate(info.family, info.dim, where(i));
      value.Moments(info.family, out, info.dim);
    }
  }
}

void FactorGraph::Impl::BuildViews() {
  versions = std::make_unique<std::atomic<uint64_t>[]>(variables.size());
  for (size_t v = 0; v < variables.size(); ++v) versions[v].store(0);
  tracked.assign(variables.size(), 0);
  for (Plate& plate : plates) {
    plate.views.clear();
    for (size_t s = 0; s < plate.bindings.size(); ++s) {
      const Binding& b = plate.bindings[s];
      const VariableInfo& info = variables[b.variable];
      SlotView view;
      view.data = moments.data() + info.moment_offset + b.begin * info.stat_size;
      view.stride = b.shared ? 0 : info.stat_size;
      if (!info.observed)
        view.natural = natural.data() + info.natural_offset + b.begin * info.stat_size;
      if (plate.node->TracksChanges(static_cast<int>(s))) {
        tracked[b.variable] = 1;
        view.version = &versions[b.variable];
      }
      plate.views.push_back(view);
    }
    SlotView pair;  // the joint moments of the pairs of a cluster (empty for other plates)
    if (plate.pair_slot_a >= 0) {
      pair.data = plate.pair_moments.data();
      pair.stride = plate.pair_stat;
    }
    plate.views.push_back(pair);
  }
}

void FactorGraph::Impl::BuildAdjacency() {
  // Two passes over the bindings: count the entries of each hidden element, then fill them,
  // so that each element's entries are in plate order (the order messages are summed in).
  adjacency_offsets.assign(num_hidden_elements + 1, 0);
  auto for_each_entry = [&](auto&& emit) {
    for (PlateId p = 0; p < plates.size(); ++p) {
      const Plate& plate = plates[p];
      for (uint32_t s = 0; s < plate.bindings.size(); ++s) {
        const Binding& b = plate.bindings[s];
        const VariableInfo& info = variables[b.variable];
        if (info.observed) continue;
        if (b.shared) {
          emit(info.hidden_ordinal + b.begin,
               AdjacencyEntry{p, s, 0, plate.size, plate.node.get(), plate.views.data()});
        } else {
          for (size_t n = 0; n < plate.size; ++n)
            emit(info.hidden_ordinal + b.begin + n,
                 AdjacencyEntry{p, s, n, n + 1, plate.node.get(), plate.views.data()});
        }
      }
    }
  };
  for_each_entry([&](size_t h, const AdjacencyEntry&) { ++adjacency_offsets[h + 1]; });
  for (size_t h = 0; h < num_hidden_elements; ++h)
    adjacency_offsets[h + 1] += adjacency_offsets[h];
  adjacency.resize(adjacency_offsets.back());
  std::vector<size_t> fill(adjacency_offsets.begin(), adjacency_offsets.end() - 1);
  for_each_entry([&](size_t h, const AdjacencyEntry& e) { adjacency[fill[h]++] = e; });
}

void FactorGraph::Impl::BuildStructure() {
  structure.clear();
  std::vector<StructureGraph::vertex_descriptor> vertex_of(variables.size());
  for (uint32_t v = 0; v < variables.size(); ++v)
    if (!variables[v].constant) vertex_of[v] = boost::add_vertex(StructureVertex{false, v}, structure);
  for (PlateId p = 0; p < plates.size(); ++p) {
    const auto factor = boost::add_vertex(StructureVertex{true, p}, structure);
    for (uint32_t s = 0; s < plates[p].bindings.size(); ++s) {
      const uint32_t v = plates[p].bindings[s].variable;
      if (!variables[v].constant) boost::add_edge(factor, vertex_of[v], StructureEdge{s}, structure);
    }
  }
}

uint32_t FactorGraph::Impl::HiddenVariableOf(size_t ordinal) const {
  // Hidden ordinals increase with the variable id, so a binary search finds the owner.
  auto it = std::upper_bound(hidden_ids.begin(), hidden_ids.end(), ordinal,
                             [&](size_t h, uint32_t id) { return h < variables[id].hidden_ordinal; });
  return *(it - 1);
}

void FactorGraph::Impl::FindBlockUpdates() {
  // A variable updates in blocks when every element has the same list of messages, each from
  // a plate that binds the variable in one slot only, one factor per element (factor
  // first + i for element i): then no factor joins two of its elements.
  updates_in_blocks.assign(variables.size(), 0);
  steps_on_free_energy.assign(variables.size(), 0);
  step_refused.assign(variables.size(), {});
  reads_itself.assign(variables.size(), 0);
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    for (size_t h = info.hidden_ordinal; h < info.hidden_ordinal + info.size; ++h)
      for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
        const int slot = static_cast<int>(adjacency[k].slot);
        if (adjacency[k].node->StepsOnFreeEnergy(slot)) steps_on_free_energy[v] = 1;
        if (adjacency[k].node->MessageReadsOwnSlot(slot)) reads_itself[v] = 1;
      }
    if (steps_on_free_energy[v]) step_refused[v].assign(info.size, 0);
    if (info.size < 2 || steps_on_free_energy[v]) continue;
    const size_t h0 = info.hidden_ordinal;
    const size_t count = adjacency_offsets[h0 + 1] - adjacency_offsets[h0];
    bool alike = count > 0;
    for (size_t k = adjacency_offsets[h0]; alike && k < adjacency_offsets[h0 + 1]; ++k) {
      const AdjacencyEntry& e = adjacency[k];
      int bound = 0;
      for (const Binding& b : plates[e.plate].bindings) bound += b.variable == v;
      alike = bound == 1 && e.end == e.begin + 1;
    }
    for (size_t i = 1; alike && i < info.size; ++i) {
      const size_t h = h0 + i;
      if (adjacency_offsets[h + 1] - adjacency_offsets[h] != count) {
        alike = false;
        break;
      }
      for (size_t j = 0; alike && j < count; ++j) {
        const AdjacencyEntry& first = adjacency[adjacency_offsets[h0] + j];
        const AdjacencyEntry& e = adjacency[adjacency_offsets[h] + j];
        alike = e.plate == first.plate && e.slot == first.slot && e.begin == first.begin + i;
      }
    }
    updates_in_blocks[v] = alike;
  }
}

void FactorGraph::Impl::Initialise(Scratch& scratch) {
  // Everything starts at the standard density, so that a parent on a cycle of "out" links
  // (or with no prior) is read at a proper value.
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    double* eta = natural.data() + info.natural_offset;
    WriteStandardNatural(info.family, info.dim, eta);
    double* moment = moments.data() + info.moment_offset;
    MomentsFromNatural(info.family, info.dim, eta, moment, WorkspaceFor(info, scratch));
    for (size_t i = 1; i < info.size; ++i) {
      std::copy_n(eta, info.stat_size, eta + i * info.stat_size);
      std::copy_n(moment, info.stat_size, moment + i * info.stat_size);
    }
  }
  // Then each element from its priors, parents first (iterative depth-first search).
  std::vector<char> state(num_hidden_elements, 0);  // 0 new, 1 open, 2 done
  std::vector<size_t> stack;
  for (size_t root = 0; root < num_hidden_elements; ++root) {
    if (state[root]) continue;
    stack.push_back(root);
    while (!stack.empty()) {
      const size_t h = stack.back();
      if (state[h] == 0) {
        state[h] = 1;
        for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1]; ++k) {
          const AdjacencyEntry& e = adjacency[k];
          const Plate& plate = plates[e.plate];
          if (!plate.node->IsOutput(static_cast<int>(e.slot))) continue;
          for (size_t s = 0; s < plate.bindings.size(); ++s) {
            if (plate.node->IsOutput(static_cast<int>(s))) continue;
            const Binding& b = plate.bindings[s];
            const VariableInfo& parent = variables[b.variable];
            if (parent.observed) continue;
            const size_t first = parent.hidden_ordinal + b.begin;
            const size_t last = b.shared ? first + 1 : first + e.end;
            for (size_t p = b.shared ? first : first + e.begin; p < last; ++p)
              if (state[p] == 0) stack.push_back(p);
          }
        }
        continue;
      }
      stack.pop_back();
      if (state[h] == 2) continue;
      state[h] = 2;
      const uint32_t v = HiddenVariableOf(h);
      SetFromMessages(v, h - variables[v].hidden_ordinal, /*out_only=*/true, scratch);
    }
  }
  for (uint32_t v : hidden_ids) Touch(v);
}

void FactorGraph::Finalize() {
  Impl& g = *impl_;
  if (g.finalized) throw GraphError("Finalize: the graph is already finalised");
  if (g.plates.empty()) throw GraphError("the graph has no factors");
  g.InferObservedFamilies();
  g.CheckMemoryBudget();
  g.CheckEveryElementConnected();
  g.CheckNoDoubleConnection();
  g.BindNodes();
  g.FindClusterPairs();
  g.LayOut();
  g.WriteObservedMoments();
  g.BuildViews();
  g.BuildAdjacency();
  g.hidden_ids.clear();
  for (uint32_t v = 0; v < g.variables.size(); ++v)
    if (!g.variables[v].observed) g.hidden_ids.push_back(v);
  std::sort(g.dims_in_use.begin(), g.dims_in_use.end());
  g.dims_in_use.erase(std::unique(g.dims_in_use.begin(), g.dims_in_use.end()),
                      g.dims_in_use.end());
  g.BuildStructure();
  g.FindBlockUpdates();
  g.SizePartialSums();
  g.ColourElements();
  g.FindColourRuns();
  g.SplitFreeEnergyBlocks();
  g.BuildClusterSchedules();
  g.FindMissingPriors();
  // Nodes see the data first here, and may refuse them (a ModelError naming the factor):
  // the graph is then not finalised.
  for (PlateId p = 0; p < g.plates.size(); ++p) g.Prepare(p);
  g.finalized = true;
  Scratch scratch = MakeScratch();
  g.Initialise(scratch);
  for (Cluster& cluster : g.clusters) g.ResetClusterPairs(cluster);
}

bool FactorGraph::finalized() const { return impl_->finalized; }

void FactorGraph::set_memory_budget(size_t bytes) { impl_->memory_budget = bytes; }

namespace {

size_t PhysicalMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page)
                               : SIZE_MAX;
}

/// "3.2 GB", "512 MB", "12 kB" (powers of 1000).
std::string BytesText(double bytes) {
  const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 6) {
    bytes /= 1000.0;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

}  // namespace

size_t FactorGraph::memory_budget() const {
  return impl_->memory_budget ? impl_->memory_budget : PhysicalMemory();
}

void FactorGraph::Impl::CheckMemoryBudget() const {
  // Moments of every element; natural parameters, and the copies an update keeps, of every
  // hidden one: 8 bytes a number. Nodes and the adjacency come on top, so this is a floor.
  struct Share {
    double bytes;
    uint32_t variable;
  };
  std::vector<Share> shares;
  double total = 0;
  for (uint32_t v = 0; v < variables.size(); ++v) {
    const VariableInfo& info = variables[v];
    if (info.constant) continue;
    const double numbers = static_cast<double>(info.size) *
                           static_cast<double>(StatSize(info.family, info.dim));
    const double bytes = 8.0 * numbers * (info.observed ? 1.0 : 3.0);
    shares.push_back({bytes, v});
    total += bytes;
  }
  const size_t budget = memory_budget ? memory_budget : PhysicalMemory();
  if (total <= static_cast<double>(budget)) return;
  std::sort(shares.begin(), shares.end(),
            [](const Share& a, const Share& b) { return a.bytes > b.bytes; });
  std::string largest;
  for (size_t k = 0; k < shares.size() && k < 3; ++k) {
    const VariableInfo& info = variables[shares[k].variable];
    largest += (k ? ", '" : "'") + info.name + "' " + BytesText(shares[k].bytes) + " (" +
               std::to_string(info.size) + (info.size == 1 ? " element of " : " elements of ") +
               std::to_string(StatSize(info.family, info.dim)) + " numbers)";
  }
  throw GraphError("Finalize: the graph needs at least " + BytesText(total) +
                   ", more than its memory budget of " + BytesText(static_cast<double>(budget)) +
                   (memory_budget ? " (set_memory_budget)" : " (the machine's memory)") +
                   "; largest: " + largest);
}

}  // namespace vfe
