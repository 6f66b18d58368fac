// The Monte Carlo free energy: F = E_q[log q(x) − log p(y, x)] estimated from draws of q, with
// nothing but log-densities (each factor's Node::LogFactor, each posterior's LogDensity), so
// that it checks the node-local average energies and entropies instead of repeating them.

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/LU>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "graph/factor_graph_impl.h"
#include "vfe/core/splitmix.h"
#include "vfe/distributions/dispatch.h"

namespace vfe {
namespace {

/// One thread's copy of the moments, with every plate's views pointing into it: a draw writes
/// the statistics T(x) of its values there and the nodes read them as point masses.
struct DrawState {
  std::vector<double> moments;
  std::vector<std::vector<SlotView>> views;
  Workspace ws;
};

/// Draws one value of the `D` density with natural parameters `eta`, writes its statistics
/// T(x) to `t` and returns log q(x).
template <class D>
double DrawAs(int dim, const double* eta, double* t, std::mt19937_64& rng) {
  const D q = D::FromFlat(dim, eta);
  const auto x = q.Sample(rng);
  if constexpr (std::is_same_v<D, Categorical>) {
    Categorical::PointMoments(dim, x, t);
  } else {
    D::PointMoments(x, t);
  }
  return q.LogDensity(x);
}

/// Draws element `eta` of `family` into `t` (its statistics T(x)); returns log q(x).
double DrawElement(Family family, int dim, const double* eta, double* t, std::mt19937_64& rng) {
  switch (family) {
    case Family::kGaussian: return DrawAs<Gaussian>(dim, eta, t, rng);
    case Family::kMvGaussian: return DrawAs<MvGaussian>(dim, eta, t, rng);
    case Family::kGamma: return DrawAs<Gamma>(dim, eta, t, rng);
    case Family::kWishart: return DrawAs<Wishart>(dim, eta, t, rng);
    case Family::kBeta: return DrawAs<Beta>(dim, eta, t, rng);
    case Family::kBernoulli: return DrawAs<Bernoulli>(dim, eta, t, rng);
    case Family::kCategorical: return DrawAs<Categorical>(dim, eta, t, rng);
    case Family::kDirichlet: return DrawAs<Dirichlet>(dim, eta, t, rng);
  }
  return NAN;
}

}  // namespace

// A cluster is drawn along its tree, roots first: a root from its marginal, a child from its
// conditional given the parent's draw, q(x_c | x_p) = q(x_c, x_p) / q(x_p), read from the
// pair's joint moments. log q(x) is the sum of those log-densities (exact on a tree).
namespace {

double DrawCategoricalCluster(const std::vector<Plate>& plates, const Cluster& cluster,
                              const double* eta, double* t, std::mt19937_64& rng,
                              std::vector<int>& value) {
  const int k = cluster.dim;
  const size_t stat = static_cast<size_t>(k);
  double log_q = 0.0;
  for (size_t i : cluster.order) {
    const size_t parent = cluster.parent[i];
    if (parent == Cluster::kNoParent) {
      const Categorical q = Categorical::FromFlat(k, eta + i * stat);
      value[i] = q.Sample(rng);
      log_q += q.LogDensity(value[i]);
    } else {
      const Plate& plate = plates[cluster.edge_plate[i]];
      const double* joint = plate.pair_moments.data() + cluster.edge_factor[i] * plate.pair_stat;
      const bool child_is_row = cluster.child_in_slot_a[i] != 0;
      const int p = value[parent];
      auto pair = [&](int c) { return child_is_row ? joint[c * k + p] : joint[p * k + c]; };
      double total = 0.0;
      for (int c = 0; c < k; ++c) total += pair(c);
      double u = std::uniform_real_distribution<double>(0.0, total)(rng);
      int drawn = k - 1;
      for (int c = 0; c < k; ++c) {
        if (u < pair(c) && pair(c) > 0.0) {
          drawn = c;
          break;
        }
        u -= pair(c);
      }
      value[i] = drawn;
      log_q += std::log(pair(drawn)) - std::log(total);
    }
    Categorical::PointMoments(k, value[i], t + i * stat);
  }
  return log_q;
}

double DrawGaussianCluster(const std::vector<Plate>& plates, const Cluster& cluster, Family family,
                           const double* eta, const double* moments, double* t,
                           std::mt19937_64& rng) {
  const int d = cluster.dim;
  const size_t stat = static_cast<size_t>(StatSize(family, d));
  double log_q = 0.0;
  Vector x(d);
  for (size_t i : cluster.order) {
    const size_t parent = cluster.parent[i];
    if (parent == Cluster::kNoParent) {
      log_q += DrawElement(family, d, eta + i * stat, t + i * stat, rng);
      continue;
    }
    // Covariances of the pair from the raw moments E[x], E[x xᵀ] and the cross moment.
    const Plate& plate = plates[cluster.edge_plate[i]];
    const ConstMatrixMap stored(plate.pair_moments.data() + cluster.edge_factor[i] * plate.pair_stat,
                                d, d);
    const Matrix cross = cluster.child_in_slot_a[i] ? Matrix(stored) : Matrix(stored.transpose());
    const ConstVectorMap mean_c(moments + i * stat, d), mean_p(moments + parent * stat, d);
    const Matrix cov_c = ConstMatrixMap(moments + i * stat + d, d, d) - mean_c * mean_c.transpose();
    const Matrix cov_p =
        ConstMatrixMap(moments + parent * stat + d, d, d) - mean_p * mean_p.transpose();
    const Matrix cov_cp = cross - mean_c * mean_p.transpose();
    const Eigen::LLT<Matrix> llt_p(cov_p);
    const Matrix gain = llt_p.solve(cov_cp.transpose()).transpose();  // Σ_cp Σ_pp⁻¹
    const Vector mean = mean_c + gain * (ConstVectorMap(t + parent * stat, d) - mean_p);
    Matrix cov = cov_c - gain * cov_cp.transpose();
    cov = 0.5 * (cov + cov.transpose()).eval();
    const MvGaussian q(mean, cov.inverse());
    x = q.Sample(rng);
    log_q += q.LogDensity(x);
    if (family == Family::kGaussian)
      Gaussian::PointMoments(x[0], t + i * stat);
    else
      MvGaussian::PointMoments(x, t + i * stat);
  }
  return log_q;
}

}  // namespace

FactorGraph::MonteCarloEstimate FactorGraph::MonteCarloFreeEnergy(size_t samples,
                                                                  uint64_t seed) const {
  const Impl& g = *impl_;
  if (!g.finalized) throw GraphError("MonteCarloFreeEnergy: call Finalize first");
  if (samples < 2)
    throw GraphError("MonteCarloFreeEnergy: needs at least 2 samples (for a standard error), got " +
                     std::to_string(samples));
  const size_t num_plates = g.plates.size();
  // Values of draw s: −Σ_n log f_n of each plate, then −log q.
  const size_t width = num_plates + 1;
  std::vector<double> values(samples * width, 0.0);

  tbb::enumerable_thread_specific<DrawState> states([&] {
    DrawState state;
    state.moments = g.moments;
    state.views.resize(num_plates);
    for (size_t p = 0; p < num_plates; ++p) {
      state.views[p] = g.plates[p].views;
      for (SlotView& view : state.views[p]) {
        view.version = nullptr;  // the draws' moments are not the graph's: no cached sums
        if (!view.data) continue;
        const double* base = g.moments.data();
        if (view.data >= base && view.data < base + g.moments.size())
          view.data = state.moments.data() + (view.data - base);
      }
    }
    state.ws.Resize(g.max_dim);
    return state;
  });

  tbb::parallel_for(size_t{0}, samples, [&](size_t s) {
    DrawState& state = states.local();
    std::mt19937_64 rng(SplitMix64(seed + 0x9E3779B97F4A7C15ULL * (s + 1)).Next());
    double log_q = 0.0;
    std::vector<int> outcomes;
    for (uint32_t v : g.hidden_ids) {
      const VariableInfo& info = g.variables[v];
      const size_t stat = static_cast<size_t>(info.stat_size);
      const double* eta = g.natural.data() + info.natural_offset;
      double* t = state.moments.data() + info.moment_offset;
      const int c = g.cluster_of[v];
      if (c >= 0) {
        const Cluster& cluster = g.clusters[c];
        if (info.family == Family::kCategorical) {
          outcomes.resize(info.size);
          log_q += DrawCategoricalCluster(g.plates, cluster, eta, t, rng, outcomes);
        } else {
          log_q += DrawGaussianCluster(g.plates, cluster, info.family, eta,
                                       g.moments.data() + info.moment_offset, t, rng);
        }
        continue;
      }
      for (size_t i = 0; i < info.size; ++i)
        log_q += DrawElement(info.family, info.dim, eta + i * stat, t + i * stat, rng);
    }
    double* row = values.data() + s * width;
    for (size_t p = 0; p < num_plates; ++p) {
      const Plate& plate = g.plates[p];
      double log_f = 0.0;
      for (size_t n = 0; n < plate.size; ++n)
        log_f += plate.node->LogFactor(n, state.views[p].data(), state.ws);
      row[p] = -log_f;
    }
    row[num_plates] = -log_q;
  });

  MonteCarloEstimate estimate;
  estimate.samples = samples;
  estimate.plate_energy.assign(num_plates, 0.0);
  estimate.plate_energy_error.assign(num_plates, 0.0);
  // The mean and standard error of value(row) over the draws; the free energy of a draw is
  // Σ_plates (−Σ_n log f_n) + log q = log q − log p.
  auto column = [&](auto value, double& mean, double& error) {
    double sum = 0.0;
    for (size_t s = 0; s < samples; ++s) sum += value(values.data() + s * width);
    mean = sum / static_cast<double>(samples);
    double squares = 0.0;
    for (size_t s = 0; s < samples; ++s) {
      const double deviation = value(values.data() + s * width) - mean;
      squares += deviation * deviation;
    }
    error = std::sqrt(squares / static_cast<double>(samples - 1) / static_cast<double>(samples));
  };
  for (size_t p = 0; p < num_plates; ++p) {
    column([p](const double* row) { return row[p]; }, estimate.plate_energy[p],
           estimate.plate_energy_error[p]);
    if (std::isnan(estimate.plate_energy[p]))
      throw ModelError("MonteCarloFreeEnergy: " + g.PlateLabel(static_cast<PlateId>(p)) +
                       " has no pointwise log-density, or gave NaN at a draw of q");
  }
  column([num_plates](const double* row) { return row[num_plates]; }, estimate.entropy,
         estimate.entropy_error);
  column(
      [num_plates](const double* row) {
        double f = -row[num_plates];  // log q
        for (size_t p = 0; p < num_plates; ++p) f += row[p];
        return f;
      },
      estimate.free_energy, estimate.standard_error);
  return estimate;
}

}  // namespace vfe
