// Steps per second of streaming inference (vfe::Stream) on a 2-D linear-Gaussian tracker with
// known parameters, against a hand-written Kalman filter in the same run, and the memory of a
// stream over 10^7 steps (bench/RESULTS.md, "Streaming").
//
// Model: x_t = A x_{t−1} + N(0, Q), y_t = C x_t + N(0, R), x ∈ R², y ∈ R² (position and
// velocity, the tests' tracker); 10⁵ observations drawn once (SplitMixNormals, seed 42) and
// replayed in a cycle.
//
//   BM_HandWrittenKalman  the baseline: one filtering step per observation with every 2 x 2
//                         product written out on doubles (predict, innovation covariance S,
//                         gain, Joseph-free update P − K S Kᵀ, and log N(y; C m, S) — the step's
//                         −F — so that it computes what a stream step reports).
//   BM_StreamKalman       vfe::Stream: the slice x = (x_{t−1}, x_t) one cluster, y_t observed,
//                         q_t(x_t) carried to x_{t−1}; Push per observation (set y, one
//                         cluster update, F, the carry).
//   BM_CliPipe            `cat rows.csv | vfe stream tracker.json > /dev/null`: 2·10⁵ rows of the
//                         same observations through the program (parsing each row, one step,
//                         one JSON line with x_t's mean and covariance), wall time per row.
//   BM_StreamMemory       10⁷ Push calls in one iteration: the peak resident memory after 10⁶
//                         and after 10⁷ steps (counters rss_1e6_kb, rss_1e7_kb; flat means no
//                         growth with the number of steps).
//
// Set-up: the first 1,000 stream steps are checked against the hand-written filter (means to
// 1e-9) or the binary stops with a message.
//
// Run: stream_benchmark --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <Eigen/LU>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "vfe/core/splitmix.h"
#include "vfe/distributions/distributions.h"
#include "vfe/schedulers/stream.h"

namespace {

using vfe::Matrix;
using vfe::Vector;

constexpr double kLog2Pi = 1.8378770664093454836;
constexpr size_t kObservations = 100000;
constexpr size_t kCliRows = 200000;

struct Tracker {
  double a[4], q[4], c[4], r[4];  // row-major 2 x 2
  double m0[2], p0[4];
};

Tracker MakeTracker() {
  const double dt = 0.1;
  Tracker t{{1, dt, 0, 1},
            {0.5 * dt * dt * dt / 3, 0.5 * dt * dt / 2, 0.5 * dt * dt / 2, 0.5 * dt},
            {1, 0, 0.3, 1},
            {0.4, 0.1, 0.1, 0.3},
            {1, -0.5},
            {2, 0.3, 0.3, 1}};
  return t;
}

Matrix M(const double* v) {
  Matrix m(2, 2);
  m << v[0], v[1], v[2], v[3];
  return m;
}

/// Observations of the tracker, two numbers per step.
const std::vector<double>& Observations() {
  static const std::vector<double> ys = [] {
    const Tracker t = MakeTracker();
    const std::vector<double> draws = vfe::SplitMixNormals(42, 4 * kObservations, 0.0, 1.0);
    size_t next = 0;
    auto normal = [&] { return draws[next++]; };
    std::vector<double> out;
    out.reserve(2 * kObservations);
    double x0 = t.m0[0], x1 = t.m0[1];
    for (size_t k = 0; k < kObservations; ++k) {
      // Q's Cholesky factor, written out.
      const double l00 = std::sqrt(t.q[0]), l10 = t.q[2] / l00,
                   l11 = std::sqrt(t.q[3] - l10 * l10);
      const double w0 = normal(), w1 = normal();
      const double n0 = t.a[0] * x0 + t.a[1] * x1 + l00 * w0;
      const double n1 = t.a[2] * x0 + t.a[3] * x1 + l10 * w0 + l11 * w1;
      x0 = n0;
      x1 = n1;
      const double r00 = std::sqrt(t.r[0]), r10 = t.r[2] / r00,
                   r11 = std::sqrt(t.r[3] - r10 * r10);
      const double v0 = normal(), v1 = normal();
      out.push_back(t.c[0] * x0 + t.c[1] * x1 + r00 * v0);
      out.push_back(t.c[2] * x0 + t.c[3] * x1 + r10 * v0 + r11 * v1);
    }
    return out;
  }();
  return ys;
}

/// The hand-written filter's state: mean, covariance (symmetric: p00, p01, p11), log evidence.
struct HandFilter {
  double m0, m1, p00, p01, p11, log_evidence = 0.0;
  explicit HandFilter(const Tracker& t)
      : m0(t.m0[0]), m1(t.m0[1]), p00(t.p0[0]), p01(t.p0[1]), p11(t.p0[3]) {}

  inline void Step(const Tracker& t, double y0, double y1) {
    const double* a = t.a;
    const double* c = t.c;
    // Predict: m = A m, P = A P Aᵀ + Q.
    const double pm0 = a[0] * m0 + a[1] * m1, pm1 = a[2] * m0 + a[3] * m1;
    const double ap00 = a[0] * p00 + a[1] * p01, ap01 = a[0] * p01 + a[1] * p11;
    const double ap10 = a[2] * p00 + a[3] * p01, ap11 = a[2] * p01 + a[3] * p11;
    const double q00 = ap00 * a[0] + ap01 * a[1] + t.q[0];
    const double q01 = ap00 * a[2] + ap01 * a[3] + t.q[1];
    const double q11 = ap10 * a[2] + ap11 * a[3] + t.q[3];
    // S = C P Cᵀ + R, PCᵀ.
    const double pc00 = q00 * c[0] + q01 * c[1], pc01 = q00 * c[2] + q01 * c[3];
    const double pc10 = q01 * c[0] + q11 * c[1], pc11 = q01 * c[2] + q11 * c[3];
    const double s00 = c[0] * pc00 + c[1] * pc10 + t.r[0];
    const double s01 = c[0] * pc01 + c[1] * pc11 + t.r[1];
    const double s11 = c[2] * pc01 + c[3] * pc11 + t.r[3];
    const double det = s00 * s11 - s01 * s01;
    const double i00 = s11 / det, i01 = -s01 / det, i11 = s00 / det;
    // Innovation and gain K = P Cᵀ S⁻¹.
    const double e0 = y0 - (c[0] * pm0 + c[1] * pm1), e1 = y1 - (c[2] * pm0 + c[3] * pm1);
    const double k00 = pc00 * i00 + pc01 * i01, k01 = pc00 * i01 + pc01 * i11;
    const double k10 = pc10 * i00 + pc11 * i01, k11 = pc10 * i01 + pc11 * i11;
    log_evidence += -0.5 * (e0 * (i00 * e0 + i01 * e1) + e1 * (i01 * e0 + i11 * e1) +
                            std::log(det) + 2 * kLog2Pi);
    m0 = pm0 + k00 * e0 + k01 * e1;
    m1 = pm1 + k10 * e0 + k11 * e1;
    // P = P − K S Kᵀ = P − K (P Cᵀ)ᵀ.
    p00 = q00 - (k00 * pc00 + k01 * pc01);
    p01 = q01 - (k00 * pc10 + k01 * pc11);
    p11 = q11 - (k10 * pc10 + k11 * pc11);
  }
};

vfe::Stream MakeStream(const Tracker& t) {
  const Matrix a = M(t.a), q = M(t.q), c = M(t.c), r = M(t.r);
  vfe::SliceBuilder slice = [=](vfe::FactorGraph& g, const std::vector<bool>& present) {
    const vfe::Variable x = g.AddVariableArray("x", vfe::Family::kMvGaussian, {2}, 2);
    g.AddLinearGaussian(x[1], x[0], a, Matrix(q.inverse()));
    if (present[0]) {
      const vfe::Variable y = g.AddObserved("y", Vector(Vector::Zero(2)));
      g.AddLinearGaussian(y, x[1], c, Matrix(r.inverse()));
    }
    g.AddCluster(x);
  };
  Vector m0(2);
  m0 << t.m0[0], t.m0[1];
  return vfe::Stream(slice, {"y"},
                     {vfe::StreamCarry::Of("x[1]", "x[0]", vfe::MvGaussian(m0, M(t.p0).inverse()))});
}

/// Checks the first 1,000 steps of a stream against the hand-written filter.
void CheckOnce() {
  static bool checked = false;
  if (checked) return;
  const Tracker t = MakeTracker();
  const std::vector<double>& ys = Observations();
  vfe::Stream stream = MakeStream(t);
  HandFilter hand(t);
  for (size_t k = 0; k < 1000; ++k) {
    stream.Push(&ys[2 * k], 2);
    hand.Step(t, ys[2 * k], ys[2 * k + 1]);
    const Vector mean =
        stream.slice().Posterior<vfe::MvGaussian>(stream.Element("x[1]")).mean();
    if (std::abs(mean[0] - hand.m0) > 1e-9 || std::abs(mean[1] - hand.m1) > 1e-9) {
      std::fprintf(stderr, "stream_benchmark: step %zu: the stream's mean (%g, %g) is not the "
                   "hand-written filter's (%g, %g)\n", k + 1, mean[0], mean[1], hand.m0, hand.m1);
      std::exit(1);
    }
  }
  if (std::abs(stream.total_free_energy() + hand.log_evidence) >
      1e-9 * std::abs(hand.log_evidence)) {
    std::fprintf(stderr, "stream_benchmark: sum of F %.17g is not -log p(y) %.17g\n",
                 stream.total_free_energy(), -hand.log_evidence);
    std::exit(1);
  }
  checked = true;
}

void BM_HandWrittenKalman(benchmark::State& state) {
  const Tracker t = MakeTracker();
  const std::vector<double>& ys = Observations();
  HandFilter hand(t);
  size_t k = 0;
  for (auto _ : state) {
    hand.Step(t, ys[2 * k], ys[2 * k + 1]);
    if (++k == kObservations) k = 0;
  }
  benchmark::DoNotOptimize(hand.log_evidence);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HandWrittenKalman);

void BM_StreamKalman(benchmark::State& state) {
  CheckOnce();
  const std::vector<double>& ys = Observations();
  vfe::Stream stream = MakeStream(MakeTracker());
  size_t k = 0;
  for (auto _ : state) {
    stream.Push(&ys[2 * k], 2);
    if (++k == kObservations) k = 0;
  }
  benchmark::DoNotOptimize(stream.total_free_energy());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StreamKalman);

/// The tracker as a streaming model file and 2·10⁵ rows, written once to a temporary folder.
std::string CliFolder() {
  static const std::string folder = [] {
    char pattern[] = "/tmp/vfe-stream-benchmark-XXXXXX";
    if (!mkdtemp(pattern)) {
      std::perror("stream_benchmark: mkdtemp");
      std::exit(1);
    }
    const std::string dir = pattern;
    const Tracker t = MakeTracker();
    auto matrix = [](const Matrix& m) {
      char text[256];
      std::snprintf(text, sizeof text, "[[%.17g, %.17g], [%.17g, %.17g]]", m(0, 0), m(0, 1),
                    m(1, 0), m(1, 1));
      return std::string(text);
    };
    std::FILE* model = std::fopen((dir + "/tracker.json").c_str(), "w");
    std::fprintf(model,
                 "{\"format\": \"vfe-model/1\", \"variables\": [\n"
                 " {\"name\": \"x\", \"family\": \"MvGaussian\", \"dim\": 2, \"shape\": [2]},\n"
                 " {\"name\": \"y\", \"dim\": 2, \"observed\": [0, 0]}],\n"
                 " \"factors\": [{\"node\": \"LinearGaussian\", \"out\": \"x[1]\", \"in\": \"x[0]\",\n"
                 "  \"matrix\": %s, \"precision\": %s},\n"
                 " {\"node\": \"LinearGaussian\", \"out\": \"y\", \"in\": \"x[1]\",\n"
                 "  \"matrix\": %s, \"precision\": %s}],\n"
                 " \"factorisation\": [[\"x\"]],\n"
                 " \"stream\": {\"inputs\": [\"y\"], \"carry\": [{\"from\": \"x[1]\", \"to\": \"x[0]\",\n"
                 "  \"initial\": {\"node\": \"MvGaussian\", \"mean\": [%.17g, %.17g], \"precision\": %s}}]}}\n",
                 matrix(M(t.a)).c_str(), matrix(Matrix(M(t.q).inverse())).c_str(),
                 matrix(M(t.c)).c_str(), matrix(Matrix(M(t.r).inverse())).c_str(), t.m0[0],
                 t.m0[1], matrix(Matrix(M(t.p0).inverse())).c_str());
    std::fclose(model);
    std::FILE* rows = std::fopen((dir + "/rows.csv").c_str(), "w");
    const std::vector<double>& ys = Observations();
    for (size_t k = 0; k < kCliRows; ++k) {
      const size_t i = k % kObservations;
      std::fprintf(rows, "%.17g,%.17g\n", ys[2 * i], ys[2 * i + 1]);
    }
    std::fclose(rows);
    return dir;
  }();
  return folder;
}

void BM_CliPipe(benchmark::State& state) {
  const std::string dir = CliFolder();
  const std::string command = "cat " + dir + "/rows.csv | " VFE_PROGRAM " stream " + dir +
                              "/tracker.json > /dev/null";
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (std::system(command.c_str()) != 0) {
      state.SkipWithError("vfe stream failed");
      return;
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations() * kCliRows);
}
BENCHMARK(BM_CliPipe)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

void BM_StreamMemory(benchmark::State& state) {
  const std::vector<double>& ys = Observations();
  for (auto _ : state) {
    vfe::Stream stream = MakeStream(MakeTracker());
    size_t k = 0;
    for (size_t step = 1; step <= 10000000; ++step) {
      stream.Push(&ys[2 * k], 2);
      if (++k == kObservations) k = 0;
      if (step == 1000000) state.counters["rss_1e6_kb"] = static_cast<double>(PeakRssKb());
    }
    state.counters["rss_1e7_kb"] = static_cast<double>(PeakRssKb());
    benchmark::DoNotOptimize(stream.total_free_energy());
  }
  state.SetItemsProcessed(state.iterations() * 10000000);
}
BENCHMARK(BM_StreamMemory)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
