// Writes the K = 5, D = 2 Gaussian mixture of N points that the `vfe run --mpi` test runs:
// DIR/mixture.csv (y0, y1: five clusters, std::mt19937_64 seed 7; z0..z4: a soft start of
// q(z) from five fixed points) and DIR/mixture.json, the model of
// examples/gaussian_mixture.json for those N points. Usage: make_mixture DIR N

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_mixture DIR N\n");
    return 2;
  }
  const std::string dir = argv[1];
  const long n = std::atol(argv[2]);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  const double centres[5][2] = {{0, 0}, {6, 0}, {0, 6}, {-6, 0}, {0, -6}};
  const double starts[5][2] = {{1, 1}, {5, -1}, {-1, 5}, {-5, 1}, {1, -5}};
  std::filesystem::create_directories(dir);
  std::FILE* csv = std::fopen((dir + "/mixture.csv").c_str(), "w");
  if (!csv) return 1;
  std::fprintf(csv, "y0,y1,z0,z1,z2,z3,z4\n");
  for (long i = 0; i < n; ++i) {
    const double x = centres[i % 5][0] + normal(rng), y = centres[i % 5][1] + normal(rng);
    double p[5], total = 0.0;
    for (int c = 0; c < 5; ++c) {
      const double dx = x - starts[c][0], dy = y - starts[c][1];
      total += p[c] = std::exp(-0.1 * (dx * dx + dy * dy)) + 1e-12;
    }
    std::fprintf(csv, "%.17g,%.17g", x, y);
    for (int c = 0; c < 5; ++c) std::fprintf(csv, ",%.17g", p[c] / total);
    std::fprintf(csv, "\n");
  }
  std::fclose(csv);
  const std::string size = std::to_string(n);
  std::ofstream json(dir + "/mixture.json");
  json << R"({"format": "vfe-model/1",
 "variables": [
  {"name": "mu", "family": "MvGaussian", "dim": 2, "shape": [5]},
  {"name": "Lambda", "family": "Wishart", "dim": 2, "shape": [5]},
  {"name": "weights", "family": "Dirichlet", "dim": 5},
  {"name": "z", "family": "Categorical", "dim": 5, "shape": [)" << size << R"(]},
  {"name": "y", "dim": 2, "shape": [)" << size << R"(],
   "observed": {"csv": "mixture.csv", "columns": ["y0", "y1"]}}],
 "factors": [
  {"node": "MvGaussian", "for": {"k": [0, 5]}, "out": "mu[k]", "mean": [0, 0],
   "precision": [[0.01, 0], [0, 0.01]]},
  {"node": "Wishart", "for": {"k": [0, 5]}, "out": "Lambda[k]", "dof": 3,
   "scale": [[1, 0], [0, 1]]},
  {"node": "Dirichlet", "out": "weights", "alpha": [1, 1, 1, 1, 1]},
  {"node": "Categorical", "for": {"n": [0, )" << size << R"(]}, "out": "z[n]", "p": "weights"},
  {"node": "GaussianMixture", "for": {"n": [0, )" << size << R"(]}, "out": "y[n]",
   "switch": "z[n]", "means": "mu", "precisions": "Lambda"}],
 "inference": {"iterations": 25, "tolerance": 0, "order": ["mu", "Lambda", "weights", "z"],
  "initial": {"z": {"p": {"csv": "mixture.csv", "columns": ["z0", "z1", "z2", "z3", "z4"]}}}}}
)";
  return json ? 0 : 1;
}
