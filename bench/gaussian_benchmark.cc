// Time per sweep of the Gaussian model with unknown mean and precision,
//   μ ~ N(0, precision 1e-2),  τ ~ Gamma(1e-3, 1e-3),  y_n ~ N(μ, 1/τ),  q(μ)q(τ),
// the model of examples/gaussian_mean_precision.cc, at N = 10³ and 10⁶. The data and priors
// are those of BayesPy's reference cases tests/data/reference/bayespy/gauss_N<N>.json (their
// "generator" and "model" blocks: SplitMix64 Box–Muller, seed 1 for N = 10³ and seed 2 for
// N = 10⁶, N(3, 2²)); without the reference file the same constants are used.
//
//   BM_EngineSweep          one sweep as SequentialScheduler runs it: UpdateElement(μ),
//                           UpdateElement(τ), FreeEnergy. The likelihood plate's "out" is
//                           observed, so the Gaussian node sums the data's sufficient
//                           statistics (Σy, Σy²) once, at Finalize, and a sweep reads the sums:
//                           it does not touch the N data, and its time does not depend on N.
//   BM_EngineSweepDataPass  the same sweep with the graph's own nodes (graph.node(plate)) and
//                           the Node interface the engine calls, but the likelihood evaluated
//                           over the two halves [0, N/2) and [N/2, N): the cached sums serve
//                           only the full range, so every message and the average energy run
//                           the node's per-factor loop over all N data (three passes per
//                           sweep). This is the cost of a plate whose sums cannot be cached,
//                           and the figure to compare with BayesPy, which sums over the data on
//                           every sweep.
//   BM_HandWrittenLoop      the baseline: the same maths by hand, no library, one pass over
//                           the data per sweep (Σy, Σy², then the μ and τ updates and F).
//
// Every benchmark reports allocs_per_sweep (heap allocations inside the timed loop, counted by
// replacing malloc, calloc, realloc and the aligned allocators in this binary, which operator
// new calls too) and free_energy, F after the last sweep: after the first few sweeps all three
// sit at the fixed point, F = −(BayesPy's final lower bound).
//
// Run (see bench/RESULTS.md): gaussian_benchmark  (10 repetitions, medians reported).

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/testing/allocation_counter.h"
#include "vfe/core/special.h"
#include "vfe/model.h"

#ifndef VFE_REFERENCE_DIR
#define VFE_REFERENCE_DIR ""
#endif

namespace vfe {
namespace {

/// Data generator and priors of one size.
struct Setup {
  uint64_t seed = 2;
  double data_mean = 3.0, data_sd = 2.0;
  double mu_prior_mean = 0.0, mu_prior_precision = 0.01;
  double tau_prior_shape = 1e-3, tau_prior_rate = 1e-3;
  std::vector<double> y;
};

/// The setup of size n, from bayespy/gauss_N<n>.json if the reference folder has it. Without
/// it, the same constants: the reference files use seed 1 for N = 1,000 and seed 2 for
/// N = 1,000,000, both N(3, 2²), with μ ~ N(0, precision 1e-2) and τ ~ Gamma(1e-3, 1e-3).
const Setup& GetSetup(size_t n) {
  static std::map<size_t, Setup> setups;
  auto found = setups.find(n);
  if (found != setups.end()) return found->second;
  Setup setup;
  setup.seed = n == 1000 ? 1 : 2;
  const std::string path =
      std::string(VFE_REFERENCE_DIR) + "/bayespy/gauss_N" + std::to_string(n) + ".json";
  std::ifstream file(path);
  if (file) {
    const nlohmann::json data = nlohmann::json::parse(file);
    const nlohmann::json& generator = data.at("generator");
    const nlohmann::json& model = data.at("model");
    setup.seed = generator.at("seed").get<uint64_t>();
    setup.data_mean = generator.at("mean").get<double>();
    setup.data_sd = generator.at("sd").get<double>();
    setup.mu_prior_mean = model.at("mu_prior_mean").get<double>();
    setup.mu_prior_precision = model.at("mu_prior_precision").get<double>();
    setup.tau_prior_shape = model.at("tau_prior_shape").get<double>();
    setup.tau_prior_rate = model.at("tau_prior_rate").get<double>();
  } else {
    std::fprintf(stderr, "gaussian_benchmark: no reference file for N = %zu, using the "
                 "built-in generator constants\n", n);
  }
  setup.y = SplitMixNormals(setup.seed, n, setup.data_mean, setup.data_sd);
  return setups.emplace(n, std::move(setup)).first->second;
}

/// The model as examples/gaussian_mean_precision.cc builds it.
struct GaussianModel {
  explicit GaussianModel(const Setup& setup) {
    mu = graph.AddVariable("mu", Family::kGaussian);
    tau = graph.AddVariable("tau", Family::kGamma);
    mu_prior = graph.AddGaussian(mu, setup.mu_prior_mean, setup.mu_prior_precision, "mu_prior");
    tau_prior = graph.AddGamma(tau, setup.tau_prior_shape, setup.tau_prior_rate, "tau_prior");
    likelihood = graph.AddGaussian(graph.AddObserved("y", setup.y), mu, tau, "likelihood");
    graph.Finalize();
  }
  FactorGraph graph;
  Variable mu, tau;
  PlateId mu_prior = 0, tau_prior = 0, likelihood = 0;
};

void ReportCounters(benchmark::State& state, long allocations, double free_energy) {
  state.counters["allocs_per_sweep"] =
      static_cast<double>(allocations) / static_cast<double>(state.iterations());
  state.counters["free_energy"] = free_energy;
}

void BM_EngineSweep(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  GaussianModel model(GetSetup(n));
  FactorGraph& graph = model.graph;
  Scratch scratch = graph.MakeScratch();
  double free_energy = 0.0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    graph.UpdateElement(model.mu.id(), 0, scratch);
    graph.UpdateElement(model.tau.id(), 0, scratch);
    free_energy = graph.FreeEnergy(scratch);
    benchmark::DoNotOptimize(free_energy);
  }
  ReportCounters(state, testing::AllocationCount() - before, free_energy);
}

/// The engine's sweep written out with the graph's nodes and the Node interface, with the
/// likelihood evaluated over two halves of its plate so that it passes over the data.
class DataPassSweep {
 public:
  explicit DataPassSweep(const GaussianModel& model)
      : mu_prior_(model.graph.node(model.mu_prior)),
        tau_prior_(model.graph.node(model.tau_prior)),
        likelihood_(model.graph.node(model.likelihood)),
        n_(model.graph.plate_size(model.likelihood)),
        data_moments_(2 * n_),
        workspace_(1) {
    const Setup& setup = GetSetup(n_);
    for (size_t i = 0; i < n_; ++i) Gaussian::PointMoments(setup.y[i], &data_moments_[2 * i]);
    // Constants are read as point masses: the prior mean as a Gaussian, precision and rate
    // as Gammas (FactorGraph does the same).
    Gaussian::PointMoments(setup.mu_prior_mean, prior_mean_moments_);
    Gamma::PointMoments(setup.mu_prior_precision, prior_precision_moments_);
    Gamma::PointMoments(setup.tau_prior_rate, prior_rate_moments_);
    // Start where the graph starts (its posteriors after Finalize).
    model.graph.Posterior<Gaussian>(model.mu).WriteNatural(mu_eta_);
    model.graph.Posterior<Gamma>(model.tau).WriteNatural(tau_eta_);
    Gaussian::Moments(mu_eta_, mu_moments_);
    Gamma::Moments(tau_eta_, tau_moments_);
  }

  /// Updates q(μ), then q(τ), and returns F. Allocation-free.
  double Sweep() {
    const size_t half = n_ / 2;
    mu_eta_[0] = mu_eta_[1] = 0.0;
    mu_prior_.AccumulateMessage(0, 0, 1, mu_prior_views_, mu_eta_, workspace_);
    likelihood_.AccumulateMessage(1, 0, half, likelihood_views_, mu_eta_, workspace_);
    likelihood_.AccumulateMessage(1, half, n_, likelihood_views_, mu_eta_, workspace_);
    Gaussian::Moments(mu_eta_, mu_moments_);
    tau_eta_[0] = tau_eta_[1] = 0.0;
    tau_prior_.AccumulateMessage(0, 0, 1, tau_prior_views_, tau_eta_, workspace_);
    likelihood_.AccumulateMessage(2, 0, half, likelihood_views_, tau_eta_, workspace_);
    likelihood_.AccumulateMessage(2, half, n_, likelihood_views_, tau_eta_, workspace_);
    Gamma::Moments(tau_eta_, tau_moments_);
    const double energy = mu_prior_.AverageEnergy(0, 1, mu_prior_views_, workspace_) +
                          tau_prior_.AverageEnergy(0, 1, tau_prior_views_, workspace_) +
                          likelihood_.AverageEnergy(0, half, likelihood_views_, workspace_) +
                          likelihood_.AverageEnergy(half, n_, likelihood_views_, workspace_);
    return energy - Gaussian::Entropy(mu_eta_) - Gamma::Entropy(tau_eta_);
  }

 private:
  const Node& mu_prior_;
  const Node& tau_prior_;
  const Node& likelihood_;
  size_t n_;
  std::vector<double> data_moments_;  // (y_n, y_n²), as the graph stores observed moments
  double prior_mean_moments_[2], prior_precision_moments_[2], prior_rate_moments_[2];
  double mu_eta_[2], tau_eta_[2], mu_moments_[2], tau_moments_[2];
  // Slot order: Gaussian (out, mean, precision), Gamma (out, rate); shared slots stride 0.
  const SlotView mu_prior_views_[3] = {
      {mu_moments_, 0, nullptr}, {prior_mean_moments_, 0, nullptr},
      {prior_precision_moments_, 0, nullptr}};
  const SlotView tau_prior_views_[2] = {{tau_moments_, 0, nullptr},
                                        {prior_rate_moments_, 0, nullptr}};
  const SlotView likelihood_views_[3] = {
      {data_moments_.data(), 2, nullptr}, {mu_moments_, 0, nullptr}, {tau_moments_, 0, nullptr}};
  Workspace workspace_;
};

void BM_EngineSweepDataPass(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  GaussianModel model(GetSetup(n));
  DataPassSweep sweep(model);
  {
    // The written-out sweep must be the engine's sweep: compare the first one.
    Scratch scratch = model.graph.MakeScratch();
    model.graph.UpdateElement(model.mu.id(), 0, scratch);
    model.graph.UpdateElement(model.tau.id(), 0, scratch);
    const double engine = model.graph.FreeEnergy(scratch);
    const double data_pass = sweep.Sweep();
    if (!(std::abs(engine - data_pass) <= 1e-9 * std::abs(engine))) {
      state.SkipWithError(("the data-pass sweep gives F = " + std::to_string(data_pass) +
                           ", the engine " + std::to_string(engine))
                              .c_str());
      return;
    }
  }
  double free_energy = 0.0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    free_energy = sweep.Sweep();
    benchmark::DoNotOptimize(free_energy);
  }
  ReportCounters(state, testing::AllocationCount() - before, free_energy);
}

void BM_HandWrittenLoop(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Setup& setup = GetSetup(n);
  const std::vector<double>& y = setup.y;
  const double m0 = setup.mu_prior_mean, k0 = setup.mu_prior_precision;
  const double a0 = setup.tau_prior_shape, b0 = setup.tau_prior_rate;
  const double count = static_cast<double>(n);
  constexpr double kLogTwoPi = 1.8378770664093454836;
  double tau_mean = a0 / b0;  // q(τ) starts at its prior
  double free_energy = 0.0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    double sum = 0.0, sum2 = 0.0;
    for (size_t i = 0; i < n; ++i) {
      sum += y[i];
      sum2 += y[i] * y[i];
    }
    // q(μ) = N(mean, 1/precision), then q(τ) = Gamma(shape, rate).
    const double precision = k0 + count * tau_mean;
    const double mean = (k0 * m0 + tau_mean * sum) / precision;
    const double second = mean * mean + 1.0 / precision;
    const double shape = a0 + 0.5 * count;
    const double rate = b0 + 0.5 * (sum2 - 2.0 * mean * sum + count * second);
    tau_mean = shape / rate;
    const double tau_log = Digamma(shape) - std::log(rate);
    // F = U_likelihood + KL(q(μ) ‖ p(μ)) + KL(q(τ) ‖ p(τ)).
    const double likelihood = 0.5 * count * (kLogTwoPi - tau_log) + (rate - b0) * tau_mean;
    const double kl_mu =
        0.5 * (k0 / precision - 1.0 + std::log(precision / k0) + k0 * (mean - m0) * (mean - m0));
    const double kl_tau = (shape - a0) * Digamma(shape) - std::lgamma(shape) + std::lgamma(a0) +
                          a0 * (std::log(rate) - std::log(b0)) + shape * (b0 - rate) / rate;
    free_energy = likelihood + kl_mu + kl_tau;
    benchmark::DoNotOptimize(free_energy);
  }
  ReportCounters(state, testing::AllocationCount() - before, free_energy);
}

// Medians of 10 repetitions (mean, median, stddev and cv are reported per benchmark).
#define VFE_SWEEP_BENCHMARK(name)                                                         \
  BENCHMARK(name)->Arg(1000)->Arg(1000000)->Unit(benchmark::kMicrosecond)->UseRealTime() \
      ->Repetitions(10)->ReportAggregatesOnly(true)
VFE_SWEEP_BENCHMARK(BM_EngineSweep);
VFE_SWEEP_BENCHMARK(BM_EngineSweepDataPass);
VFE_SWEEP_BENCHMARK(BM_HandWrittenLoop);

}  // namespace
}  // namespace vfe

int main(int argc, char** argv) {
  // The allocation counter must see operator new, or allocs_per_sweep would read 0 falsely.
  const long before = vfe::testing::AllocationCount();
  benchmark::DoNotOptimize(std::make_unique<std::vector<double>>(16).get());
  if (vfe::testing::AllocationCount() - before < 2) {
    std::fprintf(stderr, "gaussian_benchmark: the allocation counter does not see operator "
                 "new\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
