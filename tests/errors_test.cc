// Bad input through the C++ API: each gives an exception of the right type whose message
// names the variable or factor at fault and says what was expected and what was found.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;

/// Runs `action`, expecting an exception of type E whose message contains every one of
/// `parts`.
template <class E>
void ExpectError(const std::function<void()>& action, const std::vector<std::string>& parts) {
  try {
    action();
  } catch (const E& e) {
    for (const std::string& part : parts) EXPECT_THAT(e.what(), HasSubstr(part));
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return;
  }
  ADD_FAILURE() << "no exception";
}

/// mu ~ N(0, 1); tau ~ Gamma(1, 1); y (3 values) ~ N(mu, tau) with `finish` adding more.
void BuildAndFinalize(const std::function<void(FactorGraph&, Variable, Variable)>& finish,
                      std::vector<double> y = {1, 2, 3}) {
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, 0.0, 1.0, "mu_prior");
  graph.AddGamma(tau, 1.0, 1.0, "tau_prior");
  graph.AddGaussian(graph.AddObserved("y", y), mu, tau, "likelihood");
  finish(graph, mu, tau);
  graph.Finalize();
}

TEST(Errors, TheBaseModelIsValid) {
  EXPECT_NO_THROW(BuildAndFinalize([](FactorGraph&, Variable, Variable) {}));
}

TEST(Errors, NegativePrecisionNamesTheFactorAndValue) {
  ExpectError<ModelError>(
      [] {
        BuildAndFinalize([](FactorGraph& g, Variable mu, Variable) {
          g.AddGaussian(g.AddObserved("z", 1.0), mu, -2.0, "bad_noise");
        });
      },
      {"bad_noise", "precision", "-2"});
}

TEST(Errors, NonSymmetricPrecisionMatrixNamesTheFactor) {
  ExpectError<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        Matrix precision(2, 2);
        precision << 1.0, 0.5, 0.0, 1.0;
        g.AddMvGaussian(m, Vector(Vector::Zero(2)), precision, "m_prior");
        g.Finalize();
      },
      {"m_prior", "symmetric"});
}

TEST(Errors, IndefinitePrecisionMatrixNamesTheFactor) {
  ExpectError<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        Matrix precision(2, 2);
        precision << 1.0, 2.0, 2.0, 1.0;
        g.AddMvGaussian(m, Vector(Vector::Zero(2)), precision, "m_prior");
        g.Finalize();
      },
      {"m_prior", "positive"});
}

TEST(Errors, DimensionMismatchNamesVariableAndDimensions) {
  ExpectError<GraphError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        const Variable mean = g.AddVariable("mean3", Family::kMvGaussian, 3);
        g.AddMvGaussian(mean, Vector(Vector::Zero(3)), Matrix(Matrix::Identity(3, 3)));
        g.AddMvGaussian(m, mean, Matrix(Matrix::Identity(2, 2)), "m_given_mean");
        g.Finalize();
      },
      {"m_given_mean", "mean3", "2", "3"});
  ExpectError<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariable("x", Family::kMvGaussian, 3);
        g.AddMvGaussian(x, Vector(Vector::Zero(3)), Matrix(Matrix::Identity(3, 3)));
        g.AddLinearGaussian(g.AddObservedRows("obs", Matrix::Ones(4, 2)), x,
                            Matrix::Ones(2, 2), 1.0, "projection");
        g.Finalize();
      },
      {"projection", "matrix"});
  ExpectError<Error>(
      [] {
        FactorGraph g;
        const Variable w = g.AddVariable("w", Family::kMvGaussian, 2);
        g.AddMvGaussian(w, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
        g.AddLinearRegression(g.AddObserved("targets", std::vector<double>{1, 2, 3}), w,
                              Matrix::Ones(5, 2), 1.0, "regression");
        g.Finalize();
      },
      {"regression", "5", "3"});
}

TEST(Errors, VariableWithNoFactorIsNamed) {
  ExpectError<GraphError>(
      [] {
        BuildAndFinalize([](FactorGraph& g, Variable, Variable) {
          g.AddVariable("orphan", Family::kGaussian);
        });
      },
      {"orphan", "not connected"});
}

TEST(Errors, NanObservationNamesTheElement) {
  ExpectError<ModelError>(
      [] { BuildAndFinalize([](FactorGraph&, Variable, Variable) {}, {1.0, NAN, 3.0}); },
      {"y[1]", "nan"});
  ExpectError<ModelError>(
      [] { BuildAndFinalize([](FactorGraph&, Variable, Variable) {}, {1.0, 2.0, INFINITY}); },
      {"y[2]", "inf"});
  ExpectError<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
        Matrix rows = Matrix::Ones(3, 2);
        rows(2, 1) = NAN;
        g.AddMvGaussian(g.AddObservedRows("points", rows), m, Matrix(Matrix::Identity(2, 2)));
        g.Finalize();
      },
      {"points[2]", "nan"});
}

TEST(Errors, WrongFamilyAtASlotNamesSlotAndVariable) {
  ExpectError<GraphError>(
      [] {
        BuildAndFinalize([](FactorGraph& g, Variable, Variable tau) {
          g.AddGaussian(g.AddObserved("z", 1.0), tau, 1.0, "odd");
        });
      },
      {"odd", "mean", "tau", "Gamma"});
}

TEST(Errors, NamesMustBeUniqueAndNonEmpty) {
  ExpectError<GraphError>(
      [] {
        FactorGraph g;
        g.AddVariable("a", Family::kGaussian);
        g.AddVariable("a", Family::kGamma);
      },
      {"'a'", "declared twice"});
  ExpectError<GraphError>([] { FactorGraph().AddVariable("", Family::kGaussian); }, {"name"});
  ExpectError<GraphError>([] { FactorGraph().Find("nobody"); }, {"nobody"});
}

TEST(Errors, InvalidNodeConstantsAreRefused) {
  ExpectError<ModelError>(
      [] {
        FactorGraph g;
        g.AddGamma(g.AddVariable("s", Family::kGamma), 0.0, 1.0, "s_prior");
        g.Finalize();
      },
      {"s_prior", "shape", "0"});
  ExpectError<ModelError>(
      [] {
        FactorGraph g;
        g.AddWishart(g.AddVariable("W", Family::kWishart, 3), 1.5, Matrix(Matrix::Identity(3, 3)),
                     "W_prior");
        g.Finalize();
      },
      {"W_prior", "1.5"});
}

TEST(Errors, GraphLifecycleMisuseIsRefused) {
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  g.AddGaussian(mu, 0.0, 1.0);
  ExpectError<GraphError>([&] { SequentialScheduler(SchedulerOptions()).Run(g); }, {"final"});
  g.Finalize();
  ExpectError<GraphError>([&] { g.AddGaussian(mu, 1.0, 1.0, "late"); }, {"late", "final"});
  ExpectError<GraphError>([&] { g.Posterior<Gamma>(mu); }, {"mu"});
  ExpectError<GraphError>([&] { mu[1]; }, {"1"});
  // The graph still works after refusing those.
  EXPECT_TRUE(SequentialScheduler(SchedulerOptions()).Run(g).converged());
}

TEST(Errors, PlatesOfDifferentLengthsAreRefused) {
  ExpectError<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariableArray("x", Family::kGaussian, {3});
        g.AddGaussian(x, 0.0, 1.0);
        g.AddGaussian(g.AddObserved("y", std::vector<double>{1, 2, 3, 4, 5}), x, 1.0, "pairs");
      },
      {"pairs", "3", "5"});
}

TEST(Errors, InvalidSchedulerOptionsNameTheField) {
  SchedulerOptions options;
  options.max_iterations = 0;
  ExpectError<OptionsError>([&] { SequentialScheduler{options}; }, {"max_iterations", "0"});
  options = SchedulerOptions();
  options.tolerance = -1;
  ExpectError<OptionsError>([&] { SequentialScheduler{options}; }, {"tolerance", "-1"});
  options.tolerance = NAN;
  ExpectError<OptionsError>([&] { SequentialScheduler{options}; }, {"tolerance", "nan"});

  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable y = g.AddObserved("y", 1.0);
  g.AddGaussian(mu, 0.0, 1.0);
  g.AddGaussian(y, mu, 1.0);
  g.Finalize();
  options = SchedulerOptions();
  options.order = {y};
  ExpectError<OptionsError>([&] { SequentialScheduler(options).Run(g); }, {"'y'", "observed"});
}

}  // namespace
}  // namespace vfe
