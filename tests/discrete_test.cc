// The discrete families and their conjugate pairs: Beta, Bernoulli, Categorical, Dirichlet
// against enumeration, numerical integration, Monte Carlo and closed forms; exact evidence of
// Beta–Bernoulli and Dirichlet–Categorical models; the free energy never rising; bad input.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "tests/testing/expect.h"
#include "tests/testing/reference.h"
#include "tests/testing/textbook.h"
#include "vfe/distributions/dispatch.h"
#include "vfe/io/model_json.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ErrorMessage;

/// The Beta densities below are steep near 0 and 1: a finer grid than the default.
double Integrate(const std::function<double(double)>& f, double a, double b) {
  return testing::Integrate(f, a, b, 200000);
}

using testing::LogBetaFunction;

// ---- Families ---------------------------------------------------------------------------------

TEST(Beta, DensityMomentsAndEntropyMatchNumericalIntegration) {
  const Beta q(2.5, 3.5);  // interior density, smooth at both ends
  auto p = [&](double x) { return std::exp(q.LogDensity(x)); };
  const double lo = 1e-12, hi = 1 - 1e-12;
  EXPECT_NEAR(Integrate(p, lo, hi), 1.0, 1e-9);
  EXPECT_NEAR(Integrate([&](double x) { return x * p(x); }, lo, hi), q.mean(), 1e-9);
  EXPECT_NEAR(Integrate([&](double x) { return std::log(x) * p(x); }, lo, hi), q.mean_log(), 1e-7);
  EXPECT_NEAR(Integrate([&](double x) { return std::log1p(-x) * p(x); }, lo, hi), q.mean_log1m(),
              1e-7);
  EXPECT_NEAR(Integrate([&](double x) { return -q.LogDensity(x) * p(x); }, lo, hi), q.Entropy(),
              1e-7);
  EXPECT_NEAR(q.LogPartition(), LogBetaFunction(2.5, 3.5), 1e-13);
  EXPECT_NEAR(q.variance(), 2.5 * 3.5 / (36.0 * 7.0), 1e-15);
}

TEST(Beta, SamplesProductAndGradient) {
  const Beta q(0.7, 1.9);
  std::mt19937_64 rng(1);
  testing::RunningMean mean, log_mean;
  for (int s = 0; s < 100000; ++s) {
    const double x = q.Sample(rng);
    mean.Add(x);
    log_mean.Add(std::log(x));
  }
  EXPECT_NEAR(mean.mean(), 0.7 / 2.6, 5 * mean.standard_error());
  EXPECT_NEAR(log_mean.mean(), q.mean_log(), 5 * log_mean.standard_error());

  const Beta p1(2.0, 3.0), p2(1.5, 0.5);
  const Beta product = p1.Product(p2);
  const double offset = p1.LogDensity(0.5) + p2.LogDensity(0.5) - product.LogDensity(0.5);
  for (double x : {0.01, 0.2, 0.7, 0.99})
    EXPECT_NEAR(p1.LogDensity(x) + p2.LogDensity(x) - product.LogDensity(x), offset, 1e-10);

  double eta[2], moments[2];
  q.WriteNatural(eta);
  Beta::Moments(eta, moments);
  for (int k = 0; k < 2; ++k) {
    double up[2] = {eta[0], eta[1]}, down[2] = {eta[0], eta[1]};
    up[k] += 1e-6;
    down[k] -= 1e-6;
    EXPECT_NEAR((Beta::LogPartition(up) - Beta::LogPartition(down)) / 2e-6, moments[k], 1e-6);
  }
}

TEST(Bernoulli, EnumerationGivesMomentsEntropyAndProduct) {
  for (double p : {1e-9, 0.3, 0.5, 0.97}) {
    const Bernoulli q(p);
    EXPECT_NEAR(std::exp(q.LogDensity(0)) + std::exp(q.LogDensity(1)), 1.0, 1e-14);
    EXPECT_NEAR(q.p(), p, 1e-14 * (1 + p));
    const double entropy = -(p * std::log(p) + (1 - p) * std::log1p(-p));
    EXPECT_NEAR(q.Entropy(), entropy, 1e-12);
  }
  // Extreme log-odds neither overflow nor lose the probability.
  EXPECT_NEAR(Bernoulli::FromNatural(800).p(), 1.0, 1e-15);
  EXPECT_GT(Bernoulli::FromNatural(-700).p(), 0.0);
  EXPECT_TRUE(std::isfinite(Bernoulli::FromNatural(800).LogPartition()));
  // Product: p ∝ p1·p2 pointwise.
  const Bernoulli product = Bernoulli(0.3).Product(Bernoulli(0.8));
  EXPECT_NEAR(product.p(), 0.3 * 0.8 / (0.3 * 0.8 + 0.7 * 0.2), 1e-14);
}

TEST(Categorical, EnumerationGivesMomentsEntropyAndProduct) {
  const Vector p = (Vector(4) << 0.1, 0.2, 0.3, 0.4).finished();
  const Categorical q(p);
  double total = 0, entropy = 0;
  for (int k = 0; k < 4; ++k) {
    total += std::exp(q.LogDensity(k));
    entropy -= p[k] * std::log(p[k]);
  }
  EXPECT_NEAR(total, 1.0, 1e-14);
  EXPECT_NEAR(q.Entropy(), entropy, 1e-14);
  const Vector eta = p.array().log() + 3.0;  // natural parameters up to a constant
  EXPECT_NEAR(Categorical::Entropy(4, eta.data(), p.data()), entropy, 1e-14);
  const Vector eta_impossible = (Vector(3) << -INFINITY, 1.0, 2.0).finished();
  const Vector p_impossible = Categorical::FromNatural(eta_impossible).p();
  const double h = -p_impossible[1] * std::log(p_impossible[1]) -
                   p_impossible[2] * std::log(p_impossible[2]);
  EXPECT_NEAR(Categorical::Entropy(3, eta_impossible.data(), p_impossible.data()), h, 1e-14);
  EXPECT_NEAR(Categorical::Entropy(3, eta_impossible.data()), h, 1e-14);
  EXPECT_LT((q.p() - p).norm(), 1e-15);
  const Categorical other((Vector(4) << 0.25, 0.25, 0.4, 0.1).finished());
  const Vector product = q.Product(other).p();
  const Vector expected = p.cwiseProduct(other.p()) / p.dot(other.p());
  EXPECT_LT((product - expected).norm(), 1e-14);
  std::mt19937_64 rng(2);
  std::vector<int> counts(4, 0);
  const int n = 100000;
  for (int s = 0; s < n; ++s) ++counts[q.Sample(rng)];
  for (int k = 0; k < 4; ++k)
    EXPECT_NEAR(counts[k] / double(n), p[k], 5 * std::sqrt(p[k] * (1 - p[k]) / n));
}

TEST(Categorical, LogDomainHandlesThousandOutcomesAndTinyLogits) {
  Vector logits = Vector::Constant(1000, -1000.0);
  logits[17] = -995.0;
  const Categorical q = Categorical::FromNatural(logits);
  const Vector p = q.p();
  EXPECT_TRUE(p.allFinite());
  EXPECT_NEAR(p.sum(), 1.0, 1e-12);
  EXPECT_NEAR(p[17], std::exp(5.0) / (std::exp(5.0) + 999), 1e-12);
  EXPECT_NEAR(q.LogPartition(), -995.0 + std::log(1 + 999 * std::exp(-5.0)), 1e-10);
  EXPECT_TRUE(std::isfinite(q.Entropy()));
  // Impossible outcomes (−∞) are allowed and count 0 in the entropy.
  const Categorical sure = Categorical::FromNatural((Vector(3) << -INFINITY, 0.0, -INFINITY).finished());
  EXPECT_EQ(sure.Entropy(), 0.0);
  EXPECT_EQ(sure.p()[1], 1.0);
}

TEST(Dirichlet, MomentsEntropyAndSamplesMatchMonteCarloAndClosedForm) {
  const Vector alpha = (Vector(3) << 0.7, 2.0, 5.5).finished();
  const Dirichlet q(alpha);
  std::mt19937_64 rng(3);
  testing::RunningMean log_first, entropy, first;
  for (int s = 0; s < 100000; ++s) {
    // Independent sampler: normalised std::gamma draws.
    Vector x(3);
    for (int k = 0; k < 3; ++k) x[k] = std::gamma_distribution<double>(alpha[k], 1.0)(rng);
    x /= x.sum();
    log_first.Add(std::log(x[0]));
    entropy.Add(-q.LogDensity(x));
    first.Add(q.Sample(rng)[0]);
  }
  EXPECT_NEAR(q.mean_log()[0], log_first.mean(), 5 * log_first.standard_error());
  EXPECT_NEAR(q.Entropy(), entropy.mean(), 5 * entropy.standard_error());
  EXPECT_NEAR(first.mean(), 0.7 / 8.2, 5 * first.standard_error());
  // K = 2 is the Beta.
  const Dirichlet two((Vector(2) << 2.5, 3.5).finished());
  const Beta beta(2.5, 3.5);
  EXPECT_NEAR(two.Entropy(), beta.Entropy(), 1e-13);
  EXPECT_NEAR(two.LogPartition(), beta.LogPartition(), 1e-13);
  EXPECT_NEAR(two.mean_log()[1], beta.mean_log1m(), 1e-13);
}

TEST(MatrixDirichlet, ColumnsAreIndependentDirichletsByMonteCarloAndClosedForm) {
  Matrix alpha(3, 2);
  alpha << 0.7, 4.0, 2.0, 1.5, 5.5, 0.9;
  const MatrixDirichlet q(alpha);
  EXPECT_EQ(q.rows(), 3);
  EXPECT_EQ(q.cols(), 2);
  std::mt19937_64 rng(11);
  testing::RunningMean log_entry, entropy, entry;
  for (int s = 0; s < 100000; ++s) {
    // Independent sampler: normalised std::gamma draws per column.
    Matrix a(3, 2);
    for (int k = 0; k < 2; ++k) {
      for (int j = 0; j < 3; ++j) a(j, k) = std::gamma_distribution<double>(alpha(j, k), 1.0)(rng);
      a.col(k) /= a.col(k).sum();
    }
    log_entry.Add(std::log(a(2, 1)));
    entropy.Add(-q.LogDensity(a));
    entry.Add(q.Sample(rng)(0, 1));
    // The density is the product of the columns' textbook Dirichlet densities.
    if (s < 10) {
      EXPECT_NEAR(q.LogDensity(a), testing::LogDirichletDensity(a.col(0), alpha.col(0)) +
                                       testing::LogDirichletDensity(a.col(1), alpha.col(1)),
                  1e-10);
    }
  }
  EXPECT_NEAR(q.mean_log()(2, 1), log_entry.mean(), 5 * log_entry.standard_error());
  EXPECT_NEAR(q.mean_log()(2, 1), Digamma(0.9) - Digamma(6.4), 1e-12);
  EXPECT_NEAR(q.Entropy(), entropy.mean(), 5 * entropy.standard_error());
  EXPECT_NEAR(entry.mean(), 4.0 / 6.4, 5 * entry.standard_error());
  EXPECT_NEAR(q.mean()(0, 1), 4.0 / 6.4, 1e-15);
  EXPECT_LT((q.natural() - (alpha.array() - 1.0).matrix()).norm(), 1e-15);
  // The product multiplies the densities: natural parameters add, column by column.
  Matrix other_alpha(3, 2);
  other_alpha << 1.0, 2.0, 3.0, 1.0, 2.0, 2.0;
  const MatrixDirichlet product = q.Product(MatrixDirichlet(other_alpha));
  const Matrix expected_alpha = (alpha + other_alpha).array() - 1.0;
  EXPECT_LT((product.alpha() - expected_alpha).norm(), 1e-12);
  Matrix a = q.Sample(rng);
  EXPECT_NEAR(a.col(0).sum(), 1.0, 1e-14);
  // log product − log q − log other is the same constant (a normaliser) at any matrix.
  const Matrix b = q.Sample(rng);
  const MatrixDirichlet other(other_alpha);
  EXPECT_NEAR(product.LogDensity(a) - q.LogDensity(a) - other.LogDensity(a),
              product.LogDensity(b) - q.LogDensity(b) - other.LogDensity(b), 1e-9);
  // From columns and back; invalid entries and shapes are named.
  const MatrixDirichlet stacked = MatrixDirichlet::FromColumns({q.column(0), q.column(1)});
  EXPECT_EQ(stacked.alpha(), q.alpha());
  Matrix bad = alpha;
  bad(1, 1) = -2.0;
  EXPECT_THAT([&] { MatrixDirichlet{bad}; },
              ::testing::ThrowsMessage<ModelError>(::testing::HasSubstr(
                  "MatrixDirichlet: alpha[1][1] must be > 0 and finite, got -2")));
  EXPECT_THAT([&] { q.Product(MatrixDirichlet(Matrix::Ones(2, 2))); },
              ::testing::ThrowsMessage<ModelError>(::testing::HasSubstr(
                  "product of a 3 x 2 and a 2 x 2 matrix")));
}

TEST(DiscreteValidation, InvalidParametersAreRefused) {
  EXPECT_THAT(ErrorMessage<ModelError>([] { Beta(0.0, 1.0); }), HasSubstr("a must be > 0"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Bernoulli(1.5); }), HasSubstr("(0, 1)"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Categorical((Vector(2) << 0.5, 0.6).finished()); }),
              HasSubstr("sum to 1"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Categorical((Vector(2) << -0.5, 1.5).finished()); }),
              HasSubstr(">= 0"));
  EXPECT_THAT(ErrorMessage<ModelError>([] { Dirichlet((Vector(2) << 1.0, -1.0).finished()); }),
              HasSubstr("alpha[1]"));
}

// ---- Models -----------------------------------------------------------------------------------

TEST(DiscreteModels, BetaBernoulliHasTheExactPosteriorAndEvidence) {
  const std::vector<double> flips = {1, 0, 1, 1, 1, 0, 1, 1};
  FactorGraph graph;
  const Variable p = graph.AddVariable("p", Family::kBeta);
  graph.AddBeta(p, 2.0, 2.0);
  graph.AddBernoulli(graph.AddObserved("flips", flips), p);
  graph.Finalize();
  SchedulerOptions options;
  options.max_iterations = 1;
  const Result result = SequentialScheduler(options).Run(graph);
  const Beta q = graph.Posterior<Beta>(p);
  EXPECT_NEAR(q.a(), 2.0 + 6, 1e-12);
  EXPECT_NEAR(q.b(), 2.0 + 2, 1e-12);
  // p(y) = B(a + heads, b + tails) / B(a, b).
  const double log_evidence = LogBetaFunction(8.0, 4.0) - LogBetaFunction(2.0, 2.0);
  EXPECT_NEAR(result.evidence_lower_bound(), log_evidence, 1e-12);
}

TEST(DiscreteModels, DirichletCategoricalHasTheExactEvidence) {
  const std::vector<int> outcomes = {0, 2, 2, 1, 2, 0, 2};
  const Vector alpha = (Vector(3) << 1.0, 0.5, 2.0).finished();
  FactorGraph graph;
  const Variable p = graph.AddVariable("p", Family::kDirichlet, 3);
  graph.AddDirichlet(p, alpha);
  graph.AddCategorical(graph.AddObservedCategorical("y", outcomes, 3), p);
  graph.Finalize();
  SchedulerOptions options;
  options.max_iterations = 1;
  const Result result = SequentialScheduler(options).Run(graph);
  const Vector counts = (Vector(3) << 2, 1, 4).finished();
  double log_evidence = std::lgamma(alpha.sum()) - std::lgamma(alpha.sum() + counts.sum());
  for (int k = 0; k < 3; ++k)
    log_evidence += std::lgamma(alpha[k] + counts[k]) - std::lgamma(alpha[k]);
  EXPECT_NEAR(result.evidence_lower_bound(), log_evidence, 1e-12);
  EXPECT_LT((graph.Posterior<Dirichlet>(p).alpha() - (alpha + counts)).norm(), 1e-12);
}

TEST(DiscreteModels, HiddenOutcomesMatchEnumerationAndFreeEnergyNeverRises) {
  // p ~ Beta(a, b); x ~ Bernoulli(p) hidden; y_n ~ Bernoulli(p) observed. Mean field over
  // (p, x) is not exact, so −F is below the log evidence computed by enumerating x.
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.5, 3.0);
    const double a = uniform(rng), b = uniform(rng);
    std::vector<double> y(static_cast<size_t>(uniform(rng) * 3));
    for (double& v : y) v = uniform(rng) > 1.5;
    FactorGraph graph;
    const Variable p = graph.AddVariable("p", Family::kBeta);
    const Variable x = graph.AddVariableArray("x", Family::kBernoulli, {3});
    const Variable z = graph.AddVariable("z", Family::kCategorical, 4);
    const Variable w = graph.AddVariable("w", Family::kDirichlet, 4);
    graph.AddBeta(p, a, b);
    graph.AddBernoulli(x, p);
    if (!y.empty()) graph.AddBernoulli(graph.AddObserved("y", y), p);
    const double concentration = uniform(rng);
    graph.AddDirichlet(w, Vector(Vector::Constant(4, concentration)));
    graph.AddCategorical(z, w);
    graph.AddCategorical(graph.AddObservedCategorical("c", {0, 3, 3}, 4), w);
    graph.Finalize();
    graph.SetPosterior(p, Beta(uniform(rng), uniform(rng)));
    graph.SetPosterior(x, Bernoulli(uniform(rng) / 3.1));
    Scratch scratch = graph.MakeScratch();
    double before = graph.FreeEnergy(scratch);
    for (int sweep = 0; sweep < 5; ++sweep) {
      for (const Variable& v : {x, p, w, z}) {
        for (size_t i = 0; i < v.size(); ++i) {
          ASSERT_TRUE(graph.UpdateElement(v.id(), v.begin() + i, scratch));
          const double after = graph.FreeEnergy(scratch);
          ASSERT_LE(after, before + 1e-12 * std::abs(before) + 1e-12) << "seed " << seed;
          before = after;
        }
      }
    }
    // The Beta–Bernoulli part by enumeration of the 2³ values of x; the Dirichlet part in
    // closed form (z is summed out: Σ_z p(z | w) = 1).
    double heads = 0;
    for (double v : y) heads += v;
    double log_evidence = -INFINITY;
    for (int mask = 0; mask < 8; ++mask) {
      const int ones = __builtin_popcount(mask);
      const double term = LogBetaFunction(a + heads + ones, b + (y.size() - heads) + (3 - ones)) -
                          LogBetaFunction(a, b);
      log_evidence = std::max(log_evidence, term) +
                     std::log1p(std::exp(std::min(log_evidence, term) - std::max(log_evidence, term)));
    }
    const double counts[4] = {1, 0, 0, 2};
    log_evidence += std::lgamma(4 * concentration) - std::lgamma(4 * concentration + 3);
    for (double n : counts) log_evidence += std::lgamma(concentration + n) - std::lgamma(concentration);
    EXPECT_LE(-before, log_evidence + 1e-10) << "seed " << seed;
    EXPECT_GT(-before, log_evidence - 1.0) << "seed " << seed;
  }
}

/// A random mixture of K = 2..4 components (scalar for even seeds, D = 2 for odd ones) over n
/// points, with random responsibilities as the starting q(z).
struct RandomMixture {
  FactorGraph graph;
  Variable mu, lambda, weights, z, y;
  bool scalar = false;
  int k = 2, d = 1;
};

std::unique_ptr<RandomMixture> MakeRandomMixture(uint64_t seed, int n) {
  auto m = std::make_unique<RandomMixture>();
  FactorGraph& graph = m->graph;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0.5, 2.0);
  const bool scalar = seed % 2 == 0;
  const int k = 2 + static_cast<int>(seed % 3), d = scalar ? 1 : 2;
  const Family mean_family = scalar ? Family::kGaussian : Family::kMvGaussian;
  const Family precision_family = scalar ? Family::kGamma : Family::kWishart;
  m->mu = graph.AddVariableArray("mu", mean_family, {size_t(k)}, d);
  m->lambda = graph.AddVariableArray("Lambda", precision_family, {size_t(k)}, d);
  m->weights = graph.AddVariable("weights", Family::kDirichlet, k);
  m->z = graph.AddVariableArray("z", Family::kCategorical, {size_t(n)}, k);
  Matrix points(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) points(i, j) = 3.0 * (i % k) + normal(rng);
  if (scalar) {
    graph.AddGaussian(m->mu, 0.0, 0.1);
    graph.AddGamma(m->lambda, uniform(rng), uniform(rng));
  } else {
    graph.AddMvGaussian(m->mu, Vector(Vector::Zero(d)), Matrix(0.1 * Matrix::Identity(d, d)));
    graph.AddWishart(m->lambda, d + uniform(rng), Matrix(uniform(rng) * Matrix::Identity(d, d)));
  }
  graph.AddDirichlet(m->weights, Vector(Vector::Constant(k, uniform(rng))));
  graph.AddCategorical(m->z, m->weights);
  const Variable y = scalar ? graph.AddObserved("y", std::vector<double>(points.data(),
                                                                         points.data() + n))
                            : graph.AddObservedRows("y", points);
  m->y = y;
  m->scalar = scalar;
  m->k = k;
  m->d = d;
  graph.AddGaussianMixture(y, m->z, m->mu, m->lambda);
  graph.Finalize();
  for (int i = 0; i < n; ++i) {  // random responsibilities, so the means separate
    Vector p(k);
    for (int c = 0; c < k; ++c) p[c] = uniform(rng);
    graph.SetPosterior(m->z[i], Categorical(Vector(p / p.sum())));
  }
  return m;
}

TEST(DiscreteModels, FreeEnergyNeverRisesOnRandomMixtures) {
  for (uint64_t seed = 1; seed <= 16; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::unique_ptr<RandomMixture> m = MakeRandomMixture(seed, 30);
    FactorGraph& graph = m->graph;
    Scratch scratch = graph.MakeScratch();
    double before = graph.FreeEnergy(scratch);
    const double start = before;
    for (int sweep = 0; sweep < 8; ++sweep)
      for (const Variable& v : {m->mu, m->lambda, m->weights, m->z})
        for (size_t i = 0; i < v.size(); ++i) {
          ASSERT_TRUE(graph.UpdateElement(v.id(), v.begin() + i, scratch));
          const double after = graph.FreeEnergy(scratch);
          ASSERT_LE(after, before + 1e-11 * std::abs(before)) << graph.ElementName(v[i]);
          before = after;
        }
    EXPECT_LT(before, start);
  }
}

TEST(DiscreteModels, LabelsUpdatedInBlocksEqualOneByOneUpdatesBitForBit) {
  // The labels z_n of a mixture are joined by no factor: UpdateElements computes their
  // messages in blocks of factors (two blocks and a part here), which must change nothing.
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::unique_ptr<RandomMixture> blocks = MakeRandomMixture(seed, 600);
    std::unique_ptr<RandomMixture> single = MakeRandomMixture(seed, 600);
    EXPECT_TRUE(blocks->graph.updates_in_blocks(blocks->z));
    // A factor joins all the means (and all the precisions): no blocks for them.
    EXPECT_FALSE(blocks->graph.updates_in_blocks(blocks->mu));
    EXPECT_FALSE(blocks->graph.updates_in_blocks(blocks->lambda));
    Scratch block_scratch = blocks->graph.MakeScratch();
    Scratch single_scratch = single->graph.MakeScratch();
    for (int sweep = 0; sweep < 3; ++sweep) {
      for (const Variable& v : {blocks->mu, blocks->lambda, blocks->weights, blocks->z})
        ASSERT_EQ(blocks->graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(),
                                               block_scratch),
                  v.begin() + v.size());
      for (const Variable& v : {single->mu, single->lambda, single->weights, single->z})
        for (size_t i = 0; i < v.size(); ++i)
          ASSERT_TRUE(single->graph.UpdateElement(v.id(), v.begin() + i, single_scratch));
      for (size_t i = 0; i < 600; ++i)
        ASSERT_EQ(blocks->graph.Posterior<Categorical>(blocks->z[i]).p(),
                  single->graph.Posterior<Categorical>(single->z[i]).p())
            << "z[" << i << "], sweep " << sweep;
      ASSERT_EQ(blocks->graph.FreeEnergy(block_scratch), single->graph.FreeEnergy(single_scratch));
    }
    // A run inside the variable, not starting at a block boundary.
    const Variable z = blocks->z.Slice(100, 400);
    EXPECT_EQ(blocks->graph.UpdateElements(z.id(), z.begin(), z.begin() + z.size(), block_scratch),
              z.begin() + z.size());
    for (size_t i = 100; i < 400; ++i)
      ASSERT_TRUE(single->graph.UpdateElement(single->z.id(), i, single_scratch));
    for (size_t i = 0; i < 600; ++i)
      ASSERT_EQ(blocks->graph.Posterior<Categorical>(blocks->z[i]).p(),
                single->graph.Posterior<Categorical>(single->z[i]).p());
  }
}

/// The mixture's average energy written out from the posteriors' moments, point by point:
///   U = −Σ_n Σ_k r_nk (½ E[log|Λ_k|] − (D/2) log 2π
///                      − ½ tr(E[Λ_k] (y_n y_nᵀ − y_n E[μ_k]ᵀ − E[μ_k] y_nᵀ + E[μ_k μ_kᵀ]))),
/// and the labels' Categorical energy −Σ_n Σ_k r_nk E[log w_k].
void TextbookMixtureEnergies(const RandomMixture& m, const Matrix& points, double* mixture,
                             double* labels) {
  const FactorGraph& g = m.graph;
  const int d = m.d;
  *mixture = 0.0;
  *labels = 0.0;
  const double* log_w = g.Moments(m.weights);
  for (Eigen::Index n = 0; n < points.rows(); ++n) {
    const Vector y = points.row(n).transpose();
    const double* r = g.Moments(m.z[n]);
    for (int k = 0; k < m.k; ++k) {
      const double* mu = g.Moments(m.mu[k]);       // E[μ], E[μμᵀ] (x, x² when scalar)
      const double* lambda = g.Moments(m.lambda[k]);  // E[Λ], E[log|Λ|] (τ, log τ)
      const Vector mean = Eigen::Map<const Vector>(mu, d);
      const Matrix second = Eigen::Map<const Matrix>(mu + d, d, d);
      const Matrix precision = Eigen::Map<const Matrix>(lambda, d, d);
      const Matrix spread = y * y.transpose() - y * mean.transpose() - mean * y.transpose() + second;
      const double log_likelihood = 0.5 * lambda[d * d] - 0.5 * d * kLog2Pi -
                                    0.5 * (precision * spread).trace();
      *mixture -= r[k] * log_likelihood;
      *labels -= r[k] * log_w[k];
    }
  }
}

TEST(DiscreteModels, CachedMixtureSumsFollowEveryChangeOfLabelsAndData) {
  // The mixture and the labels' Categorical keep sums over chunks of factors between calls;
  // every kind of change must reach them. After each change, F's terms must equal the
  // textbook sums over the points at the new state.
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const int n = 2500;  // chunks of 1024: two whole ones and a short last one
    std::unique_ptr<RandomMixture> m = MakeRandomMixture(seed, n);
    FactorGraph& graph = m->graph;
    Scratch scratch = graph.MakeScratch();
    Matrix points(n, m->d);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < m->d; ++j) points(i, j) = graph.Moments(m->y[i])[j];
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto check = [&](const char* after) {
      SCOPED_TRACE(after);
      const FactorGraph::FreeEnergyTerms terms = graph.FreeEnergyParts(scratch);
      ASSERT_EQ(terms.plate_energy.size(), 5u);  // priors of μ, Λ, w; labels; mixture
      double mixture = 0.0, labels = 0.0;
      TextbookMixtureEnergies(*m, points, &mixture, &labels);
      EXPECT_NEAR(terms.plate_energy[4], mixture, 1e-10 * std::abs(mixture));
      EXPECT_NEAR(terms.plate_energy[3], labels, 1e-10 * std::abs(labels));
    };
    check("start");
    for (const Variable& v : {m->mu, m->lambda, m->weights, m->z})
      ASSERT_EQ(graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(), scratch),
                v.begin() + v.size());
    check("a sweep");
    for (const Variable& v : {m->mu, m->lambda, m->weights}) {
      ASSERT_EQ(graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(), scratch),
                v.begin() + v.size());
      check("an update of the means, precisions or weights (sums reused)");
    }
    Vector p = Vector::Constant(m->k, 0.1 / (m->k - 1));
    p[0] = 0.9;
    graph.SetPosterior(m->z[1500], Categorical(p));
    check("SetPosterior of one label");
    ASSERT_TRUE(graph.UpdateElement(m->z.id(), 700, scratch));
    check("UpdateElement of one label");
    std::vector<double> eta = graph.NaturalParameters(m->z.Slice(2400, 2500));
    for (double& e : eta) e += normal(rng);
    graph.SetNaturalParameters(m->z.Slice(2400, 2500), eta);
    check("SetNaturalParameters of the last labels");
    ASSERT_EQ(graph.UpdateElements(m->z.id(), 100, 200, scratch), 200u);
    check("UpdateElements of a run of labels");
    for (int i = 1000; i < 1100; ++i) points(i, 0) += 5.0;
    if (m->scalar) {
      graph.SetObservedValues(m->y.Slice(1000, 1100),
                              std::vector<double>(points.data() + 1000, points.data() + 1100));
    } else {
      graph.SetObservedRows(m->y.Slice(1000, 1100), Matrix(points.middleRows(1000, 100)));
    }
    check("new data");
    // The messages to μ_k read the same sums: after the change they must equal those of a
    // graph that starts from this state with nothing cached.
    std::unique_ptr<RandomMixture> fresh = MakeRandomMixture(seed, n);
    if (m->scalar) {
      fresh->graph.SetObservedValues(fresh->y, std::vector<double>(points.data(),
                                                                   points.data() + n));
    } else {
      fresh->graph.SetObservedRows(fresh->y, points);
    }
    for (const Variable& v : {m->mu, m->lambda, m->weights, m->z})
      fresh->graph.SetNaturalParameters(v, graph.NaturalParameters(v));
    Scratch fresh_scratch = fresh->graph.MakeScratch();
    for (const Variable& v : {m->mu, m->lambda}) {
      ASSERT_EQ(graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(), scratch),
                v.begin() + v.size());
      ASSERT_EQ(fresh->graph.UpdateElements(v.id(), v.begin(), v.begin() + v.size(),
                                            fresh_scratch),
                v.begin() + v.size());
      EXPECT_EQ(graph.NaturalParameters(v), fresh->graph.NaturalParameters(v));
    }
    EXPECT_EQ(graph.FreeEnergy(scratch), fresh->graph.FreeEnergy(fresh_scratch));
  }
}

TEST(DiscreteModels, HiddenMarkovChainBoundIsBelowTheForwardAlgorithmsEvidence) {
  // x_0 ~ Categorical(π), x_t ~ A[:, x_{t−1}], y_t ~ B[:, x_t]; mean field over the chain.
  const Vector pi = (Vector(3) << 0.5, 0.3, 0.2).finished();
  Matrix a(3, 3), b(2, 3);
  a << 0.8, 0.1, 0.2, 0.1, 0.8, 0.2, 0.1, 0.1, 0.6;
  b << 0.9, 0.2, 0.5, 0.1, 0.8, 0.5;
  const std::vector<int> y = {0, 0, 1, 1, 1, 0, 1, 0, 0, 0};
  const size_t t_max = y.size();
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {t_max}, 3);
  graph.AddCategorical(x[0], pi);
  graph.AddTransition(x.Slice(1, t_max), x.Slice(0, t_max - 1), a, "dynamics");
  graph.AddTransition(graph.AddObservedCategorical("y", y, 2), x, b, "emissions");
  graph.Finalize();
  Scratch scratch = graph.MakeScratch();
  double before = graph.FreeEnergy(scratch);
  for (int sweep = 0; sweep < 50; ++sweep)
    for (size_t t = 0; t < t_max; ++t) {
      ASSERT_TRUE(graph.UpdateElement(x.id(), t, scratch));
      const double after = graph.FreeEnergy(scratch);
      ASSERT_LE(after, before + 1e-12 * std::abs(before));
      before = after;
    }
  // The forward algorithm: α_t(j) = B[y_t][j] Σ_k A[j][k] α_{t−1}(k).
  Vector alpha = b.row(y[0]).transpose().cwiseProduct(pi);
  double log_evidence = 0;
  for (size_t t = 1; t < t_max; ++t) {
    const double scale = alpha.sum();
    log_evidence += std::log(scale);
    alpha = b.row(y[t]).transpose().cwiseProduct(a * (alpha / scale));
  }
  log_evidence += std::log(alpha.sum());
  EXPECT_LE(-before, log_evidence + 1e-12);
  // The forward algorithm itself against enumerating all 3^10 paths.
  double total = 0;
  std::vector<int> path(t_max, 0);
  for (int count = 0; count < 59049; ++count) {
    double p = pi[path[0]] * b(y[0], path[0]);
    for (size_t t = 1; t < t_max; ++t) p *= a(path[t], path[t - 1]) * b(y[t], path[t]);
    total += p;
    for (size_t t = 0; t < t_max && ++path[t] == 3; ++t) path[t] = 0;
  }
  EXPECT_NEAR(log_evidence, std::log(total), 1e-12);

  FactorGraph bad;
  const Variable v = bad.AddVariableArray("v", Family::kCategorical, {2}, 2);
  Matrix not_stochastic(2, 2);
  not_stochastic << 0.5, 0.5, 0.6, 0.5;
  EXPECT_THAT(
      ErrorMessage<ModelError>([&] { bad.AddTransition(v[1], v[0], not_stochastic, "step"); }),
      HasSubstr("factor 'step' (Transition): Transition: column 0 of A must sum to 1"));
}

/// x_0 ~ Categorical(π), x_t ~ A[:, x_{t−1}] with A ~ MatrixDirichlet(α) learned, y_t ~ B[:, x_t]
/// known; 2 states, 2 symbols.
struct LearnedChain {
  FactorGraph graph;
  Variable x, a;
};

std::unique_ptr<LearnedChain> MakeLearnedChain(const Vector& pi, const Matrix& alpha,
                                               const Matrix& b, const std::vector<int>& y) {
  auto m = std::make_unique<LearnedChain>();
  const size_t t_max = y.size();
  m->x = m->graph.AddVariableArray("x", Family::kCategorical, {t_max}, 2);
  m->a = m->graph.AddVariableArray("A", Family::kDirichlet, {2}, 2);
  m->graph.AddMatrixDirichlet(m->a, alpha, "A prior");
  m->graph.AddCategorical(m->x[0], pi);
  m->graph.AddTransition(m->x.Slice(1, t_max), m->x.Slice(0, t_max - 1), m->a, "dynamics");
  m->graph.AddTransition(m->graph.AddObservedCategorical("y", y, 2), m->x, b, "emissions");
  m->graph.Finalize();
  return m;
}

TEST(DiscreteModels, LearnedTransitionMatrixBoundIsBelowTheEnumeratedEvidence) {
  // p(y) = Σ_paths π(x_0) Π_t B(y_t | x_t) Π_k B(α_k + c_k) / B(α_k), c_k the transitions out
  // of state k on the path (the Dirichlet-multinomial): exact by enumerating the 2^T paths.
  const Vector pi = (Vector(2) << 0.6, 0.4).finished();
  Matrix b(2, 2);
  b << 0.85, 0.25, 0.15, 0.75;
  auto log_multivariate_beta = [](const Vector& alpha) {
    double out = -std::lgamma(alpha.sum());
    for (Eigen::Index j = 0; j < alpha.size(); ++j) out += std::lgamma(alpha[j]);
    return out;
  };
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.5, 3.0);
    Matrix alpha(2, 2);
    for (int e = 0; e < 4; ++e) alpha(e) = uniform(rng);
    std::vector<int> y;
    for (int t = 0; t < 7; ++t) y.push_back(static_cast<int>(rng() % 2));
    const size_t t_max = y.size();
    double log_evidence = -INFINITY;
    for (int path = 0; path < (1 << t_max); ++path) {
      auto state = [&](size_t t) { return (path >> t) & 1; };
      double log_p = std::log(pi[state(0)]);
      Matrix counts = Matrix::Zero(2, 2);
      for (size_t t = 0; t < t_max; ++t) log_p += std::log(b(y[t], state(t)));
      for (size_t t = 1; t < t_max; ++t) counts(state(t), state(t - 1)) += 1;
      for (int k = 0; k < 2; ++k)
        log_p += log_multivariate_beta(alpha.col(k) + counts.col(k)) -
                 log_multivariate_beta(alpha.col(k));
      log_evidence = std::max(log_evidence, log_p) +
                     std::log1p(std::exp(-std::abs(log_evidence - log_p)));
    }
    std::unique_ptr<LearnedChain> m = MakeLearnedChain(pi, alpha, b, y);
    // Start the states away from their priors, then check every single update.
    for (size_t t = 0; t < t_max; ++t) {
      const double p = std::uniform_real_distribution<double>(0.1, 0.9)(rng);
      m->graph.SetPosterior(m->x[t], Categorical((Vector(2) << p, 1 - p).finished()));
    }
    Scratch scratch = m->graph.MakeScratch();
    double before = m->graph.FreeEnergy(scratch);
    for (int sweep = 0; sweep < 40; ++sweep)
      for (const Variable& v : {m->a, m->x})
        for (size_t i = 0; i < v.size(); ++i) {
          ASSERT_TRUE(m->graph.UpdateElement(v.id(), i, scratch));
          const double after = m->graph.FreeEnergy(scratch);
          ASSERT_LE(after, before + 1e-12 * std::abs(before)) << m->graph.ElementName(v[i]);
          before = after;
        }
    EXPECT_LE(-before, log_evidence + 1e-12);
  }
}

TEST(DiscreteModels, NearlyKnownLearnedMatrixGivesTheKnownMatrixPosteriors) {
  // With α = 10⁹ A the matrix is known in all but name: E[log A_jk] = log A_jk + O(10⁻⁹), and
  // the states' posteriors and the energies must be those of the known-matrix Transition.
  const Vector pi = (Vector(2) << 0.3, 0.7).finished();
  Matrix a(2, 2), b(2, 2);
  a << 0.9, 0.3, 0.1, 0.7;
  b << 0.8, 0.35, 0.2, 0.65;
  const std::vector<int> y = {0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1};
  std::unique_ptr<LearnedChain> learned = MakeLearnedChain(pi, 1e9 * a, b, y);
  FactorGraph known;
  const Variable x = known.AddVariableArray("x", Family::kCategorical, {y.size()}, 2);
  known.AddCategorical(x[0], pi);
  known.AddTransition(x.Slice(1, y.size()), x.Slice(0, y.size() - 1), a, "dynamics");
  known.AddTransition(known.AddObservedCategorical("y", y, 2), x, b, "emissions");
  known.Finalize();
  SchedulerOptions options;
  options.max_iterations = 200;
  options.tolerance = 1e-14;
  options.order = {learned->a, learned->x};
  const Result learned_result = SequentialScheduler(options).Run(learned->graph);
  options.order = {x};
  const Result known_result = SequentialScheduler(options).Run(known);
  ASSERT_EQ(learned_result.termination, Termination::kConverged);
  ASSERT_EQ(known_result.termination, Termination::kConverged);
  for (size_t t = 0; t < y.size(); ++t)
    EXPECT_NEAR(learned->graph.Posterior<Categorical>(learned->x[t]).p()[1],
                known.Posterior<Categorical>(x[t]).p()[1], 1e-7) << "x[" << t << "]";
  // The plates of both graphs in the same order: the prior of A (one factor over its 2
  // columns) first in the learned.
  Scratch learned_scratch = learned->graph.MakeScratch(), known_scratch = known.MakeScratch();
  const auto learned_terms = learned->graph.FreeEnergyParts(learned_scratch);
  const auto known_terms = known.FreeEnergyParts(known_scratch);
  ASSERT_EQ(learned_terms.plate_energy.size(), known_terms.plate_energy.size() + 1);
  for (size_t p = 0; p < known_terms.plate_energy.size(); ++p)
    EXPECT_NEAR(learned_terms.plate_energy[p + 1], known_terms.plate_energy[p], 1e-6) << p;
  // The posterior of A: the prior plus the expected transition counts.
  Matrix counts = Matrix::Zero(2, 2);
  for (size_t t = 1; t < y.size(); ++t)
    counts += known.Posterior<Categorical>(x[t]).p() *
              known.Posterior<Categorical>(x[t - 1]).p().transpose();
  const MatrixDirichlet q_a = MatrixDirichlet::FromColumns(
      {learned->graph.Posterior<Dirichlet>(learned->a[0]),
       learned->graph.Posterior<Dirichlet>(learned->a[1])});
  EXPECT_LT((q_a.alpha() - 1e9 * a - counts).norm(), 1e-5);
}

TEST(DiscreteModels, LearnedTransitionOfTheWrongShapeIsRefused) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kCategorical, {4}, 3);
  const Variable a = graph.AddVariableArray("A", Family::kDirichlet, {2}, 3);
  graph.AddMatrixDirichlet(a, Matrix::Ones(3, 2));
  graph.AddCategorical(x[0], Vector(Vector::Constant(3, 1.0 / 3)));
  graph.AddTransition(x.Slice(1, 4), x.Slice(0, 3), a, "dynamics");
  EXPECT_THAT([&] { graph.Finalize(); },
              ::testing::ThrowsMessage<GraphError>(::testing::HasSubstr(
                  "factor 'dynamics' (Transition): the matrix has 2 columns, but 'in' is "
                  "variable 'x' with 3 categories")));
  FactorGraph rows;
  const Variable y = rows.AddVariableArray("y", Family::kCategorical, {4}, 2);
  const Variable b = rows.AddVariableArray("B", Family::kDirichlet, {2}, 3);
  rows.AddTransition(y.Slice(1, 4), y.Slice(0, 3), b, "dynamics");
  EXPECT_THAT([&] { rows.Finalize(); },
              ::testing::ThrowsMessage<GraphError>(::testing::HasSubstr("expects dimension 2")));
  FactorGraph priors;
  const Variable c = priors.AddVariableArray("C", Family::kDirichlet, {2}, 2);
  EXPECT_THAT([&] { priors.AddMatrixDirichlet(c, Matrix::Ones(2, 3)); },
              ::testing::ThrowsMessage<GraphError>(::testing::HasSubstr(
                  "MatrixDirichlet prior of 'C': alpha has 3 columns, but the matrix variable "
                  "has 2 (one Dirichlet element per column)")));
  Matrix negative = Matrix::Ones(2, 2);
  negative(0, 1) = -1.0;
  EXPECT_THAT([&] { priors.AddMatrixDirichlet(c, negative); },
              ::testing::ThrowsMessage<ModelError>(::testing::HasSubstr(
                  "MatrixDirichlet prior of 'C': MatrixDirichlet: alpha[0][1] must be > 0 and "
                  "finite, got -1")));
}

TEST(DiscreteModels, MixtureSwitchOfTheWrongSizeIsRefused) {
  FactorGraph graph;
  const Variable mu = graph.AddVariableArray("mu", Family::kGaussian, {3});
  const Variable tau = graph.AddVariableArray("tau", Family::kGamma, {3});
  const Variable z = graph.AddVariable("z", Family::kCategorical, 2);
  graph.AddGaussian(mu, 0.0, 1.0);
  graph.AddGamma(tau, 1.0, 1.0);
  graph.AddCategorical(z, Vector((Vector(2) << 0.5, 0.5).finished()));
  graph.AddGaussianMixture(graph.AddObserved("y", 1.0), z, mu, tau, "mixture");
  EXPECT_THAT(ErrorMessage<GraphError>([&] { graph.Finalize(); }),
              AllOf(HasSubstr("mixture"), HasSubstr("'switch' expects dimension 3"),
                    HasSubstr("'z'")));
}

// ---- Markov random fields --------------------------------------------------------------------

/// A 3 x 3 Ising grid with random couplings J and fields h (spins s = 2x − 1).
struct TinyIsing {
  FactorGraph graph;
  std::vector<std::pair<int, int>> edges;
  std::vector<double> coupling, field;
};

std::unique_ptr<TinyIsing> MakeTinyIsing(uint64_t seed) {
  auto m = std::make_unique<TinyIsing>();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.7);
  const Variable s = m->graph.AddVariableArray("s", Family::kCategorical, {3, 3}, 2);
  for (int i = 0; i < 9; ++i) {
    m->field.push_back(normal(rng));
    const double h = m->field.back();
    m->graph.AddPotential({s[i]}, {-h, h});
  }
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      const int i = 3 * r + c;
      for (int j : {c + 1 < 3 ? i + 1 : -1, r + 1 < 3 ? i + 3 : -1}) {
        if (j < 0) continue;
        m->edges.push_back({i, j});
        m->coupling.push_back(normal(rng));
        const double J = m->coupling.back();
        m->graph.AddPotential({s[i], s[j]}, {J, -J, -J, J});
      }
    }
  m->graph.Finalize();
  return m;
}

TEST(MarkovRandomField, MeanFieldBoundsTheEnumeratedLogPartitionAndNeverRaisesF) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    std::unique_ptr<TinyIsing> m = MakeTinyIsing(seed);
    // log Z by enumerating all 2⁹ configurations.
    double log_z = -INFINITY;
    for (int config = 0; config < 512; ++config) {
      auto spin = [&](int i) { return (config >> i) & 1 ? 1.0 : -1.0; };
      double energy = 0;
      for (int i = 0; i < 9; ++i) energy += m->field[i] * spin(i);
      for (size_t e = 0; e < m->edges.size(); ++e)
        energy += m->coupling[e] * spin(m->edges[e].first) * spin(m->edges[e].second);
      log_z = std::max(log_z, energy) + std::log1p(std::exp(-std::abs(log_z - energy)));
    }
    // Start away from uniform, then check every single update.
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.05, 0.95);
    const Variable s = m->graph.Find("s");
    for (size_t i = 0; i < 9; ++i) {
      const double p = uniform(rng);
      m->graph.SetPosterior(s[i], Categorical((Vector(2) << p, 1 - p).finished()));
    }
    Scratch scratch = m->graph.MakeScratch();
    double before = m->graph.FreeEnergy(scratch);
    for (int sweep = 0; sweep < 50; ++sweep)
      for (size_t i = 0; i < 9; ++i) {
        ASSERT_TRUE(m->graph.UpdateElement(s.id(), i, scratch));
        const double after = m->graph.FreeEnergy(scratch);
        ASSERT_LE(after, before + 1e-12) << "seed " << seed;
        before = after;
      }
    EXPECT_LE(-before, log_z + 1e-12) << "seed " << seed;
  }
}

TEST(MarkovRandomField, PlatesWithATablePerFactorEqualOnePlatePerFactor) {
  // The 3 x 3 grid of MakeTinyIsing again, as a JSON model with loops builds it: one plate of
  // fields, one of horizontal and one of vertical couplings, each with a table per factor.
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::unique_ptr<TinyIsing> single = MakeTinyIsing(seed);
    FactorGraph plates;
    const Variable s = plates.AddVariableArray("s", Family::kCategorical, {3, 3}, 2);
    std::vector<double> fields, horizontal, vertical;
    for (double h : single->field) fields.insert(fields.end(), {-h, h});
    for (size_t e = 0; e < single->edges.size(); ++e) {
      const auto [i, j] = single->edges[e];
      const double J = single->coupling[e];
      std::vector<double>& table = j == i + 1 ? horizontal : vertical;
      table.insert(table.end(), {J, -J, -J, J});
    }
    plates.AddPotential({s}, fields);
    for (int r = 0; r < 3; ++r)
      plates.AddPotential({s.Slice(3 * r, 3 * r + 2), s.Slice(3 * r + 1, 3 * r + 3)},
                          std::vector<double>(horizontal.begin() + 8 * r,
                                              horizontal.begin() + 8 * r + 8));
    plates.AddPotential({s.Slice(0, 6), s.Slice(3, 9)}, vertical);
    plates.Finalize();
    // Neighbouring spins share factors: they are never updated in blocks.
    EXPECT_FALSE(plates.updates_in_blocks(s));
    const Variable s_single = single->graph.Find("s");
    Scratch scratch = plates.MakeScratch(), single_scratch = single->graph.MakeScratch();
    for (int sweep = 0; sweep < 20; ++sweep) {
      ASSERT_EQ(plates.UpdateElements(s.id(), 0, 9, scratch), 9u);
      ASSERT_EQ(single->graph.UpdateElements(s_single.id(), 0, 9, single_scratch), 9u);
      ASSERT_NEAR(plates.FreeEnergy(scratch), single->graph.FreeEnergy(single_scratch), 1e-12)
          << "seed " << seed << ", sweep " << sweep;
    }
  }
}

/// A potential that records how the graph asks for its messages: each AccumulateMessages
/// call's step and number of factors, and the number of AccumulateMessage calls.
class RecordingPotential final : public Node {
 public:
  RecordingPotential(int num_variables, std::vector<double> log_tables)
      : inner_(MakePotentialNode(num_variables, std::move(log_tables))) {}
  const char* type() const override { return "RecordingPotential"; }
  std::vector<std::string> slot_names() const override { return inner_->slot_names(); }
  Family ObservedFamily(int slot, const PointMass& value) const override {
    return inner_->ObservedFamily(slot, value);
  }
  void Bind(const std::vector<SlotInfo>& slots, size_t num_factors,
            const std::string& where) override {
    inner_->Bind(slots, num_factors, where);
  }
  bool IsDirected() const override { return false; }
  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace& ws) const override {
    ++singles;
    inner_->AccumulateMessage(slot, begin, end, q, eta, ws);
  }
  void AccumulateMessages(int slot, size_t begin, size_t end, size_t step, const SlotView* q,
                          double* eta, size_t stride, Workspace& ws) const override {
    runs.push_back({step, (end - begin + step - 1) / step});
    inner_->AccumulateMessages(slot, begin, end, step, q, eta, stride, ws);
  }
  double AverageEnergy(size_t begin, size_t end, const SlotView* q,
                       Workspace& ws) const override {
    return inner_->AverageEnergy(begin, end, q, ws);
  }
  mutable std::vector<std::pair<size_t, size_t>> runs;  ///< (step, factors)
  mutable int singles = 0;

 private:
  std::unique_ptr<Node> inner_;
};

/// A rows x cols Potts grid of k states as a JSON model with loops builds it: a plate of
/// fields, a plate of horizontal couplings per row, one of vertical couplings, a random table
/// per factor, and a random starting posterior per spin. The fields' plate records its calls
/// when `recording` is given. The elements listed `impossible` have a field of −∞
/// everywhere: their updates always fail.
FactorGraph MakePottsGrid(uint64_t seed, int rows, int cols, int k,
                          const std::vector<size_t>& impossible = {},
                          RecordingPotential** recording = nullptr) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.8);
  const size_t n = static_cast<size_t>(rows) * cols, kk = static_cast<size_t>(k) * k;
  FactorGraph graph;
  const Variable s = graph.AddVariableArray("s", Family::kCategorical,
                                            {size_t(rows), size_t(cols)}, k);
  std::vector<double> fields(n * k), vertical((n - cols) * kk);
  for (double& f : fields) f = normal(rng);
  for (size_t i : impossible) std::fill_n(fields.begin() + i * k, k, -INFINITY);
  auto field_node = std::make_unique<RecordingPotential>(1, fields);
  if (recording) *recording = field_node.get();
  graph.AddFactor(std::move(field_node), {s}, "fields");
  for (int r = 0; r < rows; ++r) {
    std::vector<double> horizontal((cols - 1) * kk);
    for (double& t : horizontal) t = normal(rng);
    const size_t row = static_cast<size_t>(r) * cols;
    graph.AddPotential({s.Slice(row, row + cols - 1), s.Slice(row + 1, row + cols)},
                       horizontal);
  }
  for (double& t : vertical) t = normal(rng);
  graph.AddPotential({s.Slice(0, n - cols), s.Slice(cols, n)}, vertical);
  graph.Finalize();
  std::uniform_real_distribution<double> uniform(0.05, 1.0);
  for (size_t i = 0; i < n; ++i) {
    Vector p(k);
    for (int c = 0; c < k; ++c) p[c] = uniform(rng);
    graph.SetPosterior(s[i], Categorical(Vector(p / p.sum())));
  }
  return graph;
}

/// Every spin's probabilities, bit for bit.
void ExpectSameSpins(const FactorGraph& a, const FactorGraph& b, int k,
                     const std::string& what) {
  const Variable s = a.Find("s");
  for (size_t i = 0; i < s.size(); ++i)
    for (int c = 0; c < k; ++c)
      ASSERT_EQ(a.Moments(s[i])[c], b.Moments(s[i])[c]) << what << ", spin " << i;
}

TEST(MarkovRandomField, ColourRunsUpdatedTogetherEqualOneByOneUpdatesBitForBit) {
  // Each colour class of a grid is made of runs (every other spin of a row); the listed
  // update computes a run's messages together. Whole classes, classes cut at random places,
  // the classes in the other order and an unordered list must each give what UpdateElement
  // gives one element at a time, in the list's order.
  for (int k : {2, 3}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      SCOPED_TRACE("k = " + std::to_string(k) + ", seed " + std::to_string(seed));
      FactorGraph listed = MakePottsGrid(seed, 7, 9, k), single = MakePottsGrid(seed, 7, 9, k);
      const Variable s = listed.Find("s");
      const std::vector<std::vector<size_t>> classes = listed.ColourClasses(s);
      ASSERT_EQ(classes.size(), 2u);
      Scratch scratch = listed.MakeScratch(), single_scratch = single.MakeScratch();
      std::mt19937_64 rng(seed);
      auto update = [&](const std::vector<size_t>& list, size_t first, size_t last) {
        ASSERT_EQ(listed.UpdateListedElements(s.id(), list.data() + first, last - first,
                                              scratch),
                  SIZE_MAX);
        for (size_t i = first; i < last; ++i)
          ASSERT_TRUE(single.UpdateElement(s.id(), list[i], single_scratch));
      };
      for (int sweep = 0; sweep < 4; ++sweep) {
        for (size_t c : {size_t{0}, size_t{1}, size_t(sweep % 2), size_t(1 - sweep % 2)}) {
          const std::vector<size_t>& list = classes[c];
          if (sweep < 2) {
            update(list, 0, list.size());
            continue;
          }
          // Cut at random places: runs start and stop mid-way.
          for (size_t first = 0, last; first < list.size(); first = last) {
            last = std::min(list.size(), first + 1 + rng() % 7);
            update(list, first, last);
          }
        }
        ExpectSameSpins(listed, single, k, "sweep " + std::to_string(sweep));
        ASSERT_EQ(listed.FreeEnergy(scratch), single.FreeEnergy(single_scratch));
      }
      std::vector<size_t> shuffled(s.size());
      for (size_t i = 0; i < shuffled.size(); ++i) shuffled[i] = i;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      shuffled.insert(shuffled.end(), classes[1].begin(), classes[1].end());
      update(shuffled, 0, shuffled.size());
      ExpectSameSpins(listed, single, k, "an unordered list");
    }
  }
}

TEST(MarkovRandomField, ColourRunsAreReadOnceAndAFailureStopsOnlyItsElement) {
  // A 6 x 10 grid is red/black; in each row the spins of columns 1..8 of one colour are
  // connected alike (field, left, right, up and/or down): one run of 4, read by one call
  // per plate, and the spin at column 0 or 9 on its own.
  RecordingPotential* fields = nullptr;
  FactorGraph graph = MakePottsGrid(3, 6, 10, 2, {}, &fields);
  const Variable s = graph.Find("s");
  const std::vector<std::vector<size_t>> classes = graph.ColourClasses(s);
  ASSERT_EQ(classes.size(), 2u);
  Scratch scratch = graph.MakeScratch();
  for (const std::vector<size_t>& list : classes) {
    fields->runs.clear();
    fields->singles = 0;
    ASSERT_EQ(graph.UpdateListedElements(s.id(), list.data(), list.size(), scratch), SIZE_MAX);
    EXPECT_EQ(fields->runs, (std::vector<std::pair<size_t, size_t>>(6, {2, 4})));
    EXPECT_EQ(fields->singles, 6);
  }
  // Spins 22 and 26 (row 2, columns 2 and 6) lie in one run of the first colour and can
  // never be updated: the others of the run are, as one by one, and the first is reported.
  const std::vector<size_t> bad = {22, 26};
  FactorGraph listed = MakePottsGrid(5, 6, 10, 3, bad);
  FactorGraph single = MakePottsGrid(5, 6, 10, 3, bad);
  const std::vector<std::vector<size_t>> colours = listed.ColourClasses(s);
  ASSERT_EQ(colours[0][11], 22u);
  ASSERT_EQ(colours[0][13], 26u);
  Scratch a = listed.MakeScratch(), b = single.MakeScratch();
  auto moments = [&](size_t i) {
    return std::vector<double>(listed.Moments(s[i]), listed.Moments(s[i]) + 3);
  };
  const std::vector<double> before_22 = moments(22), before_26 = moments(26);
  for (int sweep = 0; sweep < 2; ++sweep)
    for (size_t c = 0; c < 2; ++c) {
      const std::vector<size_t>& list = colours[c];
      EXPECT_EQ(listed.UpdateListedElements(s.id(), list.data(), list.size(), a),
                c == 0 ? size_t{22} : SIZE_MAX);
      for (size_t i : list) EXPECT_EQ(single.UpdateElement(s.id(), i, b), i != 22 && i != 26);
    }
  ExpectSameSpins(listed, single, 3, "spins 22 and 26 impossible");
  EXPECT_EQ(moments(22), before_22);
  EXPECT_EQ(moments(26), before_26);
}

TEST(MarkovRandomField, TablesOfTheWrongSizeAreRefused) {
  FactorGraph graph;
  const Variable s = graph.AddVariableArray("s", Family::kCategorical, {4}, 2);
  graph.AddPotential({s}, {0.1, -0.1});
  graph.AddPotential({s.Slice(0, 3), s.Slice(1, 4)}, std::vector<double>(8, 0.0), "couplings");
  EXPECT_THAT([&] { graph.Finalize(); },
              ::testing::ThrowsMessage<ModelError>(::testing::HasSubstr(
                  "the log-tables have 8 entries, but the variables' categories make 4 per "
                  "table: expected one table (4) or one per factor (12)")));
}

TEST(MarkovRandomField, IsingGridMeanFieldAgreesWithLibDai) {
  const std::string path = testing::ReferencePath("libdai/ising_grid_100x100.fg");
  Model model = LoadModel(path);
  // One array of the 10,000 spins; the 29,800 factors in 102 plates: the unary factors, the
  // horizontal couplings of each of the 100 rows, and every vertical coupling.
  EXPECT_EQ(model.graph.num_variables(), 1u);
  EXPECT_EQ(model.graph.variable_name(0), "x");
  EXPECT_EQ(model.graph.WholeVariable(0).size(), 10000u);
  EXPECT_EQ(model.graph.num_factors(), 29800u);
  EXPECT_EQ(model.graph.num_plates(), 102u);
  SchedulerOptions options;
  options.max_iterations = 3000;
  options.tolerance = 1e-9;
  const Result result = SequentialScheduler(options).Run(model.graph);
  ASSERT_TRUE(result.converged()) << result.message;
  EXPECT_EQ(result.free_energy_increases, 0);
  // libDAI: mean field 9535.76128059 (its fixed point depends on the order), Bethe
  // 10255.4312769.
  const double log_z = result.evidence_lower_bound();
  EXPECT_NEAR(log_z, 9535.76128059, 0.005 * 9535.76128059);
  EXPECT_LT(log_z, 10255.4312769);
}

TEST(MarkovRandomField, FgFactorsGroupedIntoPlatesGiveTheResultOfOnePlatePerFactor) {
  // A random .fg file: labels with gaps, 2 and 3 states, factors of 1 to 3 variables in a
  // shuffled order, some sharing a pattern (so they group into plates) and some not. The
  // reader's arrays and plates against a graph built directly from the file's factors, one
  // scalar variable per label and one plate per factor: the same fixed points of loopy BP and
  // of mean field (the update orders differ, the fixed points do not), and the same F there.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> value(0.5, 2.0);
  const std::vector<long> labels = {0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14};
  auto states = [](long label) { return label % 5 == 0 ? 3 : 2; };
  struct Factor {
    std::vector<long> labels;
    std::vector<double> table;  // libDAI order: the first variable fastest
  };
  std::vector<Factor> factors;
  for (long label : labels) factors.push_back({{label}, {}});
  for (size_t i = 0; i + 1 < labels.size(); ++i) factors.push_back({{labels[i], labels[i + 1]}, {}});
  for (size_t i = 0; i + 3 < labels.size(); i += 2)
    factors.push_back({{labels[i], labels[i + 3], labels[i + 1]}, {}});
  for (Factor& f : factors) {
    size_t size = 1;
    for (long l : f.labels) size *= static_cast<size_t>(states(l));
    for (size_t e = 0; e < size; ++e) f.table.push_back(value(rng));
  }
  std::shuffle(factors.begin(), factors.end(), rng);
  std::ostringstream text;
  text.precision(17);
  text << factors.size() << "\n";
  for (const Factor& f : factors) {
    text << "\n" << f.labels.size() << "\n";
    for (long l : f.labels) text << l << " ";
    text << "\n";
    for (long l : f.labels) text << states(l) << " ";
    text << "\n" << f.table.size() << "\n";
    for (size_t e = 0; e < f.table.size(); ++e) text << e << " " << f.table[e] << "\n";
  }
  Model grouped = ParseLibDaiFactorGraph(text.str(), "random.fg");
  EXPECT_LT(grouped.graph.num_plates(), factors.size());

  FactorGraph direct;
  std::map<long, Variable> variable_of;
  for (long l : labels)
    variable_of[l] = direct.AddVariable("v" + std::to_string(l), Family::kCategorical, states(l));
  for (const Factor& f : factors) {
    // Row-major over the labels (the last fastest) from libDAI's first-fastest order.
    std::vector<double> log_table(f.table.size());
    for (size_t e = 0; e < f.table.size(); ++e) {
      size_t rest = e, row_major = 0;
      std::vector<size_t> x;
      for (long l : f.labels) {
        x.push_back(rest % states(l));
        rest /= states(l);
      }
      for (size_t i = 0; i < x.size(); ++i) row_major = row_major * states(f.labels[i]) + x[i];
      log_table[row_major] = std::log(f.table[e]);
    }
    std::vector<Argument> args;
    for (long l : f.labels) args.push_back(variable_of[l]);
    direct.AddPotential(args, log_table);
  }
  direct.Finalize();

  // The element of label l in the reader's arrays: its position among the labels of its
  // number of states ("x_2", "x_3").
  auto element_of = [&](long l) {
    const std::string name = "x_" + std::to_string(states(l));
    size_t index = 0;
    for (long other : labels)
      if (other < l && states(other) == states(l)) ++index;
    return grouped.graph.Find(name)[index];
  };
  auto compare = [&](const Result& a, const Result& b, double tolerance, const char* what) {
    ASSERT_TRUE(a.converged() && b.converged()) << what;
    EXPECT_NEAR(a.free_energy.back(), b.free_energy.back(),
                tolerance * std::abs(b.free_energy.back())) << what;
    for (long l : labels) {
      const Vector p = grouped.graph.Posterior<Categorical>(element_of(l)).p();
      const Vector q = direct.Posterior<Categorical>(variable_of[l]).p();
      for (Eigen::Index k = 0; k < p.size(); ++k) EXPECT_NEAR(p[k], q[k], tolerance) << what << " " << l;
    }
  };
  BeliefPropagationOptions bp;
  bp.tolerance = 1e-13;
  bp.max_iterations = 2000;
  compare(BeliefPropagation(bp).Run(grouped.graph), BeliefPropagation(bp).Run(direct), 1e-9,
          "loopy BP");
  SchedulerOptions mean_field;
  mean_field.tolerance = 1e-15;
  mean_field.max_iterations = 5000;
  compare(SequentialScheduler(mean_field).Run(grouped.graph),
          SequentialScheduler(mean_field).Run(direct), 1e-7, "mean field");
}

TEST(MarkovRandomField, MalformedFgFilesNameTheLine) {
  auto error_of = [](const std::string& text) {
    return ErrorMessage<ModelError>([&] { ParseLibDaiFactorGraph(text, "model.fg"); });
  };
  EXPECT_NO_THROW(ParseLibDaiFactorGraph("1\n\n2\n0 1\n2 2\n1\n0 1.0\n", "model.fg"));
  EXPECT_EQ(error_of("x"), "model.fg line 1: expected the number of factors, found \"x\"");
  EXPECT_EQ(error_of("1\n\n2\n0 1\n2 2\n1\n4 1.0\n"),
            "model.fg line 7: table index 4 is outside [0, 4)");
  EXPECT_EQ(error_of("1\n\n2\n0 1\n2 2\n1\n0 -1\n"),
            "model.fg line 7: expected a table value (a finite number >= 0), found \"-1\"");
  EXPECT_EQ(error_of("2\n\n1\n0\n2\n0\n\n1\n0\n3\n0\n"),
            "model.fg line 10: variable 0 has 3 states here but 2 before");
  EXPECT_EQ(error_of("1\n\n1\n0\n2\n0\n7\n"),
            "model.fg line 7: expected the end of the file after 1 factors");
  EXPECT_EQ(error_of("1\n\n2\n0 0\n2 2\n0\n"),
            "model.fg line 4: variable 0 appears twice in one factor");
  EXPECT_EQ(error_of("2\n\n1\n0\n2\n0\n"),
            "model.fg line 6: expected the number of variables of a factor, found the end of "
            "the file");
}

}  // namespace
}  // namespace vfe
