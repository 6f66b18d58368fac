#ifndef VFE_BENCH_MODELS_H_
#define VFE_BENCH_MODELS_H_

// The models the benchmarks share: the Gaussian mixture of BayesPy's reference case and an
// open-boundary Ising grid, generated with SplitMix64.

#include <cmath>
#include <random>
#include <vector>

#include "vfe/model.h"

namespace vfe {
namespace bench {

constexpr int kComponents = 5, kDimension = 2;

/// N points of the reference generator: weights, centres and covariances of gmm_N10000.json.
struct MixtureData {
  Matrix points;
  std::vector<int> labels0;  // nearest of K farthest-point seeds, as the reference init
};

inline MixtureData MakeMixtureData(int n, uint64_t seed) {
  const double weights[kComponents] = {0.3, 0.25, 0.2, 0.15, 0.1};
  const double centres[kComponents][kDimension] = {{-6, -4}, {-2, 5}, {3, -3}, {6, 4}, {0, 0}};
  const double covariances[kComponents][3] = {  // (Σ11, Σ12, Σ22)
      {0.38976527982199116, -0.08913764089652951, 1.0659222781302495},
      {0.3578708217159471, 0.11181754841387077, 0.6309246161697892},
      {0.39908589514571685, -0.10918636533340305, 1.612011666308074},
      {0.31829435041565435, -0.020053104930403465, 0.3919242466030807},
      {3.4911983649549962, -1.5087607575051103, 1.784542991227789}};
  SplitMix64 rng(seed);
  const std::vector<double> normals = SplitMixNormals(seed + 1, 2 * n, 0.0, 1.0);
  MixtureData data;
  data.points.resize(n, kDimension);
  for (int i = 0; i < n; ++i) {
    double u = rng.Uniform();
    int k = 0;
    while (k + 1 < kComponents && u >= weights[k]) u -= weights[k++];
    const double* s = covariances[k];
    const double l11 = std::sqrt(s[0]), l21 = s[1] / l11, l22 = std::sqrt(s[2] - l21 * l21);
    const double e1 = normals[2 * i], e2 = normals[2 * i + 1];
    data.points(i, 0) = centres[k][0] + l11 * e1;
    data.points(i, 1) = centres[k][1] + l21 * e1 + l22 * e2;
  }
  // Farthest-point seeds c_0 = y_0, c_j = argmax_n min_{i<j} |y_n − c_i|², then nearest seed.
  std::vector<int> seeds = {0};
  Vector nearest = (data.points.rowwise() - data.points.row(0)).rowwise().squaredNorm();
  while (static_cast<int>(seeds.size()) < kComponents) {
    Eigen::Index far = 0;
    nearest.maxCoeff(&far);
    seeds.push_back(static_cast<int>(far));
    nearest = nearest.cwiseMin((data.points.rowwise() - data.points.row(far)).rowwise().squaredNorm());
  }
  data.labels0.resize(n);
  for (int i = 0; i < n; ++i) {
    int best = 0;
    for (int c = 1; c < kComponents; ++c)
      if ((data.points.row(i) - data.points.row(seeds[c])).squaredNorm() <
          (data.points.row(i) - data.points.row(seeds[best])).squaredNorm())
        best = c;
    data.labels0[i] = best;
  }
  return data;
}

/// The mixture model of examples/gaussian_mixture.cc (the priors of the BayesPy reference
/// case) over the rows of `points` with k components, finalised, every label at its prior;
/// `order` receives the reference case's update order (means, precisions, weights, labels).
inline FactorGraph MakeMixtureModel(const Matrix& points, int k, std::vector<Variable>* order) {
  const int n = static_cast<int>(points.rows()), d = static_cast<int>(points.cols());
  FactorGraph graph;
  const Variable mu = graph.AddVariableArray("mu", Family::kMvGaussian, {size_t(k)}, d);
  const Variable lambda = graph.AddVariableArray("Lambda", Family::kWishart, {size_t(k)}, d);
  const Variable weights = graph.AddVariable("weights", Family::kDirichlet, k);
  const Variable z = graph.AddVariableArray("z", Family::kCategorical, {size_t(n)}, k);
  graph.AddMvGaussian(mu, Vector(Vector::Zero(d)), Matrix(0.01 * Matrix::Identity(d, d)));
  graph.AddWishart(lambda, 3.0, Matrix(Matrix::Identity(d, d)));
  graph.AddDirichlet(weights, Vector(Vector::Ones(k)));
  graph.AddCategorical(z, weights);
  graph.AddGaussianMixture(graph.AddObservedRows("y", points), z, mu, lambda);
  graph.Finalize();
  *order = {mu, lambda, weights, z};
  return graph;
}

/// The mixture over `data`, q(z) one-hot at labels0.
inline FactorGraph MakeMixtureGraph(const MixtureData& data, std::vector<Variable>* order) {
  FactorGraph graph = MakeMixtureModel(data.points, kComponents, order);
  const Variable& z = order->back();
  for (size_t i = 0; i < z.size(); ++i) {
    Vector one_hot = Vector::Zero(kComponents);
    one_hot[data.labels0[i]] = 1.0;
    graph.SetPosterior(z[i], Categorical(one_hot));
  }
  return graph;
}

/// An open side × side Ising grid of random couplings J = normal(rng) and fields
/// h = field_scale · normal(rng) (drawn in that order: fields, each row's horizontal
/// couplings, the vertical ones), in three kinds of plates: the fields, one plate per row of
/// horizontal couplings, one of vertical couplings. Finalised; `order` receives {s}.
inline FactorGraph MakeRandomIsingGraph(int side, double field_scale,
                                        std::normal_distribution<double>& normal,
                                        std::mt19937_64& rng, std::vector<Variable>* order) {
  const size_t n = static_cast<size_t>(side) * side;
  FactorGraph graph;
  const Variable s =
      graph.AddVariableArray("s", Family::kCategorical, {size_t(side), size_t(side)}, 2);
  std::vector<double> fields, vertical;
  for (size_t i = 0; i < n; ++i) {
    const double h = field_scale * normal(rng);
    fields.insert(fields.end(), {-h, h});
  }
  graph.AddPotential({s}, fields);
  for (int r = 0; r < side; ++r) {
    std::vector<double> tables;
    for (int c = 0; c + 1 < side; ++c) {
      const double j = normal(rng);
      tables.insert(tables.end(), {j, -j, -j, j});
    }
    const size_t row = static_cast<size_t>(r) * side;
    graph.AddPotential({s.Slice(row, row + side - 1), s.Slice(row + 1, row + side)}, tables);
  }
  for (size_t i = 0; i + side < n; ++i) {
    const double j = normal(rng);
    vertical.insert(vertical.end(), {j, -j, -j, j});
  }
  graph.AddPotential({s.Slice(0, n - side), s.Slice(side, n)}, vertical);
  graph.Finalize();
  *order = {s};
  return graph;
}

/// Couplings of an open-boundary side × side grid: right[i] couples spin i to i + 1 (0 on the
/// last column), down[i] to i + side (0 on the last row); fields h[i].
struct IsingGrid {
  int side = 0;
  std::vector<double> h, right, down;
};

inline IsingGrid MakeIsingGrid(int side) {
  IsingGrid grid;
  grid.side = side;
  const size_t n = static_cast<size_t>(side) * side;
  const std::vector<double> draws = SplitMixNormals(1001, 4 * n, 0.0, 0.5);
  grid.h.assign(draws.begin(), draws.begin() + n);
  grid.right.assign(n, 0.0);
  grid.down.assign(n, 0.0);
  for (int r = 0; r < side; ++r)
    for (int c = 0; c < side; ++c) {
      const size_t i = static_cast<size_t>(r) * side + c;
      if (c + 1 < side) grid.right[i] = draws[n + i];
      if (r + 1 < side) grid.down[i] = draws[2 * n + i];
    }
  return grid;
}

/// The grid as a factor graph: with `plates`, one plate of fields, one plate of horizontal
/// couplings per row and one of vertical couplings (each with one table per factor), as a JSON
/// model with "for" loops builds it; without, one plate per factor, as a libDAI .fg file loads.
inline FactorGraph MakeIsingGraph(const IsingGrid& grid, bool plates, Variable* spins) {
  const int side = grid.side;
  const size_t n = grid.h.size();
  FactorGraph graph;
  const Variable s = graph.AddVariableArray(
      "s", Family::kCategorical, {size_t(side), size_t(side)}, 2);
  auto coupling = [](double j, std::vector<double>& tables) {
    for (double entry : {j, -j, -j, j}) tables.push_back(entry);
  };
  if (plates) {
    std::vector<double> fields;
    for (size_t i = 0; i < n; ++i) {
      fields.push_back(-grid.h[i]);
      fields.push_back(grid.h[i]);
    }
    graph.AddPotential({s}, fields);
    for (int r = 0; r < side; ++r) {
      const size_t row = static_cast<size_t>(r) * side;
      std::vector<double> tables;
      for (int c = 0; c + 1 < side; ++c) coupling(grid.right[row + c], tables);
      graph.AddPotential({s.Slice(row, row + side - 1), s.Slice(row + 1, row + side)}, tables);
    }
    std::vector<double> tables;
    for (size_t i = 0; i + side < n; ++i) coupling(grid.down[i], tables);
    graph.AddPotential({s.Slice(0, n - side), s.Slice(side, n)}, tables);
  } else {
    for (size_t i = 0; i < n; ++i) graph.AddPotential({s[i]}, {-grid.h[i], grid.h[i]});
    for (size_t i = 0; i < n; ++i) {
      std::vector<double> table;
      if (i % side + 1 < static_cast<size_t>(side)) {
        coupling(grid.right[i], table);
        graph.AddPotential({s[i], s[i + 1]}, table);
        table.clear();
      }
      if (i + side < n) {
        coupling(grid.down[i], table);
        graph.AddPotential({s[i], s[i + side]}, table);
      }
    }
  }
  graph.Finalize();
  *spins = s;
  return graph;
}

}  // namespace bench
}  // namespace vfe

#endif  // VFE_BENCH_MODELS_H_
