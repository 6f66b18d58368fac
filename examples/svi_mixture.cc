// Stochastic variational inference on a Gaussian mixture streamed from disk.
//
// Writes N points of the reference generator (five 2-D components) to a CSV file if it is
// not there, then runs SVI on minibatches read from the file: the model is written for one
// minibatch of B points, so memory does not grow with N. At the end one more pass over the
// file gives the free energy of the whole data set at SVI's global posteriors; with
// --full-batch the same model is also solved by full-batch VMP in memory, for comparison.
//
//   svi_mixture [--points N] [--batch B] [--passes P] [--data FILE] [--full-batch]
//
// Defaults: N = 10,000,000, B = 1,000, P = 2, FILE = svi_mixture.csv (in the current
// directory).

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include "vfe/model.h"

using namespace vfe;

namespace {

constexpr int kComponents = 5;

/// The generator of the reference mixture (tests/data/reference/bayespy/gmm_N10000.json):
/// weights, centres and covariances of its five components.
void WritePoints(const std::string& path, size_t n, uint64_t seed) {
  const double weights[kComponents] = {0.3, 0.25, 0.2, 0.15, 0.1};
  const double centres[kComponents][2] = {{-6, -4}, {-2, 5}, {3, -3}, {6, 4}, {0, 0}};
  const double covariances[kComponents][3] = {  // (xx, xy, yy)
      {0.38976527982199116, -0.08913764089652951, 1.0659222781302495},
      {0.3578708217159471, 0.11181754841387077, 0.6309246161697892},
      {0.39908589514571685, -0.10918636533340305, 1.612011666308074},
      {0.31829435041565435, -0.020053104930403465, 0.3919242466030807},
      {3.4911983649549962, -1.5087607575051103, 1.784542991227789}};
  std::mt19937_64 rng(seed);
  std::discrete_distribution<int> component(weights, weights + kComponents);
  std::normal_distribution<double> normal;
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (!out) throw ModelError(path + ": cannot write the file");
  for (size_t i = 0; i < n; ++i) {
    const int k = component(rng);
    // x = c + L z with L the Cholesky factor of the covariance.
    const double l11 = std::sqrt(covariances[k][0]);
    const double l21 = covariances[k][1] / l11;
    const double l22 = std::sqrt(covariances[k][2] - l21 * l21);
    const double z1 = normal(rng), z2 = normal(rng);
    std::fprintf(out, "%.6f,%.6f\n", centres[k][0] + l11 * z1,
                 centres[k][1] + l21 * z1 + l22 * z2);
  }
  std::fclose(out);
}

/// The mixture over `rows` (BayesPy's priors of the reference case).
FactorGraph MixtureGraph(const Matrix& rows) {
  const int d = 2;
  FactorGraph g;
  const Variable mu = g.AddVariableArray("mu", Family::kMvGaussian, {kComponents}, d);
  const Variable lambda = g.AddVariableArray("Lambda", Family::kWishart, {kComponents}, d);
  const Variable weights = g.AddVariable("weights", Family::kDirichlet, kComponents);
  const Variable z = g.AddVariableArray("z", Family::kCategorical, {size_t(rows.rows())}, kComponents);
  g.AddMvGaussian(mu, Vector(Vector::Zero(d)), Matrix(0.01 * Matrix::Identity(d, d)));
  g.AddWishart(lambda, 3.0, Matrix(Matrix::Identity(d, d)));
  g.AddDirichlet(weights, Vector(Vector::Ones(kComponents)));
  g.AddCategorical(z, weights);
  g.AddGaussianMixture(g.AddObservedRows("y", rows), z, mu, lambda);
  g.Finalize();
  return g;
}

/// Starts the means at the first K points that lie far apart (farthest-point seeds of the
/// first rows), as k-means++-like initialisations do.
void SeedMeans(FactorGraph& g, const Matrix& rows) {
  const Variable mu = g.Find("mu");
  std::vector<Eigen::Index> seeds = {0};
  while (seeds.size() < kComponents) {
    Eigen::Index best = 0;
    double farthest = -1.0;
    for (Eigen::Index i = 0; i < rows.rows(); ++i) {
      double nearest = INFINITY;
      for (Eigen::Index s : seeds) nearest = std::min(nearest, (rows.row(i) - rows.row(s)).squaredNorm());
      if (nearest > farthest) {
        farthest = nearest;
        best = i;
      }
    }
    seeds.push_back(best);
  }
  for (int k = 0; k < kComponents; ++k)
    g.SetPosterior(mu[k], MvGaussian(Vector(rows.row(seeds[k]).transpose()),
                                     Matrix(Matrix::Identity(2, 2))));
}

Matrix ReadFirstRows(const std::string& path, size_t count) {
  std::ifstream in(path);
  Matrix rows(static_cast<Eigen::Index>(count), 2);
  std::string line;
  for (Eigen::Index i = 0; i < rows.rows() && std::getline(in, line); ++i)
    std::sscanf(line.c_str(), "%lf,%lf", &rows(i, 0), &rows(i, 1));
  return rows;
}

double PeakMemoryMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 10000000, batch = 1000, passes = 2;
  std::string path = "svi_mixture.csv";
  bool full_batch = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << ": missing its value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--points") n = std::stoul(next());
    else if (a == "--batch") batch = std::stoul(next());
    else if (a == "--passes") passes = std::stoul(next());
    else if (a == "--data") path = next();
    else if (a == "--full-batch") full_batch = true;
    else {
      std::cerr << "usage: svi_mixture [--points N] [--batch B] [--passes P] [--data FILE] "
                   "[--full-batch]\n";
      return 2;
    }
  }
  try {
    auto start = std::chrono::steady_clock::now();
    {
      std::ifstream existing(path);
      size_t lines = 0;
      std::string line;
      while (existing && std::getline(existing, line)) ++lines;
      if (lines != n) {
        std::printf("writing %zu points to %s\n", n, path.c_str());
        WritePoints(path, n, 20261130);
        std::printf("  %.1f s\n", Seconds(start));
      }
    }

    // The model for one minibatch; the data variable is filled from the file batch by batch.
    FactorGraph graph = MixtureGraph(Matrix::Zero(static_cast<Eigen::Index>(batch), 2));
    SeedMeans(graph, ReadFirstRows(path, std::min<size_t>(n, 10 * batch)));
    CsvMinibatches source(path, graph, graph.Find("y"));
    SviOptions options;
    options.steps = passes * (n / batch);
    const size_t report = std::max<size_t>(1, options.steps / 10);
    options.callback = [&](const SviStep& step) {
      if (step.step % report == 0 || step.step == options.steps)
        std::printf("step %7zu  rho %.4f  F estimate %.6e  %.1f s\n", step.step, step.step_size,
                    step.free_energy_estimate, step.elapsed_ms / 1000.0);
      return true;
    };
    const StochasticVariationalInference svi(options);
    start = std::chrono::steady_clock::now();
    const Variable z = graph.Find("z");
    svi.Run(graph, {z}, source);
    const double svi_seconds = Seconds(start);
    start = std::chrono::steady_clock::now();
    const double svi_f = svi.FullFreeEnergy(graph, {z}, source);
    std::printf("SVI: %zu steps of %zu points in %.1f s; F over all %zu points = %.8e "
                "(one more pass, %.1f s)\n",
                options.steps, batch, svi_seconds, n, svi_f, Seconds(start));
    std::printf("peak memory so far: %.0f MB\n", PeakMemoryMb());
    const Variable mu = graph.Find("mu");
    const Dirichlet weights = graph.Posterior<Dirichlet>(graph.Find("weights"));
    for (int k = 0; k < kComponents; ++k) {
      const Vector m = graph.Posterior<MvGaussian>(mu[k]).mean();
      std::printf("  component %d: weight %.4f, mean (%+.4f, %+.4f)\n", k,
                  weights.alpha()[k] / weights.alpha().sum(), m[0], m[1]);
    }

    if (full_batch) {
      std::printf("full-batch VMP on all %zu points in memory...\n", n);
      start = std::chrono::steady_clock::now();
      Matrix rows = ReadFirstRows(path, n);
      FactorGraph full = MixtureGraph(rows);
      rows.resize(0, 0);
      SeedMeans(full, ReadFirstRows(path, std::min<size_t>(n, 10 * batch)));
      SchedulerOptions vmp;
      vmp.max_iterations = 1000;
      vmp.tolerance = 1e-10;
      vmp.order = {full.Find("z"), full.Find("mu"), full.Find("Lambda"), full.Find("weights")};
      const Result result = SequentialScheduler(vmp).Run(full);
      const double full_f = result.free_energy.back();
      std::printf("full batch: %d sweeps, F = %.8e (%.1f s, peak memory %.0f MB)\n",
                  result.iterations, full_f, Seconds(start), PeakMemoryMb());
      std::printf("SVI - full batch = %.4g (%.4f%% of |F|)\n", svi_f - full_f,
                  100.0 * (svi_f - full_f) / std::abs(full_f));
    }
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
