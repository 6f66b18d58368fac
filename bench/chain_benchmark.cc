// Chains solved inside VMP (clusters), against hand-written loops in the same run
// (bench/RESULTS.md):
//
//   BM_HmmSweep        one VMP sweep of an HMM with K = 3 states, M = 4 symbols and learned
//                      transition and emission matrices (update A, B, then forward–backward
//                      over the chain, then F), T = 10⁴ (BayesPy: 337 ms per sweep)
//   BM_HmmForwardBackward  one update of that HMM's states by the sequential solver (outside
//                      messages, pair potentials, forward–backward, pairs, the cluster's
//                      information), T = 10⁴ and 10⁶
//   BM_HmmScan         the same update by the parallel scan (ClusterSolver::kParallelScan),
//                      T = 10⁴ and 10⁶ on 1 and 2 threads (a task_arena of that size):
//                      Args({T, threads})
//   BM_Smoother        one update of the states of a linear Gaussian state-space model (the
//                      4-D tracking model of examples/tracking.cc, parameters known): the
//                      information-form filter and smoother of the cluster, pairs and F parts
//                      included; T = 10⁴ and 10⁶
//   BM_ScanSmoother    the same update by the parallel-in-time smoother
//                      (ClusterSolver::kParallelScan), T = 10⁴ and 10⁶ on 1 and 2 threads (a
//                      task_arena of that size): Args({T, threads})
//   BM_HandSmoother    a hand-written covariance-form Kalman filter and RTS smoother of the
//                      same model (dynamic-size Eigen, buffers allocated once), means and
//                      covariances only
#include <benchmark/benchmark.h>

#include <random>

#include <Eigen/LU>
#include <vector>

#include <tbb/task_arena.h>

#include "vfe/model.h"

namespace vfe {
namespace {

struct Tracking {
  Matrix a, q, c, r;
  Matrix y;
};

Tracking MakeTracking(size_t steps) {
  Tracking s;
  s.a = Matrix::Identity(4, 4);
  s.a(0, 0) = s.a(1, 1) = 0.99;
  s.a(2, 2) = s.a(3, 3) = 0.95;
  s.a(0, 2) = s.a(1, 3) = 0.1;
  s.q = Matrix::Identity(4, 4) * 0.01;
  s.q(0, 0) = s.q(1, 1) = 0.001;
  s.c = Matrix::Zero(2, 4);
  s.c(0, 0) = s.c(1, 1) = 1.0;
  s.r = Matrix::Identity(2, 2) * 0.05;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  Vector x = Vector::Zero(4);
  s.y.resize(static_cast<Eigen::Index>(steps), 2);
  for (size_t t = 0; t < steps; ++t) {
    for (int i = 0; i < 4; ++i) x[i] = (s.a.row(i) * x)(0) + std::sqrt(s.q(i, i)) * normal(rng);
    s.y(static_cast<Eigen::Index>(t), 0) = x[0] + std::sqrt(0.05) * normal(rng);
    s.y(static_cast<Eigen::Index>(t), 1) = x[1] + std::sqrt(0.05) * normal(rng);
  }
  return s;
}

/// The tracking model's states in one cluster solved by `solver`.
void BuildSmoother(FactorGraph& graph, const Tracking& s, size_t steps, ClusterSolver solver) {
  const Variable x = graph.AddVariableArray("x", Family::kMvGaussian, {steps}, 4);
  graph.AddMvGaussian(x[0], Vector(Vector::Zero(4)), Matrix(Matrix::Identity(4, 4)));
  graph.AddLinearGaussian(x.Slice(1, steps), x.Slice(0, steps - 1), s.a, Matrix(s.q.inverse()));
  graph.AddLinearGaussian(graph.AddObservedRows("y", s.y), x, s.c, Matrix(s.r.inverse()));
  graph.AddCluster(x, solver);
  graph.Finalize();
}

/// Times one update of the whole cluster `x` (its `steps` elements) per iteration, in a
/// task_arena of `threads`, with the time per step as a counter. One untimed update first:
/// a solver allocates its buffers at its first update (at T = 10⁶ that is hundreds of MB,
/// and one iteration is all a repetition runs), and inference runs many.
void TimeClusterUpdate(benchmark::State& state, FactorGraph& graph, uint32_t x, size_t steps,
                       int threads) {
  Scratch scratch = graph.MakeScratch();
  tbb::task_arena arena(threads);
  arena.execute([&] { graph.UpdateElements(x, 0, steps, scratch); });
  for (auto _ : state) {
    size_t done = 0;
    arena.execute([&] { done = graph.UpdateElements(x, 0, steps, scratch); });
    if (done != steps) state.SkipWithError("failed");
  }
  state.counters["per_step"] = benchmark::Counter(
      static_cast<double>(steps),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_Smoother(benchmark::State& state) {
  const size_t steps = static_cast<size_t>(state.range(0));
  const Tracking s = MakeTracking(steps);
  FactorGraph graph;
  BuildSmoother(graph, s, steps, ClusterSolver::kSequential);
  TimeClusterUpdate(state, graph, graph.Find("x").id(), steps, 1);
}

void BM_ScanSmoother(benchmark::State& state) {
  const size_t steps = static_cast<size_t>(state.range(0));
  const Tracking s = MakeTracking(steps);
  FactorGraph graph;
  BuildSmoother(graph, s, steps, ClusterSolver::kParallelScan);
  const uint32_t x = graph.Find("x").id();
  TimeClusterUpdate(state, graph, x, steps, static_cast<int>(state.range(1)));
}

void BM_HandSmoother(benchmark::State& state) {
  const size_t steps = static_cast<size_t>(state.range(0));
  const Tracking s = MakeTracking(steps);
  const int d = 4, m = 2;
  std::vector<Vector> mf(steps, Vector(d)), mp(steps, Vector(d)), ms(steps, Vector(d));
  std::vector<Matrix> pf(steps, Matrix(d, d)), pp(steps, Matrix(d, d)), ps(steps, Matrix(d, d));
  Matrix gain(d, m), gain_t(m, d), innovation(m, m), smoother_gain(d, d), work(d, d),
      work2(d, d);
  Vector residual(m), difference(d);
  Eigen::LLT<Matrix> llt(Matrix::Identity(m, m)), llt_d(Matrix::Identity(d, d));
  const Matrix at = s.a.transpose(), ct = s.c.transpose();
  for (auto _ : state) {
    for (size_t t = 0; t < steps; ++t) {
      if (t == 0) {
        mp[t].setZero();
        pp[t].setIdentity();
      } else {
        mp[t].noalias() = s.a * mf[t - 1];
        work.noalias() = s.a * pf[t - 1];
        pp[t].noalias() = work * at;
        pp[t] += s.q;
      }
      residual = s.y.row(static_cast<Eigen::Index>(t)).transpose();
      residual.noalias() -= s.c * mp[t];
      gain.noalias() = pp[t] * ct;
      innovation.noalias() = s.c * gain;
      innovation += s.r;
      llt.compute(innovation);
      gain_t = gain.transpose();
      llt.solveInPlace(gain_t);
      gain = gain_t.transpose();
      mf[t] = mp[t];
      mf[t].noalias() += gain * residual;
      work.noalias() = gain * s.c;
      pf[t] = pp[t];
      pf[t].noalias() -= work * pp[t];
    }
    ms[steps - 1] = mf[steps - 1];
    ps[steps - 1] = pf[steps - 1];
    for (size_t t = steps - 1; t-- > 0;) {
      // G = P_f Aᵀ P_p⁻¹ (t+1): solve P_p Gᵀ = A P_f.
      llt_d.compute(pp[t + 1]);
      smoother_gain.noalias() = s.a * pf[t];
      llt_d.solveInPlace(smoother_gain);
      smoother_gain.transposeInPlace();
      ms[t] = mf[t];
      difference = ms[t + 1] - mp[t + 1];
      ms[t].noalias() += smoother_gain * difference;
      work = ps[t + 1] - pp[t + 1];
      work2.noalias() = smoother_gain * work;
      ps[t] = pf[t];
      ps[t].noalias() += work2 * smoother_gain.transpose();
    }
    benchmark::DoNotOptimize(ms[0].data());
  }
  state.counters["per_step"] = benchmark::Counter(
      static_cast<double>(steps),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

/// The HMM of BM_HmmSweep: K = 3 states, M = 4 symbols, learned transition and emission
/// matrices (matrix Dirichlet), the states in one cluster solved by `solver`. Returns the
/// states; the matrices go to `a` and `b`.
Variable BuildHmm(FactorGraph& graph, size_t steps, ClusterSolver solver, Variable* a,
                  Variable* b) {
  const int k = 3, symbols = 4;
  std::mt19937_64 rng(9);
  std::vector<int> y(steps);
  int x = 0;
  for (size_t t = 0; t < steps; ++t) {
    if (rng() % 10 == 0) x = static_cast<int>(rng() % k);
    y[t] = rng() % 3 == 0 ? static_cast<int>(rng() % symbols) : x;
  }
  const Variable states = graph.AddVariableArray("x", Family::kCategorical, {steps}, k);
  *a = graph.AddVariableArray("A", Family::kDirichlet, {size_t{k}}, k);
  *b = graph.AddVariableArray("B", Family::kDirichlet, {size_t{k}}, symbols);
  graph.AddMatrixDirichlet(*a, Matrix::Ones(k, k));
  Matrix b_prior = Matrix::Ones(symbols, k);
  for (int i = 0; i < k; ++i) b_prior(i, i) += 2.0;
  graph.AddMatrixDirichlet(*b, b_prior);
  graph.AddCategorical(states[0], Vector(Vector::Constant(k, 1.0 / k)));
  graph.AddTransition(states.Slice(1, steps), states.Slice(0, steps - 1), *a);
  graph.AddTransition(graph.AddObservedCategorical("y", y, symbols), states, *b);
  graph.AddCluster(states, solver);
  graph.Finalize();
  return states;
}

void BM_HmmSweep(benchmark::State& state) {
  const size_t steps = static_cast<size_t>(state.range(0));
  FactorGraph graph;
  Variable a, b;
  const Variable states = BuildHmm(graph, steps, ClusterSolver::kSequential, &a, &b);
  SchedulerOptions options;
  options.max_iterations = 5;
  options.tolerance = 0.0;
  options.order = {a, b, states};
  const SequentialScheduler scheduler(options);
  for (auto _ : state) benchmark::DoNotOptimize(scheduler.Run(graph).free_energy.back());
  state.counters["per_sweep"] = benchmark::Counter(
      5, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

/// One update of the HMM's states (outside messages, pair potentials, forward–backward,
/// pairs and the cluster's information): by the sequential solver (BM_HmmForwardBackward,
/// Arg(T)) or the parallel scan in a task_arena of `threads` (BM_HmmScan, Args({T, threads})).
void RunHmmUpdate(benchmark::State& state, ClusterSolver solver, int threads) {
  const size_t steps = static_cast<size_t>(state.range(0));
  FactorGraph graph;
  Variable a, b;
  const uint32_t x = BuildHmm(graph, steps, solver, &a, &b).id();
  TimeClusterUpdate(state, graph, x, steps, threads);
}

void BM_HmmForwardBackward(benchmark::State& state) {
  RunHmmUpdate(state, ClusterSolver::kSequential, 1);
}

void BM_HmmScan(benchmark::State& state) {
  RunHmmUpdate(state, ClusterSolver::kParallelScan, static_cast<int>(state.range(1)));
}

BENCHMARK(BM_HmmSweep)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_HmmForwardBackward)
    ->Arg(10000)
    ->Arg(1000000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_HmmScan)
    ->Args({10000, 1})
    ->Args({10000, 2})
    ->Args({1000000, 1})
    ->Args({1000000, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Smoother)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ScanSmoother)
    ->Args({10000, 1})
    ->Args({10000, 2})
    ->Args({1000000, 1})
    ->Args({1000000, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_HandSmoother)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace vfe

BENCHMARK_MAIN();
