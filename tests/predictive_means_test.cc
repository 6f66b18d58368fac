// Posterior predictive means (FactorGraph::PredictiveMeans and a model's "predictions"): each
// against an expectation over the predictor a ~ N(rᵀm, rᵀΣr) computed here by a trapezoid sum
// that shares nothing with the nodes, for a posterior set by hand; and the errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/io/model_json.h"
#include "vfe/io/summary.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;
using testing::ErrorMessage;
using testing::LoadError;

/// E[f(mean + sd z)], z ~ N(0, 1), by the trapezoid rule with step 0.01 on [−12, 12]: for
/// the entire or meromorphic f below (poles of σ at a = ±iπ) its error is far below 1e-13 at
/// sd ≤ 3, and the cut tails weigh φ(12) ≈ 2e-32 times f's growth there.
double Expect(const std::function<double(double)>& f, double mean, double sd) {
  constexpr double kStep = 0.01;
  double sum = 0.0;
  for (int i = -1200; i <= 1200; ++i) {
    const double z = i * kStep;
    sum += kStep * std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI) * f(mean + sd * z);
  }
  return sum;
}
double Sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }
double Phi(double a) { return 0.5 * std::erfc(-a / std::sqrt(2.0)); }

/// w ~ N(0, I) in dimension 3, its posterior then set to N(m, Σ) by hand.
struct Weights {
  FactorGraph graph;
  Variable w;
  Vector m = (Vector(3) << 0.4, -1.2, 0.7).finished();
  Matrix sigma = (Matrix(3, 3) << 0.9, 0.2, -0.1, 0.2, 0.5, 0.05, -0.1, 0.05, 0.3).finished();
  Matrix rows = (Matrix(4, 3) << 1, 0.5, -0.3, 1, -2, 1.5, 1, 0, 0, 1, 1.5, 2.5).finished();
  Weights() {
    w = graph.AddVariable("w", Family::kMvGaussian, 3);
    graph.AddMvGaussian(w, Vector(Vector::Zero(3)), Matrix(Matrix::Identity(3, 3)));
    graph.Finalize();
    graph.SetPosterior(w, MvGaussian(m, sigma.inverse()));
  }
  double Mean(int k) const { return rows.row(k).dot(m); }
  double Sd(int k) const { return std::sqrt(rows.row(k).dot(sigma * rows.row(k).transpose())); }
};

TEST(PredictiveMeans, LogisticIsTheExpectedSigmoidOfThePredictor) {
  Weights g;
  const std::vector<double> p = g.graph.PredictiveMeans("Logistic", g.w, g.rows);
  ASSERT_EQ(p.size(), 4u);
  for (int k = 0; k < 4; ++k) {
    // Both sides are exact to rounding (the node's step adapts to the sd, up to 2.3 here).
    EXPECT_NEAR(p[k], Expect(Sigmoid, g.Mean(k), g.Sd(k)), 1e-13) << k;
    // Nearer ½ than the plug-in σ(rᵀm).
    EXPECT_LT(std::abs(p[k] - 0.5), std::abs(Sigmoid(g.Mean(k)) - 0.5) + 1e-15) << k;
  }
  // The row (1, 0, 0) reads w₀ alone: a ~ N(0.4, 0.9).
  EXPECT_NEAR(p[2], Expect(Sigmoid, 0.4, std::sqrt(0.9)), 1e-13);
}

TEST(PredictiveMeans, LogisticStaysExactForWidePredictors) {
  // A fixed 64-point Gauss–Hermite rule errs by 1e-7 at sd 3 and 4e-6 at sd 4; the node's
  // trapezoid step shrinks with the sd. The oracle's step 0.01 keeps its own error below
  // exp(−2π(π/s)/0.01) < 1e-100 up to sd 8; its range ±12 cuts a weight of 4e-33.
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {4});
  graph.AddGaussian(x, 0.0, 1.0);
  graph.Finalize();
  const double sds[] = {0.0001, 3.0, 4.0, 8.0};
  for (int k = 0; k < 4; ++k)
    graph.SetPosterior(x[k], Gaussian(0.7, 1.0 / (sds[k] * sds[k])));
  const std::vector<double> p = graph.PredictiveMeans("Logistic", x, Matrix());
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(p[k], Expect(Sigmoid, 0.7, sds[k]), 1e-14) << sds[k];
}

TEST(PredictiveMeans, ProbitIsTheClosedFormAndAgreesWithTheIntegral) {
  Weights g;
  const std::vector<double> p = g.graph.PredictiveMeans("Probit", g.w, g.rows);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(p[k], Expect(Phi, g.Mean(k), g.Sd(k)), 1e-12) << k;
}

TEST(PredictiveMeans, PoissonIsTheLogNormalMeanWithOffsets) {
  Weights g;
  const Vector offsets = (Vector(4) << 0.0, 0.7, -1.0, 2.0).finished();
  const std::vector<double> mean = g.graph.PredictiveMeans("Poisson", g.w, g.rows, offsets);
  for (int k = 0; k < 4; ++k) {
    const double integral =
        Expect([](double a) { return std::exp(a); }, g.Mean(k) + offsets(k), g.Sd(k));
    EXPECT_RELATIVE_NEAR(mean[k], integral, 1e-12) << k;
  }
  // One offset applies to every row.
  const std::vector<double> shifted =
      g.graph.PredictiveMeans("Poisson", g.w, g.rows, Vector::Constant(1, 0.5));
  const std::vector<double> plain = g.graph.PredictiveMeans("Poisson", g.w, g.rows);
  for (int k = 0; k < 4; ++k) EXPECT_RELATIVE_NEAR(shifted[k], plain[k] * std::exp(0.5), 1e-14);
}

TEST(PredictiveMeans, EachElementOfAGaussianWithoutRows) {
  FactorGraph graph;
  const Variable x = graph.AddVariableArray("x", Family::kGaussian, {3});
  graph.AddGaussian(x, 0.0, 1.0);
  graph.Finalize();
  graph.SetPosterior(x[0], Gaussian(-1.0, 4.0));
  graph.SetPosterior(x[1], Gaussian(0.5, 1.0));
  graph.SetPosterior(x[2], Gaussian(2.0, 0.25));
  const std::vector<double> p = graph.PredictiveMeans("Logistic", x, Matrix());
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NEAR(p[0], Expect(Sigmoid, -1.0, 0.5), 1e-13);
  EXPECT_NEAR(p[1], Expect(Sigmoid, 0.5, 1.0), 1e-13);
  EXPECT_NEAR(p[2], Expect(Sigmoid, 2.0, 2.0), 1e-13);
  // A scalar weight with one column of rows: a = r·x[1].
  const Matrix column = (Matrix(2, 1) << 2.0, -1.0).finished();
  const std::vector<double> scaled = graph.PredictiveMeans("Probit", x[1], column);
  EXPECT_NEAR(scaled[0], Phi(2.0 * 0.5 / std::sqrt(1.0 + 4.0)), 1e-14);
  EXPECT_NEAR(scaled[1], Phi(-0.5 / std::sqrt(2.0)), 1e-14);
}

TEST(PredictiveMeans, MisuseIsRefusedWithTheReason) {
  Weights g;
  EXPECT_THAT(ErrorMessage<GraphError>([&] { g.graph.PredictiveMeans("Logistc", g.w, g.rows); }),
              HasSubstr("unknown node type \"Logistc\"; expected one of 'Logistic', 'Probit'"));
  EXPECT_THAT(ErrorMessage<GraphError>([&] { g.graph.PredictiveMeans("Gaussian", g.w, g.rows); }),
              HasSubstr("node type 'Gaussian' has no posterior predictive"));
  EXPECT_THAT(
      ErrorMessage<GraphError>([&] { g.graph.PredictiveMeans("Logistic", g.w, Matrix()); }),
      HasSubstr("'in' ('w') is MvGaussian of dimension 3: give the rows"));
  EXPECT_THAT(ErrorMessage<GraphError>(
                  [&] { g.graph.PredictiveMeans("Logistic", g.w, Matrix::Ones(2, 2)); }),
              HasSubstr("rows of 2 numbers, but 'in' ('w') has dimension 3"));
  EXPECT_THAT(ErrorMessage<GraphError>([&] {
                g.graph.PredictiveMeans("Poisson", g.w, g.rows, Vector::Zero(3));
              }),
              HasSubstr("3 offsets; expected none, one, or one per prediction (4)"));
  Matrix bad = g.rows;
  bad(1, 1) = NAN;
  EXPECT_THAT(ErrorMessage<GraphError>([&] { g.graph.PredictiveMeans("Logistic", g.w, bad); }),
              HasSubstr("must be finite"));

  FactorGraph data;
  const Variable y = data.AddObserved("y", 1.0);
  const Variable mu = data.AddVariable("mu", Family::kGaussian);
  data.AddGaussian(y, mu, 1.0);
  EXPECT_THAT(ErrorMessage<GraphError>([&] { data.PredictiveMeans("Logistic", mu, Matrix()); }),
              HasSubstr("PredictiveMeans"));  // before Finalize
  data.Finalize();
  EXPECT_THAT(ErrorMessage<GraphError>([&] { data.PredictiveMeans("Logistic", y, Matrix()); }),
              HasSubstr("'in' ('y') is observed"));
}

// ---- "predictions" in a model document -----------------------------------------------------

std::string Document(const std::string& predictions) {
  return R"({"format": "vfe-model/1",
  "variables": [
    {"name": "w", "family": "MvGaussian", "dim": 2},
    {"name": "X", "shape": [4], "dim": 2, "observed": [[1, -1], [1, 0], [1, 1], [1, 2]]},
    {"name": "y", "observed": [0, 0, 1, 1]},
    {"name": "X_new", "shape": [2], "dim": 2, "observed": [[1, 0.5], [1, -3]]},
    {"name": "z", "family": "Gaussian", "shape": [2]},
    {"name": "e", "observed": [0.1, 0.2]}
  ],
  "factors": [
    {"node": "MvGaussian", "out": "w", "mean": [0, 0], "precision": [[1, 0], [0, 1]]},
    {"node": "Logistic", "for": {"n": [0, 4]}, "out": "y[n]", "in": "w", "matrix": "X[n]"},
    {"node": "Gaussian", "out": "z", "mean": 0, "precision": 1}
  ],
  "predictions": )" + predictions + "}";
}

TEST(Predictions, AModelReportsThePredictiveOfItsPosterior) {
  Model model = ParseModel(Document(R"([
    {"name": "p", "node": "Logistic", "in": "w", "matrix": "X_new"},
    {"name": "one", "node": "Probit", "in": "w", "matrix": [1, 0.5]},
    {"name": "counts", "node": "Poisson", "in": "z", "offset": "e"}])"));
  const Result result = Infer(model);
  ASSERT_TRUE(result.converged()) << result.message;
  ASSERT_EQ(model.predictions.size(), 3u);
  const MvGaussian q = model.graph.Posterior<MvGaussian>(model.graph.Find("w"));
  const std::vector<double> p = PredictiveMeans(model, model.predictions[0]);
  ASSERT_EQ(p.size(), 2u);
  const Vector r = (Vector(2) << 1, -3).finished();
  EXPECT_NEAR(p[1], Expect(Sigmoid, r.dot(q.mean()), std::sqrt(r.dot(q.covariance() * r))),
              1e-13);
  const Vector r0 = (Vector(2) << 1, 0.5).finished();
  const std::vector<double> one = PredictiveMeans(model, model.predictions[1]);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_NEAR(one[0], Phi(r0.dot(q.mean()) / std::sqrt(1 + r0.dot(q.covariance() * r0))), 1e-14);
  // z ~ N(0, 1) (no data): E[exp(z + e)] = exp(1/2 + e).
  const std::vector<double> counts = PredictiveMeans(model, model.predictions[2]);
  EXPECT_RELATIVE_NEAR(counts[0], std::exp(0.6), 1e-12);
  EXPECT_RELATIVE_NEAR(counts[1], std::exp(0.7), 1e-12);

  const auto json = nlohmann::json::parse(ResultJson(model, result));
  EXPECT_EQ(json["predictions"]["p"]["node"], "Logistic");
  EXPECT_NEAR(json["predictions"]["p"]["mean"][1].get<double>(), p[1], 1e-15);
  EXPECT_NEAR(json["predictions"]["counts"]["mean"][0].get<double>(), counts[0], 1e-12);
  // The summary lists them.
  EXPECT_THAT(SummaryTable(model, result), HasSubstr("p[1]"));
  EXPECT_THAT(SummaryTable(model, result), HasSubstr("predictive Poisson"));
  // The normalised document keeps them: loaded again, the same predictions.
  Model again = ParseModel(NormalisedModelJson(model));
  Infer(again);
  EXPECT_EQ(PredictiveMeans(again, again.predictions[0]), p);
}

TEST(Predictions, BadEntriesAreRefusedAtTheirPointer) {
  EXPECT_THAT(LoadError(Document("{}")),
              HasSubstr("/predictions: expected an array of predictions, found an object"));
  EXPECT_THAT(LoadError(Document(R"([{"node": "Logistic", "in": "w", "matrix": "X_new"}])")),
              HasSubstr("/predictions/0: missing required key 'name'"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Gaussian", "in": "w", "matrix": "X_new"}])")),
              HasSubstr("/predictions/0/node:"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "v", "matrix": "X_new"}])")),
              HasSubstr("/predictions/0/in: unknown variable \"v\""));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "y", "matrix": "X_new"}])")),
              HasSubstr("/predictions/0/in: expected a hidden Gaussian or MvGaussian variable, "
                        "found 'y' (observed)"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "w"}])")),
              HasSubstr("/predictions/0: 'w' is MvGaussian: give \"matrix\""));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "w", "matrix": [[1, 2, 3]]}])")),
              HasSubstr("/predictions/0/matrix: expected rows of 2 numbers (the dimension of "
                        "'w'), found rows of 3"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "w", "matrix": "w"}])")),
              HasSubstr("/predictions/0/matrix: expected an observed variable of rows of new "
                        "data, found 'w' (MvGaussian)"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Poisson", "in": "z", "offset": [1, 2, 3]}])")),
              HasSubstr("/predictions/0/offset: expected 2 offsets (one per prediction), found 3"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "w", "matrix": "X_new", "colour": 1}])")),
              HasSubstr("/predictions/0/colour: unknown key 'colour'"));
  EXPECT_THAT(LoadError(Document(R"([{"name": "p", "node": "Logistic", "in": "w", "matrix": "X_new"},
                                      {"name": "p", "node": "Probit", "in": "w", "matrix": "X_new"}])")),
              HasSubstr("/predictions/1/name: prediction \"p\" is already defined"));
}

}  // namespace
}  // namespace vfe
