// Stochastic variational inference and the engine pieces it stands on: data replaced after
// Finalize, plate weights, the natural-gradient step, minibatch sources.
//
// Oracles: a graph built afresh with the new data; the same model with its data repeated
// (a weight w is w copies); the blend of two VMP updates computed by hand; full-batch VMP on
// the BayesPy reference mixture (SVI's F over the whole data within 0.1% of it).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bench/models.h"
#include "tests/testing/expect.h"
#include "tests/testing/reference.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ErrorMessage;

/// The reference case's model (examples/gaussian_mixture.cc) over `points`.
FactorGraph MixtureGraph(const Matrix& points) {
  std::vector<Variable> order;
  return bench::MakeMixtureModel(points, 5, &order);
}

/// μ ~ N(0, 0.01), τ ~ Gamma(2, 1), y_n ~ N(μ, 1/τ): the Gaussian node caches Σy, Σy².
FactorGraph MeanPrecisionGraph(const std::vector<double>& y, Variable* mu, Variable* tau) {
  FactorGraph g;
  *mu = g.AddVariable("mu", Family::kGaussian);
  *tau = g.AddVariable("tau", Family::kGamma);
  g.AddGaussian(*mu, 0.0, 0.01);
  g.AddGamma(*tau, 2.0, 1.0);
  g.AddGaussian(g.AddObserved("y", y), *mu, *tau, "data");
  g.Finalize();
  return g;
}

Result Sweeps(FactorGraph& g, int sweeps) {
  SchedulerOptions options;
  options.max_iterations = sweeps;
  options.tolerance = 0.0;
  return SequentialScheduler(options).Run(g);
}

TEST(SetObservedValues, SameAsAFreshGraph) {
  Variable mu, tau, mu2, tau2;
  FactorGraph changed = MeanPrecisionGraph({1.0, 2.0, 3.0, 4.0}, &mu, &tau);
  Sweeps(changed, 3);
  const std::vector<double> data = {0.5, -1.5, 2.25, 7.0};
  changed.SetObservedValues(changed.Find("y"), data);
  changed.SetPosterior(mu, Gaussian(0.0, 1.0));
  changed.SetPosterior(tau, Gamma(1.0, 1.0));
  FactorGraph fresh = MeanPrecisionGraph(data, &mu2, &tau2);
  fresh.SetPosterior(mu2, Gaussian(0.0, 1.0));
  fresh.SetPosterior(tau2, Gamma(1.0, 1.0));
  const Result a = Sweeps(changed, 5), b = Sweeps(fresh, 5);
  EXPECT_EQ(a.free_energy, b.free_energy);
  EXPECT_EQ(changed.Posterior<Gaussian>(mu).mean(), fresh.Posterior<Gaussian>(mu2).mean());
}

TEST(SetObservedValues, RowsOfAMixtureSameAsAFreshGraph) {
  Matrix first(6, 2), second(6, 2);
  first << 0, 0, 1, 1, 5, 5, 6, 5, 0, 1, 5, 6;
  second << 1, 2, -3, 0.5, 4, 4, 2, 2, 7, -1, 0.25, 3;
  auto build = [](const Matrix& rows) {
    FactorGraph g;
    const Variable m = g.AddVariableArray("m", Family::kMvGaussian, {2}, 2);
    const Variable w = g.AddVariableArray("W", Family::kWishart, {2}, 2);
    const Variable z = g.AddVariableArray("z", Family::kCategorical, {6}, 2);
    g.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(0.01 * Matrix::Identity(2, 2)));
    g.AddWishart(w, 3.0, Matrix(Matrix::Identity(2, 2)));
    g.AddCategorical(z, Vector(Vector::Constant(2, 0.5)));
    g.AddGaussianMixture(g.AddObservedRows("y", rows), z, m, w);
    g.Finalize();
    g.SetPosterior(m[1], MvGaussian(Vector::Constant(2, 5.0), Matrix(Matrix::Identity(2, 2))));
    return g;
  };
  FactorGraph changed = build(first);
  changed.SetObservedRows(changed.Find("y"), second);
  FactorGraph fresh = build(second);
  EXPECT_EQ(Sweeps(changed, 4).free_energy, Sweeps(fresh, 4).free_energy);
}

TEST(SetObservedValues, ErrorsLeaveTheDataAlone) {
  Variable mu, tau;
  FactorGraph g = MeanPrecisionGraph({1.0, 2.0, 3.0}, &mu, &tau);
  Scratch scratch = g.MakeScratch();
  const double before = g.FreeEnergy(scratch);
  EXPECT_THROW(g.SetObservedValues(g.Find("y"), {1.0, 2.0}), GraphError);
  EXPECT_THROW(g.SetObservedValues(mu, {1.0}), GraphError);
  EXPECT_THAT(
      ErrorMessage<ModelError>([&] { g.SetObservedValues(g.Find("y"), {1.0, NAN, 3.0}); }),
      HasSubstr("y[1]"));
  EXPECT_THROW(g.SetObservedRows(g.Find("y"), Matrix::Zero(3, 2)), GraphError);
  EXPECT_EQ(g.FreeEnergy(scratch), before);

  FactorGraph d;
  const Variable p = d.AddVariable("p", Family::kDirichlet, 3);
  d.AddDirichlet(p, Vector(Vector::Ones(3)));
  d.AddCategorical(d.AddObservedCategorical("c", {0, 1}, 3), p);
  d.Finalize();
  EXPECT_THROW(d.SetObservedValues(d.Find("c"), {0.0, 3.0}), ModelError);  // out of range
}

TEST(PlateWeight, StandsForCopiesOfTheData) {
  // Weight 3 on two observations = the six observations (each pair thrice), for the shared
  // mean; a per-factor local variable is not scaled.
  auto build = [](const std::vector<double>& y, double weight) {
    FactorGraph g;
    const Variable mu = g.AddVariable("mu", Family::kGaussian);
    const Variable x = g.AddVariableArray("x", Family::kGaussian, {y.size()});
    g.AddGaussian(mu, 0.0, 0.5);
    const PlateId local = g.AddGaussian(x, mu, 2.0);
    g.AddGaussian(g.AddObserved("y", y), x, 4.0);
    g.Finalize();
    g.SetPlateWeight(local, weight);
    return g;
  };
  FactorGraph weighted = build({1.0, -2.0}, 3.0);
  FactorGraph copies = build({1.0, -2.0, 1.0, -2.0, 1.0, -2.0}, 1.0);
  Sweeps(weighted, 30);
  Sweeps(copies, 30);
  const Variable mu_w = weighted.Find("mu"), mu_c = copies.Find("mu");
  EXPECT_NEAR(weighted.Posterior<Gaussian>(mu_w).mean(), copies.Posterior<Gaussian>(mu_c).mean(),
              1e-12);
  EXPECT_NEAR(weighted.Posterior<Gaussian>(mu_w).precision(),
              copies.Posterior<Gaussian>(mu_c).precision(), 1e-12);
  const Variable x_w = weighted.Find("x"), x_c = copies.Find("x");
  EXPECT_NEAR(weighted.Posterior<Gaussian>(x_w[1]).mean(), copies.Posterior<Gaussian>(x_c[1]).mean(),
              1e-12);
  EXPECT_NEAR(weighted.Posterior<Gaussian>(x_w[1]).precision(),
              copies.Posterior<Gaussian>(x_c[1]).precision(), 1e-12);
  EXPECT_THROW(weighted.SetPlateWeight(0, 0.0), GraphError);
  EXPECT_THROW(weighted.SetPlateWeight(99, 1.0), GraphError);
}

TEST(NaturalGradientStep, BlendsTheUpdateWithThePosterior) {
  Variable mu, tau;
  FactorGraph g = MeanPrecisionGraph({1.0, 2.5, 3.0}, &mu, &tau);
  Scratch scratch = g.MakeScratch();
  const std::vector<double> before = g.NaturalParameters(tau);
  FactorGraph full = MeanPrecisionGraph({1.0, 2.5, 3.0}, &mu, &tau);
  Scratch full_scratch = full.MakeScratch();
  full.UpdateElements(tau.id(), 0, 1, full_scratch);
  const std::vector<double> update = full.NaturalParameters(tau);
  ASSERT_EQ(g.UpdateElementsNaturalGradient(tau.id(), 0, 1, 0.25, scratch), 1u);
  const std::vector<double> blended = g.NaturalParameters(tau);
  for (size_t k = 0; k < before.size(); ++k)
    EXPECT_NEAR(blended[k], 0.75 * before[k] + 0.25 * update[k], 1e-12 * std::abs(update[k]));
  ASSERT_EQ(g.UpdateElementsNaturalGradient(tau.id(), 0, 1, 1.0, scratch), 1u);
  EXPECT_EQ(g.NaturalParameters(tau), update);
  EXPECT_THROW(g.UpdateElementsNaturalGradient(tau.id(), 0, 1, 0.0, scratch), GraphError);
  EXPECT_THROW(g.UpdateElementsNaturalGradient(tau.id(), 0, 1, 1.5, scratch), GraphError);
}

// ---- SVI on the reference mixture -----------------------------------------------------------

struct Mixture {
  Matrix points;
  std::vector<int> labels0;
  Matrix centres;
};

Mixture LoadMixture() {
  const json data = testing::LoadReference("bayespy/gmm_N10000.json");
  Mixture m;
  const int n = data["N"], d = data["model"]["D"], k = data["model"]["K"];
  m.points.resize(n, d);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) m.points(i, j) = data["y"][i][j].get<double>();
  m.labels0 = data["init"]["labels0"].get<std::vector<int>>();
  m.centres.resize(k, d);
  for (int c = 0; c < k; ++c)
    for (int j = 0; j < d; ++j) m.centres(c, j) = data["init"]["centers"][c][j].get<double>();
  return m;
}

TEST(StochasticVariationalInference, ReachesTheFullBatchFreeEnergyOnTheReferenceMixture) {
  const Mixture m = LoadMixture();
  // Full-batch VMP from the reference initialisation.
  FactorGraph full = MixtureGraph(m.points);
  const Variable z_full = full.Find("z");
  for (size_t i = 0; i < z_full.size(); ++i) {
    Vector one_hot = Vector::Zero(5);
    one_hot[m.labels0[i]] = 1.0;
    full.SetPosterior(z_full[i], Categorical(one_hot));
  }
  SchedulerOptions options;
  options.max_iterations = 500;
  options.tolerance = 1e-12;
  options.order = {full.Find("mu"), full.Find("Lambda"), full.Find("weights"), z_full};
  const Result batch = SequentialScheduler(options).Run(full);
  const double full_f = batch.free_energy.back();

  // SVI on minibatches of 500, the means starting at the reference's farthest-point centres.
  const size_t b = 500;
  FactorGraph minibatch = MixtureGraph(m.points.topRows(b));
  const Variable mu = minibatch.Find("mu"), z = minibatch.Find("z");
  for (int c = 0; c < 5; ++c)
    minibatch.SetPosterior(mu[c], MvGaussian(Vector(m.centres.row(c).transpose()),
                                             Matrix(Matrix::Identity(2, 2))));
  MatrixMinibatches source(m.points, minibatch.Find("y"), b, /*seed=*/11);
  SviOptions svi_options;
  svi_options.steps = 600;  // 30 passes
  std::vector<double> trace;
  svi_options.callback = [&](const SviStep& step) {
    trace.push_back(step.free_energy_estimate);
    return true;
  };
  const StochasticVariationalInference svi(svi_options);
  const SviResult result = svi.Run(minibatch, {z}, source);
  EXPECT_EQ(result.steps, 600u);
  EXPECT_EQ(trace, result.free_energy_estimate);
  const double svi_f = svi.FullFreeEnergy(minibatch, {z}, source);
  // F of a minibatch graph's globals over all data can only be above the full-batch optimum
  // (up to its own convergence) and must be within 0.1% of it.
  EXPECT_GT(svi_f, full_f - 1e-6 * std::abs(full_f));
  EXPECT_LT(std::abs(svi_f - full_f), 1e-3 * std::abs(full_f))
      << "SVI " << svi_f << ", full batch " << full_f;

  // The same F through the full graph: its globals set to SVI's, one label sweep.
  for (const char* name : {"mu", "Lambda", "weights"})
    full.SetNaturalParameters(full.Find(name), minibatch.NaturalParameters(minibatch.Find(name)));
  Scratch scratch = full.MakeScratch();
  full.UpdateElements(z_full.id(), 0, z_full.size(), scratch);
  EXPECT_NEAR(full.FreeEnergy(scratch), svi_f, 1e-9 * std::abs(svi_f));
}

TEST(CsvMinibatches, StreamsTheRowsOfAFileInOrder) {
  const std::string path = ::testing::TempDir() + "svi_rows.csv";
  {
    std::ofstream out(path);
    out << "a,b\n";
    for (int i = 0; i < 7; ++i) out << i << "," << 10 * i << "\n";
  }
  FactorGraph g;
  const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
  g.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
  const Variable y = g.AddObservedRows("y", Matrix::Zero(3, 2));
  g.AddMvGaussian(y, m, Matrix(Matrix::Identity(2, 2)));
  g.Finalize();
  CsvMinibatches source(path, g, y);
  EXPECT_EQ(source.size(), 7u);
  EXPECT_EQ(source.batch_size(), 3u);
  // Rows 0-2, 3-5, then 6 and the wrap to 0, 1: read back through the observed moments.
  const std::vector<int> expected = {0, 1, 2, 3, 4, 5, 6, 0, 1};
  for (int batch = 0; batch < 3; ++batch) {
    source.Next(g);
    for (int i = 0; i < 3; ++i) {
      const double* t = g.Moments(y[i]);
      EXPECT_EQ(t[0], expected[3 * batch + i]);
      EXPECT_EQ(t[1], 10 * expected[3 * batch + i]);
    }
  }
  {
    std::ofstream out(path);
    out << "1,2\n3,4\n5\n";
  }
  EXPECT_THAT(ErrorMessage<ModelError>([&] { CsvMinibatches bad(path, g, y); }),
              HasSubstr("' line 3: expected 2 numbers, found 1"));
  std::remove(path.c_str());
}

TEST(CsvMinibatches, ReadsLinesOfAnyLengthUpToTheLimit) {
  // Lines are read in pieces of 4,095 characters: lines of 4,095 and 4,096 characters, one of
  // 9,001, and a last line with no newline must come back whole (spaces around a field are
  // ignored, so a number padded with spaces makes a long line).
  const std::string path = ::testing::TempDir() + "svi_long_lines.csv";
  {
    std::ofstream out(path);
    out << "7" << std::string(4094, ' ') << "\n"
        << "8" << std::string(4095, ' ') << "\n"
        << "9" << std::string(9000, ' ') << "\n"
        << "10";
  }
  Variable mu, tau;
  FactorGraph g = MeanPrecisionGraph({0.0, 0.0, 0.0, 0.0}, &mu, &tau);
  const Variable y = g.Find("y");
  {
    CsvMinibatches source(path, g, y);
    EXPECT_EQ(source.size(), 4u);
    source.Next(g);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(g.Moments(y[i])[0], 7 + i);
  }
  // Over the limit of VFE_MAX_LINE_BYTES: refused with the line number.
  setenv("VFE_MAX_LINE_BYTES", "5000", 1);
  EXPECT_THAT(ErrorMessage<IoError>([&] { CsvMinibatches bad(path, g, y); }),
              HasSubstr("' line 3: longer than 5000 bytes, the limit (VFE_MAX_LINE_BYTES)"));
  unsetenv("VFE_MAX_LINE_BYTES");
  EXPECT_THAT(ErrorMessage<IoError>([&] { CsvMinibatches bad("-", g, y); }),
              HasSubstr("cannot stream the CSV file from standard input"));
  std::remove(path.c_str());
}

TEST(StochasticVariationalInference, RefusesBadSetups) {
  Variable mu, tau;
  FactorGraph g = MeanPrecisionGraph({1.0, 2.0, 3.0, 4.0}, &mu, &tau);
  MatrixMinibatches source(Matrix::Ones(8, 1), g.Find("y"), 4);
  SviOptions bad;
  bad.forgetting_rate = 0.4;
  EXPECT_THROW(StochasticVariationalInference{bad}, OptionsError);
  const StochasticVariationalInference svi;
  EXPECT_THROW(svi.Run(g, {tau}, source), GraphError);  // a local of 1 element, not 4
  EXPECT_THROW(MatrixMinibatches(Matrix::Ones(3, 1), g.Find("y"), 4), GraphError);
  MatrixMinibatches uneven(Matrix::Ones(10, 1), g.Find("y"), 4);
  EXPECT_THROW(svi.FullFreeEnergy(g, {}, uneven), GraphError);  // 4 does not divide 10
}

}  // namespace
}  // namespace vfe
