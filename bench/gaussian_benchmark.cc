// Time per sweep of the Gaussian μ,τ model (y_n ~ N(μ, 1/τ), μ ~ N(0, 1e-2), τ ~ Gamma(1e-3,
// 1e-3)) on the data of shared/reference/bayespy/gauss_N1000000.json (SplitMix64 seed 2,
// N(3, 2²)), N = 10³ and 10⁶:
//   EngineSweep        what SequentialScheduler does per sweep: update μ, update τ, then F.
//                      The likelihood plate reads the data's summed sufficient statistics,
//                      cached at Finalize, so a sweep does not touch the N data.
//   NodeDataPass       the same messages and average energy from the Gaussian node's
//                      per-factor loops (two half ranges, which bypass the cache): one pass
//                      over the N data per sweep, as BayesPy does.
//   HandWrittenLoop    the baseline: the same maths written by hand, one pass over the data
//                      per sweep (Σy, Σy²), no library.
// Every benchmark reports allocs_per_sweep, counted by replacing malloc in this binary.
//
// Run: build/release/bench/gaussian_benchmark --benchmark_repetitions=10
//        --benchmark_report_aggregates_only=true   (see bench/RESULTS.md)

#include <benchmark/benchmark.h>

#include <cmath>

#include "tests/testing/allocation_counter.h"
#include "vfe/core/special.h"
#include "vfe/model.h"

namespace vfe {
namespace {

// The generator and priors of gauss_N1000000.json.
constexpr uint64_t kSeed = 2;
constexpr double kDataMean = 3.0, kDataSd = 2.0;
constexpr double kMuPriorMean = 0.0, kMuPriorPrecision = 0.01;
constexpr double kTauPriorShape = 1e-3, kTauPriorRate = 1e-3;

const std::vector<double>& Data(size_t n) {
  static std::vector<double> small = SplitMixNormals(kSeed, 1000, kDataMean, kDataSd);
  static std::vector<double> large = SplitMixNormals(kSeed, 1000000, kDataMean, kDataSd);
  return n == small.size() ? small : large;
}

void ReportAllocations(benchmark::State& state, long allocations) {
  state.counters["allocs_per_sweep"] =
      static_cast<double>(allocations) / static_cast<double>(state.iterations());
}

void BM_EngineSweep(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, kMuPriorMean, kMuPriorPrecision);
  graph.AddGamma(tau, kTauPriorShape, kTauPriorRate);
  graph.AddGaussian(graph.AddObserved("y", Data(n)), mu, tau);
  graph.Finalize();
  Scratch scratch = graph.MakeScratch();
  double free_energy = 0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    graph.UpdateElement(mu.id(), 0, scratch);
    graph.UpdateElement(tau.id(), 0, scratch);
    free_energy = graph.FreeEnergy(scratch);
    benchmark::DoNotOptimize(free_energy);
  }
  ReportAllocations(state, testing::AllocationCount() - before);
  state.counters["free_energy"] = free_energy;
}
BENCHMARK(BM_EngineSweep)->Arg(1000)->Arg(1000000)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_NodeDataPass(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<double>& y = Data(n);
  std::vector<double> data_moments(2 * n);
  for (size_t i = 0; i < n; ++i) Gaussian::PointMoments(y[i], &data_moments[2 * i]);
  std::unique_ptr<Node> node = MakeGaussianNode();
  node->Bind({{"out", Family::kGaussian, 1, false, true, "variable 'y'"},
              {"mean", Family::kGaussian, 1, true, false, "variable 'mu'"},
              {"precision", Family::kGamma, 1, true, false, "variable 'tau'"}},
             n, "likelihood");
  double mu_moments[2], tau_moments[2];
  const SlotView views[3] = {{data_moments.data(), 2, nullptr},
                             {mu_moments, 0, nullptr},
                             {tau_moments, 0, nullptr}};
  node->Prepare(views, n);
  const Gaussian mu_prior(kMuPriorMean, kMuPriorPrecision);
  const Gamma tau_prior(kTauPriorShape, kTauPriorRate);
  double mu_eta[2], tau_eta[2];
  mu_prior.WriteNatural(mu_eta);
  tau_prior.WriteNatural(tau_eta);
  Gaussian::Moments(mu_eta, mu_moments);
  Gamma::Moments(tau_eta, tau_moments);
  Workspace ws(1);
  const size_t half = n / 2;
  double energy = 0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    mu_prior.WriteNatural(mu_eta);
    node->AccumulateMessage(1, 0, half, views, mu_eta, ws);
    node->AccumulateMessage(1, half, n, views, mu_eta, ws);
    Gaussian::Moments(mu_eta, mu_moments);
    tau_prior.WriteNatural(tau_eta);
    node->AccumulateMessage(2, 0, half, views, tau_eta, ws);
    node->AccumulateMessage(2, half, n, views, tau_eta, ws);
    Gamma::Moments(tau_eta, tau_moments);
    energy = node->AverageEnergy(0, half, views, ws) + node->AverageEnergy(half, n, views, ws);
    benchmark::DoNotOptimize(energy);
  }
  ReportAllocations(state, testing::AllocationCount() - before);
  state.counters["likelihood_energy"] = energy;
}
BENCHMARK(BM_NodeDataPass)->Arg(1000)->Arg(1000000)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_HandWrittenLoop(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<double>& y = Data(n);
  constexpr double kLogTwoPi = 1.8378770664093454836;
  double mu_mean = kMuPriorMean, mu_second = kMuPriorMean * kMuPriorMean + 1 / kMuPriorPrecision;
  double tau_mean = kTauPriorShape / kTauPriorRate;
  double free_energy = 0;
  const long before = testing::AllocationCount();
  for (auto _ : state) {
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; ++i) {
      sum += y[i];
      sum2 += y[i] * y[i];
    }
    const double mu_precision = kMuPriorPrecision + n * tau_mean;
    mu_mean = (kMuPriorPrecision * kMuPriorMean + tau_mean * sum) / mu_precision;
    mu_second = mu_mean * mu_mean + 1 / mu_precision;
    const double shape = kTauPriorShape + 0.5 * n;
    const double rate = kTauPriorRate + 0.5 * (sum2 - 2 * mu_mean * sum + n * mu_second);
    tau_mean = shape / rate;
    const double tau_log = Digamma(shape) - std::log(rate);
    // F = U_likelihood + KL(q(μ) || p(μ)) + KL(q(τ) || p(τ)).
    const double likelihood = 0.5 * n * (kLogTwoPi - tau_log) + (rate - kTauPriorRate) * tau_mean;
    const double kl_mu = 0.5 * (kMuPriorPrecision / mu_precision - 1 +
                                std::log(mu_precision / kMuPriorPrecision) +
                                kMuPriorPrecision * (mu_mean - kMuPriorMean) *
                                    (mu_mean - kMuPriorMean));
    const double kl_tau = (shape - kTauPriorShape) * Digamma(shape) - std::lgamma(shape) +
                          std::lgamma(kTauPriorShape) +
                          kTauPriorShape * (std::log(rate) - std::log(kTauPriorRate)) +
                          shape * (kTauPriorRate - rate) / rate;
    free_energy = likelihood + kl_mu + kl_tau;
    benchmark::DoNotOptimize(free_energy);
  }
  ReportAllocations(state, testing::AllocationCount() - before);
  state.counters["free_energy"] = free_energy;
}
BENCHMARK(BM_HandWrittenLoop)->Arg(1000)->Arg(1000000)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
