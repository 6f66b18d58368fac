// What the graph finds legal but probably a mistake (FactorGraph::warnings,
// CollapsedComponents), and random starting posteriors that break a mixture's symmetry.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "graph/factor_graph_impl.h"
#include "vfe/core/format.h"
#include "vfe/core/splitmix.h"

namespace vfe {
namespace {

/// The prior an element has when no factor acts as one: its family's base measure.
std::string ImplicitPrior(Family family, int dim) {
  switch (family) {
    case Family::kGaussian:
      return "the flat prior p(x) ∝ 1 on the real line, which is improper";
    case Family::kMvGaussian:
      return "the flat prior p(x) ∝ 1 on R^" + std::to_string(dim) + ", which is improper";
    case Family::kGamma:
      return "the flat prior p(x) ∝ 1 on (0, ∞), which is improper";
    case Family::kWishart:
      return "the flat prior p(Λ) ∝ 1 on positive-definite matrices, which is improper";
    case Family::kBeta:
      return "the uniform prior on (0, 1)";
    case Family::kBernoulli:
      return "the uniform prior on {0, 1}";
    case Family::kCategorical:
      return "the uniform prior on its " + std::to_string(dim) + " outcomes";
    case Family::kDirichlet:
      return "the uniform prior on the simplex";
  }
  return "a flat prior";
}

/// True when the natural parameters a and b (n numbers) agree to 1e-9 relative.
bool SameNatural(const double* a, const double* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!(std::abs(a[i] - b[i]) <= 1e-9 * std::max({1.0, std::abs(a[i]), std::abs(b[i])})))
      return false;
  return true;
}

}  // namespace

void FactorGraph::Impl::FindMissingPriors() {
  warnings.clear();
  for (uint32_t v : hidden_ids) {
    const VariableInfo& info = variables[v];
    size_t without = 0, first = 0;
    for (size_t i = 0; i < info.size; ++i) {
      const size_t h = info.hidden_ordinal + i;
      bool has_prior = false;
      for (size_t k = adjacency_offsets[h]; k < adjacency_offsets[h + 1] && !has_prior; ++k) {
        const AdjacencyEntry& e = adjacency[k];
        has_prior = !e.node->IsDirected() || e.node->IsOutput(static_cast<int>(e.slot));
      }
      if (!has_prior && without++ == 0) first = i;
    }
    if (without == 0) continue;
    std::string which = "hidden variable '" + info.name + "'";
    if (without < info.size)
      which = std::to_string(without) + " of the " + std::to_string(info.size) +
              " elements of hidden variable '" + info.name + "' (the first: " + info.name + "[" +
              std::to_string(first) + "])";
    warnings.push_back(which + " has no prior: no factor has it as its \"out\", so it has " +
                       ImplicitPrior(info.family, info.dim) + "; add a prior factor");
  }
}

const std::vector<std::string>& FactorGraph::warnings() const { return impl_->warnings; }

std::vector<std::string> FactorGraph::CollapsedComponents() const {
  const Impl& g = *impl_;
  g.CheckFinalized("CollapsedComponents");
  std::vector<std::string> found;
  for (PlateId p = 0; p < g.plates.size(); ++p) {
    const Plate& plate = g.plates[p];
    const std::vector<std::vector<int>> components = plate.node->ComponentSlots();
    const size_t k = components.size();
    if (k < 2) continue;
    auto natural_of = [&](size_t slot) -> const double* {
      const Binding& b = plate.bindings[slot];
      const VariableInfo& info = g.variables[b.variable];
      if (info.observed) return nullptr;
      return g.natural.data() + info.natural_offset + b.begin * info.stat_size;
    };
    auto element_of = [&](size_t slot) {
      const Binding& b = plate.bindings[slot];
      return g.variables[b.variable].name + "[" + std::to_string(b.begin) + "]";
    };
    for (size_t i = 0; i < k; ++i)
      for (size_t j = i + 1; j < k; ++j) {
        bool same = components[i].size() == components[j].size() && !components[i].empty();
        std::string elements;
        for (size_t s = 0; s < components[i].size() && same; ++s) {
          const auto si = static_cast<size_t>(components[i][s]);
          const auto sj = static_cast<size_t>(components[j][s]);
          const double* a = natural_of(si);
          const double* b = natural_of(sj);
          const auto n = static_cast<size_t>(g.variables[plate.bindings[si].variable].stat_size);
          same = a && b && SameNatural(a, b, n);
          elements += (elements.empty() ? "" : ", ") + element_of(si) + " = " + element_of(sj);
        }
        if (same)
          found.push_back("components " + std::to_string(i) + " and " + std::to_string(j) +
                          " of '" + plate.name + "' (" + plate.node->type() +
                          ") collapsed: their posteriors are identical (" + elements +
                          "); start the selector at random (\"initial\": {\"z\": {\"random\": "
                          "{\"seed\": 1}}}, FactorGraph::SetRandomPosterior) or give the "
                          "components different starting values");
      }
  }
  return found;
}

std::vector<std::string> FactorGraph::RefusedSteps() const {
  const Impl& g = *impl_;
  g.CheckFinalized("RefusedSteps");
  std::vector<std::string> found;
  for (uint32_t v = 0; v < g.step_refused.size(); ++v) {
    const std::vector<uint8_t>& refused = g.step_refused[v];
    const size_t count = static_cast<size_t>(std::count(refused.begin(), refused.end(), 1));
    if (count == 0) continue;
    const VariableInfo& info = g.variables[v];
    std::string elements;
    size_t listed = 0;
    for (size_t i = 0; i < refused.size() && listed < 3; ++i)
      if (refused[i]) {
        elements += (listed++ ? ", " : "") + info.name + "[" + std::to_string(i) + "]";
      }
    if (count > listed) elements += " and " + std::to_string(count - listed) + " more";
    found.push_back(
        "variable '" + info.name + "': the last natural-gradient step of " +
        (info.size == 1 ? std::string("it") : elements) +
        " was refused at every step length (it left q improper, or raised F, even at "
        "2^-30 of the step), so the posterior did not move and the run may have stopped short "
        "of the fixed point; a narrower prior, or an initial posterior nearer the data, "
        "usually cures it");
  }
  return found;
}

void FactorGraph::SetRandomPosterior(const Variable& v, uint64_t seed) {
  Impl& g = *impl_;
  const VariableInfo& info = g.variables[g.Checked(v, "SetRandomPosterior").id()];
  if (!g.finalized)
    throw GraphError("SetRandomPosterior: finalise the graph first (variable '" + info.name + "')");
  if (info.observed) throw GraphError("SetRandomPosterior: " + g.Describe(v.id()) + " is observed");
  SplitMix64 rng(seed);
  auto normal = [&rng] {
    // Box–Muller, one of the pair: simple and the same on every platform.
    const double r = std::sqrt(-2.0 * std::log(rng.Uniform()));
    return r * std::cos(6.283185307179586476925 * rng.Uniform());
  };
  const int d = info.dim;
  if (info.family != Family::kCategorical && info.family != Family::kGaussian &&
      info.family != Family::kMvGaussian)
    throw GraphError("SetRandomPosterior: variable '" + info.name + "' is " +
                     FamilyName(info.family) +
                     "; random starts are for Categorical, Gaussian and MvGaussian variables");
  for (size_t i = 0; i < v.size(); ++i) {
    const Variable element = v[i];
    switch (info.family) {
      case Family::kCategorical: {
        // Dirichlet(1, ..., 1): normalised standard exponentials.
        Vector p(d);
        for (int c = 0; c < d; ++c) p(c) = -std::log(rng.Uniform());
        SetPosterior(element, Categorical(p / p.sum()));
        break;
      }
      case Family::kGaussian: {
        const Gaussian q = Posterior<Gaussian>(element);
        SetPosterior(element,
                     Gaussian(q.mean() + std::sqrt(q.variance()) * normal(), 1.0 / q.variance()));
        break;
      }
      case Family::kMvGaussian: {
        const MvGaussian q = Posterior<MvGaussian>(element);
        Vector z(d);
        for (int c = 0; c < d; ++c) z(c) = normal();
        const Matrix factor = q.covariance().llt().matrixL();
        SetPosterior(element, MvGaussian(Vector(q.mean() + factor * z), q.precision()));
        break;
      }
      default:
        break;  // refused above
    }
  }
}

}  // namespace vfe
