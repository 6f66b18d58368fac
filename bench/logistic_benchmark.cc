// Time per sweep of Bayesian logistic regression by conjugate-computation variational inference
// (the Logistic node, "approximation": "cvi", 64 Gauss–Hermite points), against a hand-written
// loop that computes the same expectations, and the sweeps to converge against the
// Jaakkola–Jordan bound (bench/RESULTS.md, "Bayesian logistic regression (CVI)").
//
// Model: w ~ N(0, 100·I) with D = 10, y_n ~ Bernoulli(σ(x_nᵀw)), n < N = 10⁶, q(w) = N(m, Σ).
// Data: x_n = (1, 9 standard normal features), a true w of 10 standard normal draws, y_n = 1
// when a uniform draw is below σ(x_nᵀw) (SplitMix64, seeds 20, 21 and 22); the data of a
// smaller N are the first N rows of the same streams.
//
// One sweep of the engine over this model (an update of w, then F) makes four passes over the
// 10⁶ rows, each computing aₘ = xᵀm and aᵥ = xᵀΣx and a 64-point sum per row:
//   1. the messages: E[g'] and E[g''] by quadrature, λ₁ += x (E[g'] − E[g''] aₘ) and
//      λ₂ += ½ E[g''] x xᵀ; the target is the prior's message plus their sum;
//   2. F at the current q (the natural-gradient step's reference, StepOnFreeEnergy);
//   3. F at the target (the step is kept if F did not rise, else it is halved and F taken
//      again: one more pass per halving; none at the fixed point);
//   4. the sweep's F (the scheduler's FreeEnergy), at the same q as pass 3.
// Passes 2–4 sum E[g] = y aₘ − E[log(1 + eᵃ)]. With the parallel scheduler, every pass runs in
// blocks of 16384 rows on every thread.
//
//   BM_LogisticSweep     one engine sweep from the fixed point: Args {N, threads}, threads 0 the
//                        sequential scheduler, 1 and 2 the parallel one. A benchmark iteration
//                        runs the scheduler for 2 sweeps; the time is that of the second sweep
//                        alone (update and F, from the scheduler's callback), without the F
//                        before the first sweep or the scheduler's set-up.
//   BM_HandWrittenSweep  the baseline: the same four passes, written out for D = 10 with no
//                        library call inside a pass: per row aₘ, aᵥ by the symmetric form with
//                        Σ computed once per pass (Cholesky of the precision), one exp per
//                        quadrature point (σ for the messages, log(1 + e^−|a|) for F), the
//                        upper triangle of λ₂ by rank-1 updates; then the same step and
//                        backtracking rule. Args {N, threads}: the rows split into one range
//                        per std::thread, each with its own accumulators, summed in order.
//   BM_FusedLoop         not the baseline: the same natural-gradient steps in ONE pass per
//                        sweep (E[g], E[g'], E[g''] of the current q together, the step of the
//                        previous sweep checked against that F): what the engine's structure
//                        costs against the least work the algorithm needs. One thread.
//   BM_SweepsToConverge  from the start q of Finalize until the relative change of F is below
//                        1e-8, on the first N rows: Args {N, approximation}, 0 "cvi" and 1
//                        "jaakkola_jordan" (the conjugate bound of BayesPy-style VB, its ξ
//                        recomputed from q in each sweep). Counters: sweeps, free_energy.
//
// Set-up (once, printed to stderr): from the start q, engine sweeps until the relative change
// of F is below 1e-12; before each, the hand-written sweep (1 and 2 threads) runs from the
// same q and must give the engine's updated mean (to 1e-9) and F (to 1e-9 relative), or the
// binary stops with a message; the fused loop, run along, must accept the same q with the
// same F.
//
// Run (see bench/RESULTS.md): logistic_benchmark  (5 repetitions, medians reported).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "vfe/core/quadrature.h"
#include "vfe/model.h"

namespace vfe {
namespace {

constexpr int kDim = 10;                  // intercept + 9 features
constexpr int kStat = kDim + kDim * kDim;  // (h, η₂) of q(w)
constexpr int kPoints = 64;                // the node's default rule
constexpr long kRows = 1000000;
constexpr double kPriorPrecision = 0.01;
constexpr int kMaxHalvings = 30;  // as the engine's StepOnFreeEnergy

/// N rows x_n (row-major, x_n0 = 1) and labels y_n ∈ {0, 1}.
struct LogisticData {
  size_t n = 0;
  std::vector<double> x, y;
};

LogisticData MakeLogisticData(size_t n) {
  const std::vector<double> true_w = SplitMixNormals(20, kDim, 0.0, 1.0);
  const size_t count = n * (kDim - 1);  // Box–Muller draws in pairs
  const std::vector<double> features = SplitMixNormals(21, count + count % 2, 0.0, 1.0);
  SplitMix64 uniform(22);
  LogisticData data;
  data.n = n;
  data.x.resize(n * kDim);
  data.y.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double* x = &data.x[i * kDim];
    x[0] = 1.0;
    std::copy_n(&features[i * (kDim - 1)], kDim - 1, x + 1);
    double a = 0.0;
    for (int k = 0; k < kDim; ++k) a += x[k] * true_w[k];
    data.y[i] = uniform.Uniform() < 1.0 / (1.0 + std::exp(-a)) ? 1.0 : 0.0;
  }
  return data;
}

/// w ~ MvGaussian(0, 0.01·I), y[n] ~ Logistic(in = w, matrix = x_n), finalised.
FactorGraph MakeLogisticGraph(const LogisticData& data, const char* approximation,
                              Variable* w) {
  Matrix design(static_cast<Eigen::Index>(data.n), kDim);
  for (size_t i = 0; i < data.n; ++i)
    for (int k = 0; k < kDim; ++k) design(static_cast<Eigen::Index>(i), k) = data.x[i * kDim + k];
  FactorGraph graph;
  *w = graph.AddVariable("w", Family::kMvGaussian, kDim);
  const Variable y = graph.AddObserved("y", data.y);
  graph.AddMvGaussian(*w, Vector(Vector::Zero(kDim)),
                      Matrix(kPriorPrecision * Matrix::Identity(kDim, kDim)));
  graph.AddFactor("Logistic", {{"out", y},
                               {"in", *w},
                               {"matrix", ParameterValue::Rows(design)},
                               {"approximation", approximation}});
  graph.Finalize();
  return graph;
}

/// The engine's sweep written out by hand (see the top of the file for the four passes).
class HandWrittenSweep {
 public:
  HandWrittenSweep(const LogisticData& data, int threads)
      : data_(data), threads_(threads), partials_(threads) {
    const QuadratureRule rule = StandardNormalRule(kPoints);
    std::copy_n(rule.nodes.data(), kPoints, nodes_);
    std::copy_n(rule.weights.data(), kPoints, weights_);
  }

  /// Starts from q(w) with natural parameters `eta` (the graph's flat layout).
  void Set(const std::vector<double>& eta) {
    std::copy_n(eta.data(), kStat, current_);
    pending_ = false;
  }
  const double* natural() const { return current_; }
  /// The mean of the current q(w).
  Eigen::Matrix<double, kDim, 1> Mean() const {
    Posterior q;
    Factorise(current_, &q);
    return q.mean;
  }
  /// The mean of the q the fused loop accepted last.
  Eigen::Matrix<double, kDim, 1> AcceptedMean() const {
    Posterior q;
    Factorise(previous_, &q);
    return q.mean;
  }
  int halvings() const { return halvings_; }

  /// One sweep as the engine runs it (four passes at the fixed point); returns F after it.
  double Sweep() {
    Posterior q;
    Factorise(current_, &q);
    double target[kStat];
    Messages(q, target);                                    // pass 1
    const double before = FreeEnergy(q, EnergyPass(q));     // pass 2
    const double slack = 1e-13 * (1.0 + std::abs(before));
    double previous[kStat];
    std::copy_n(current_, kStat, previous);
    bool stepped = false;
    double rho = 1.0;
    for (int halving = 0; halving <= kMaxHalvings; ++halving, rho *= 0.5) {
      if (halving > 0) ++halvings_;
      for (int i = 0; i < kStat; ++i)
        current_[i] = rho == 1.0 ? target[i] : (1.0 - rho) * previous[i] + rho * target[i];
      if (!Factorise(current_, &q)) continue;
      if (FreeEnergy(q, EnergyPass(q)) <= before + slack) {  // pass 3
        stepped = true;
        break;
      }
    }
    if (!stepped) std::copy_n(previous, kStat, current_);
    Factorise(current_, &q);
    return FreeEnergy(q, EnergyPass(q));  // pass 4
  }

  /// One sweep of the same steps in one pass: F and the messages of the current q together;
  /// if F rose since the previous sweep, the step that led here is halved and the pass redone.
  /// Returns F of the q it accepted (the q the engine has after the previous sweep).
  double FusedSweep() {
    Posterior q;
    double message[kStat], f = 0.0;
    for (;;) {
      Factorise(current_, &q);
      f = FreeEnergy(q, Pass(q, /*messages=*/true, /*energy=*/true, message));
      if (!pending_ || f <= checked_ + 1e-13 * (1.0 + std::abs(checked_))) break;
      if (!Backtrack()) {  // no step lowers F: stay at the previous q
        std::copy_n(previous_, kStat, current_);
        pending_ = false;
      }
    }
    std::copy_n(current_, kStat, previous_);
    checked_ = f;
    AddPrior(message, target_);
    std::copy_n(target_, kStat, current_);
    rho_ = 1.0;
    pending_ = true;
    if (!Factorise(current_, &q) && !Backtrack()) {
      std::copy_n(previous_, kStat, current_);
      pending_ = false;
    }
    return f;
  }

 private:
  struct Posterior {
    Eigen::Matrix<double, kDim, 1> mean;
    double sigma[kDim][kDim];  // Σ = P⁻¹
    double log_det_precision;
  };
  /// One thread's sums over its rows (λ₂ by its upper triangle, row-major).
  struct alignas(64) Partial {
    double lambda1[kDim], lambda2[kDim * kDim], energy;
  };

  /// m, Σ and log|P| of η = (h, −P/2); false when P is not positive definite.
  static bool Factorise(const double* eta, Posterior* q) {
    const Eigen::Matrix<double, kDim, kDim> precision =
        -2.0 * Eigen::Map<const Eigen::Matrix<double, kDim, kDim>>(eta + kDim);
    const Eigen::LLT<Eigen::Matrix<double, kDim, kDim>> llt(precision);
    if (llt.info() != Eigen::Success || !precision.allFinite()) return false;
    const Eigen::Matrix<double, kDim, kDim> sigma =
        llt.solve(Eigen::Matrix<double, kDim, kDim>::Identity());
    q->mean = sigma * Eigen::Map<const Eigen::Matrix<double, kDim, 1>>(eta);
    for (int i = 0; i < kDim; ++i)
      for (int j = 0; j < kDim; ++j) q->sigma[i][j] = sigma(i, j);
    q->log_det_precision = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    return true;
  }

  /// F = U_likelihood + U_prior − H[q], U_prior = (D/2) log 2π − (D/2) log k₀ + (k₀/2)
  /// (tr Σ + mᵀm), H = (D/2)(1 + log 2π) − ½ log|P|.
  static double FreeEnergy(const Posterior& q, double likelihood_energy) {
    double trace = 0.0;
    for (int i = 0; i < kDim; ++i) trace += q.sigma[i][i];
    const double prior = 0.5 * kDim * (kLog2Pi - std::log(kPriorPrecision)) +
                         0.5 * kPriorPrecision * (trace + q.mean.squaredNorm());
    const double entropy = 0.5 * kDim * (1.0 + kLog2Pi) - 0.5 * q.log_det_precision;
    return likelihood_energy + prior - entropy;
  }

  /// The prior's message (0, −k₀/2·I) plus `message`.
  static void AddPrior(const double* message, double* eta) {
    std::copy_n(message, kStat, eta);
    for (int i = 0; i < kDim; ++i) eta[kDim + i * kDim + i] += -0.5 * kPriorPrecision;
  }

  /// The target η: the prior's message plus the rows' (pass 1).
  void Messages(const Posterior& q, double* target) {
    double message[kStat];
    Pass(q, /*messages=*/true, /*energy=*/false, message);
    AddPrior(message, target);
  }

  /// U_likelihood = −Σ_n E[g] at q (passes 2–4).
  double EnergyPass(const Posterior& q) {
    return Pass(q, /*messages=*/false, /*energy=*/true, nullptr);
  }

  /// Runs one pass over the rows in threads_ ranges; returns U_likelihood if `energy`, and
  /// writes Σ_n λ_n to `message` (flat layout) if `messages`.
  double Pass(const Posterior& q, bool messages, bool energy, double* message) {
    auto range = [&](int part) {
      const size_t begin = data_.n * part / threads_, end = data_.n * (part + 1) / threads_;
      if (messages && energy) {
        Rows<true, true>(q, begin, end, &partials_[part]);
      } else if (messages) {
        Rows<true, false>(q, begin, end, &partials_[part]);
      } else {
        Rows<false, true>(q, begin, end, &partials_[part]);
      }
    };
    std::vector<std::thread> workers;
    for (int part = 1; part < threads_; ++part) workers.emplace_back(range, part);
    range(0);
    for (std::thread& worker : workers) worker.join();
    double total = 0.0;
    if (messages) std::fill_n(message, kStat, 0.0);
    for (const Partial& p : partials_) {
      total += p.energy;
      if (!messages) continue;
      for (int i = 0; i < kDim; ++i) message[i] += p.lambda1[i];
      for (int i = 0; i < kDim; ++i)
        for (int j = i; j < kDim; ++j) message[kDim + i * kDim + j] += p.lambda2[i * kDim + j];
    }
    if (messages)
      for (int i = 0; i < kDim; ++i)
        for (int j = 0; j < i; ++j) message[kDim + i * kDim + j] = message[kDim + j * kDim + i];
    return total;
  }

  /// The loop over rows [begin, end): per row aₘ, aᵥ, then one exp per quadrature point.
  template <bool kMessages, bool kEnergy>
  void Rows(const Posterior& q, size_t begin, size_t end, Partial* out) const {
    double lambda1[kDim] = {}, lambda2[kDim * kDim] = {}, energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double* x = &data_.x[n * kDim];
      const double y = data_.y[n];
      double mean = 0.0, variance = 0.0;
      for (int i = 0; i < kDim; ++i) {
        mean += x[i] * q.mean[i];
        double off_diagonal = 0.0;
        for (int j = i + 1; j < kDim; ++j) off_diagonal += q.sigma[i][j] * x[j];
        variance += x[i] * (q.sigma[i][i] * x[i] + 2.0 * off_diagonal);
      }
      const double sd = std::sqrt(std::max(0.0, variance));
      double slope = 0.0, curvature = 0.0, softplus = 0.0;
      for (int k = 0; k < kPoints; ++k) {
        const double a = mean + sd * nodes_[k];
        const double e = std::exp(-std::abs(a));  // σ(a) and log(1 + eᵃ) from one exp
        if (kMessages) {
          const double s = a >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
          slope += weights_[k] * (y - s);
          curvature -= weights_[k] * s * (1.0 - s);
        }
        if (kEnergy) softplus += weights_[k] * (std::max(a, 0.0) + std::log1p(e));
      }
      if (kEnergy) energy -= y * mean - softplus;
      if (kMessages) {
        const double first = slope - curvature * mean, second = 0.5 * curvature;
        for (int i = 0; i < kDim; ++i) {
          lambda1[i] += first * x[i];
          const double scaled = second * x[i];
          for (int j = i; j < kDim; ++j) lambda2[i * kDim + j] += scaled * x[j];
        }
      }
    }
    std::copy_n(lambda1, kDim, out->lambda1);
    std::copy_n(lambda2, kDim * kDim, out->lambda2);
    out->energy = energy;
  }

  /// The fused loop's step from previous_ to target_, halved until q is proper; false after
  /// kMaxHalvings halvings.
  bool Backtrack() {
    for (;;) {
      rho_ *= 0.5;
      ++halvings_;
      if (rho_ < std::ldexp(1.0, -kMaxHalvings)) return false;
      for (int i = 0; i < kStat; ++i) current_[i] = (1.0 - rho_) * previous_[i] + rho_ * target_[i];
      Posterior q;
      if (Factorise(current_, &q)) return true;
    }
  }

  const LogisticData& data_;
  int threads_;
  std::vector<Partial> partials_;
  double nodes_[kPoints], weights_[kPoints];
  double current_[kStat] = {};
  int halvings_ = 0;
  // The fused loop's step: from previous_ (F = checked_) towards target_ by rho_.
  double previous_[kStat] = {}, target_[kStat] = {}, checked_ = 0.0, rho_ = 1.0;
  bool pending_ = false;
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "logistic_benchmark: %s\n", what.c_str());
  std::exit(1);
}

/// Stops unless the hand-written sweep's mean and F equal the engine's.
void CheckEqual(const char* what, int sweep, const Eigen::Matrix<double, kDim, 1>& mean,
                double free_energy, const Vector& engine_mean, double engine_free_energy) {
  const double mean_error = (mean - engine_mean).cwiseAbs().maxCoeff();
  const double scale = std::max(1.0, engine_mean.cwiseAbs().maxCoeff());
  const double f_error = std::abs(free_energy - engine_free_energy);
  if (mean_error <= 1e-9 * scale && f_error <= 1e-9 * std::abs(engine_free_energy)) return;
  char text[256];
  std::snprintf(text, sizeof(text),
                "sweep %d: the %s gives F = %.12g and a mean %.3g from the engine's "
                "(F = %.12g): not the engine's computation",
                sweep, what, free_energy, mean_error, engine_free_energy);
  Fail(text);
}

/// The N = 10⁶ model, swept to its fixed point, with the hand-written sweeps checked on the way.
struct Problem {
  LogisticData data;
  FactorGraph graph;
  Variable w;
  int warmup_sweeps = 0;
  double free_energy = 0.0;
};

Problem& GetProblem() {
  static Problem* problem = [] {
    auto* p = new Problem;
    p->data = MakeLogisticData(kRows);
    p->graph = MakeLogisticGraph(p->data, "cvi", &p->w);
    HandWrittenSweep one(p->data, 1), two(p->data, 2), fused(p->data, 1);
    Scratch scratch = p->graph.MakeScratch();
    double previous = p->graph.FreeEnergy(scratch);
    fused.Set(p->graph.NaturalParameters(p->w));
    fused.FusedSweep();  // F of the start; its step is checked in the next call
    for (int sweep = 1; sweep <= 100; ++sweep) {
      const std::vector<double> eta = p->graph.NaturalParameters(p->w);
      one.Set(eta);
      two.Set(eta);
      const double f_one = one.Sweep(), f_two = two.Sweep();
      // SequentialScheduler's sweep.
      if (p->graph.UpdateElements(p->w.id(), 0, 1, scratch) != 1)
        Fail("warm-up sweep " + std::to_string(sweep) + ": the update of w failed");
      const double f = p->graph.FreeEnergy(scratch);
      const Vector engine_mean = p->graph.Posterior<MvGaussian>(p->w).mean();
      CheckEqual("hand-written sweep", sweep, one.Mean(), f_one, engine_mean, f);
      CheckEqual("two-thread hand-written sweep", sweep, two.Mean(), f_two, engine_mean, f);
      // The fused loop's call k + 1 accepts the q of the engine's sweep k.
      const double f_fused = fused.FusedSweep();
      CheckEqual("fused loop", sweep, fused.AcceptedMean(), f_fused, engine_mean, f);
      std::fprintf(stderr, "logistic_benchmark: warm-up sweep %d: F = %.12f (hand-written: "
                   "%.3g, %.3g, fused %.3g)\n", sweep, f, f_one - f, f_two - f, f_fused - f);
      p->warmup_sweeps = sweep;
      p->free_energy = f;
      if (std::abs(f - previous) < 1e-12 * std::abs(f)) break;
      previous = f;
    }
    std::fprintf(stderr, "logistic_benchmark: %d warm-up sweeps, %d halved steps (hand-written), "
                 "%d (fused loop)\n", p->warmup_sweeps, one.halvings(), fused.halvings());
    return p;
  }();
  return *problem;
}

void BM_LogisticSweep(benchmark::State& state) {
  Problem& problem = GetProblem();
  const int threads = static_cast<int>(state.range(1));
  SchedulerOptions options;
  options.max_iterations = 2;
  options.tolerance = 0.0;
  options.order = {problem.w};
  double elapsed_ms[2] = {0.0, 0.0};
  options.callback = [&](const IterationInfo& info) {
    elapsed_ms[info.iteration - 1] = info.elapsed_ms;
    return true;
  };
  const SequentialScheduler sequential(options);
  const ParallelScheduler parallel(options, threads == 0 ? 1 : threads);
  double free_energy = 0.0;
  for (auto _ : state) {
    const Result result =
        threads == 0 ? sequential.Run(problem.graph) : parallel.Run(problem.graph);
    if (result.iterations != 2) {
      state.SkipWithError(result.message.c_str());
      return;
    }
    state.SetIterationTime((elapsed_ms[1] - elapsed_ms[0]) * 1e-3);  // the second sweep
    free_energy = result.free_energy.back();
  }
  state.counters["free_energy"] = free_energy;
  state.counters["warmup_sweeps"] = problem.warmup_sweeps;
  state.SetLabel(threads == 0 ? "sequential" : std::to_string(threads) + " threads");
}

void BM_HandWrittenSweep(benchmark::State& state) {
  Problem& problem = GetProblem();
  const int threads = static_cast<int>(state.range(1));
  HandWrittenSweep sweep(problem.data, threads);
  sweep.Set(problem.graph.NaturalParameters(problem.w));
  double free_energy = 0.0;
  for (auto _ : state) {
    free_energy = sweep.Sweep();
    benchmark::DoNotOptimize(free_energy);
  }
  state.counters["free_energy"] = free_energy;
  state.counters["halvings"] = sweep.halvings();
  state.SetLabel(std::to_string(threads) + (threads == 1 ? " thread" : " threads"));
}

void BM_FusedLoop(benchmark::State& state) {
  Problem& problem = GetProblem();
  HandWrittenSweep sweep(problem.data, static_cast<int>(state.range(1)));
  sweep.Set(problem.graph.NaturalParameters(problem.w));
  double free_energy = 0.0;
  for (auto _ : state) {
    free_energy = sweep.FusedSweep();
    benchmark::DoNotOptimize(free_energy);
  }
  state.counters["free_energy"] = free_energy;
  state.counters["halvings"] = sweep.halvings();
}

void BM_SweepsToConverge(benchmark::State& state) {
  const LogisticData data = MakeLogisticData(static_cast<size_t>(state.range(0)));
  const char* approximation = state.range(1) == 0 ? "cvi" : "jaakkola_jordan";
  SchedulerOptions options;
  options.max_iterations = 1000;
  options.tolerance = 1e-8;
  Result result;
  for (auto _ : state) {
    state.PauseTiming();
    Variable w;
    FactorGraph graph = MakeLogisticGraph(data, approximation, &w);
    state.ResumeTiming();
    result = SequentialScheduler(options).Run(graph);
  }
  if (result.termination != Termination::kConverged) {
    state.SkipWithError(result.message.c_str());
    return;
  }
  state.counters["sweeps"] = result.iterations;
  state.counters["free_energy"] = result.free_energy.back();
  state.SetLabel(approximation);
}

BENCHMARK(BM_LogisticSweep)
    ->Args({kRows, 0})->Args({kRows, 1})->Args({kRows, 2})
    ->Unit(benchmark::kMillisecond)->UseManualTime()->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_HandWrittenSweep)
    ->Args({kRows, 1})->Args({kRows, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_FusedLoop)
    ->Args({kRows, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_SweepsToConverge)
    ->Args({10000, 0})->Args({10000, 1})->Args({100000, 0})->Args({100000, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1)->Repetitions(1);

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
