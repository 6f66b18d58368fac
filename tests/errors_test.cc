// Bad input through the C++ API: each gives an exception of the right type (ModelError,
// GraphError or OptionsError, all vfe::Error) whose message names the variable or factor at
// fault and says what was expected and what was found. None of them may crash, and a graph
// that refused an addition stays usable.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tests/testing/expect.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using ::testing::HasSubstr;
using testing::ExpectErrorMentioning;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Vector Zeros(int dim) { return Vector::Zero(dim); }
Matrix Identity(int dim) { return Matrix::Identity(dim, dim); }
Matrix Square(double a, double b, double c, double d) {
  Matrix m(2, 2);
  m << a, b, c, d;
  return m;
}

/// The valid base model: mu ~ N(0, 1), tau ~ Gamma(1, 1), y_n ~ N(mu, 1/tau).
FactorGraph BaseModel(const std::vector<double>& y = {1.0, 2.0, 3.0, 2.5, 1.5}) {
  FactorGraph graph;
  const Variable mu = graph.AddVariable("mu", Family::kGaussian);
  const Variable tau = graph.AddVariable("tau", Family::kGamma);
  graph.AddGaussian(mu, 0.0, 1.0, "mu_prior");
  graph.AddGamma(tau, 1.0, 1.0, "tau_prior");
  graph.AddGaussian(graph.AddObserved("y", y), mu, tau, "likelihood");
  return graph;
}

/// m ~ N(0, precision) over 2-vectors, finalised.
void MvPrior(const Matrix& precision) {
  FactorGraph graph;
  const Variable m = graph.AddVariable("m", Family::kMvGaussian, 2);
  graph.AddMvGaussian(m, Zeros(2), precision, "m_prior");
  graph.Finalize();
}

/// The base model with observations `y`, finalised.
void FinalizeWithData(const std::vector<double>& y) { BaseModel(y).Finalize(); }

/// Runs a sequential scheduler with `options` on a finalised base model.
void RunWith(const SchedulerOptions& options) {
  FactorGraph graph = BaseModel();
  graph.Finalize();
  SequentialScheduler(options).Run(graph);
}

TEST(Errors, TheBaseModelIsValid) {
  FactorGraph graph = BaseModel();
  EXPECT_NO_THROW(graph.Finalize());
  EXPECT_TRUE(SequentialScheduler(SchedulerOptions()).Run(graph).converged());
}

// ---- Parameters -------------------------------------------------------------------------------

TEST(Errors, NegativeScalarPrecisionNamesFactorSlotAndValue) {
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", 1.0), g.Find("mu"), -2.0, "z_noise");
        g.Finalize();
      },
      {"factor 'z_noise' (Gaussian)", "precision", "positive", "got -2"});
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", 1.0), g.Find("mu"), 0.0, "z_noise");
        g.Finalize();
      },
      {"factor 'z_noise' (Gaussian)", "precision", "positive", "got 0"});
  // A Gamma rate is a positive parameter too.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGamma(g.AddVariable("s", Family::kGamma), 2.0, -0.5, "s_prior");
        g.AddGaussian(g.AddObserved("z", 1.0), g.Find("mu"), g.Find("s"));
        g.Finalize();
      },
      {"factor 's_prior' (Gamma)", "rate", "positive", "got -0.5"});
}

TEST(Errors, NegativePrecisionMatrixNamesFactorAndSlot) {
  ExpectErrorMentioning<ModelError>([] { MvPrior(-Identity(2)); },
                                    {"factor 'm_prior' (MvGaussian)", "precision",
                                     "must be positive definite"});
  ExpectErrorMentioning<ModelError>([] { MvPrior(Square(1.0, 0.0, 0.0, -3.0)); },
                                    {"factor 'm_prior' (MvGaussian)", "precision",
                                     "must be positive definite"});
}

TEST(Errors, NonSymmetricPrecisionMatrixNamesFactorAndAsymmetry) {
  ExpectErrorMentioning<ModelError>([] { MvPrior(Square(1.0, 0.5, 0.0, 1.0)); },
                                    {"factor 'm_prior' (MvGaussian)", "precision",
                                     "must be symmetric", "got asymmetry 0.5"});
}

TEST(Errors, IndefinitePrecisionMatrixNamesFactorAndSlot) {
  // Symmetric with a positive diagonal, but eigenvalues 3 and −1.
  ExpectErrorMentioning<ModelError>([] { MvPrior(Square(1.0, 2.0, 2.0, 1.0)); },
                                    {"factor 'm_prior' (MvGaussian)", "precision",
                                     "must be positive definite"});
}

TEST(Errors, PrecisionMatrixOfTheWrongSizeNamesBothDimensions) {
  ExpectErrorMentioning<GraphError>([] { MvPrior(Identity(3)); },
                                    {"factor 'm_prior' (MvGaussian)", "'precision'",
                                     "dimension 2", "dimension 3"});
  // A matrix where a scalar Gaussian expects a precision.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", 1.0), g.Find("mu"), Identity(2), "z_noise");
        g.Finalize();
      },
      {"factor 'z_noise' (Gaussian)", "precision", "expected a scalar", "got a 2x2 matrix"});
}

TEST(Errors, GammaShapeMustBePositive) {
  for (double shape : {0.0, -1.0, kNan}) {
    ExpectErrorMentioning<ModelError>(
        [shape] {
          FactorGraph g;
          g.AddGamma(g.AddVariable("s", Family::kGamma), shape, 1.0, "s_prior");
          g.Finalize();
        },
        {"factor 's_prior' (Gamma)", "shape", "positive", "got " + FormatNumber(shape)});
  }
}

TEST(Errors, WishartDegreesOfFreedomMustExceedDimensionMinusOne) {
  for (double dof : {1.5, 2.0}) {
    ExpectErrorMentioning<ModelError>(
        [dof] {
          FactorGraph g;
          g.AddWishart(g.AddVariable("W", Family::kWishart, 3), dof, Identity(3), "W_prior");
          g.Finalize();
        },
        {"factor 'W_prior' (Wishart)", "degrees of freedom", "> D - 1 = 2",
         "got " + FormatNumber(dof)});
  }
}

TEST(Errors, WishartScaleMustBePositiveDefinite) {
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        g.AddWishart(g.AddVariable("W", Family::kWishart, 2), 5.0, Square(1.0, 2.0, 2.0, 1.0),
                     "W_prior");
        g.Finalize();
      },
      {"factor 'W_prior' (Wishart)", "scale", "must be positive definite"});
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        g.AddWishart(g.AddVariable("W", Family::kWishart, 2), 5.0, Square(1.0, 0.3, 0.0, 1.0),
                     "W_prior");
        g.Finalize();
      },
      {"factor 'W_prior' (Wishart)", "scale", "must be symmetric", "got asymmetry 0.3"});
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        g.AddWishart(g.AddVariable("W", Family::kWishart, 2), 5.0, Identity(3), "W_prior");
        g.Finalize();
      },
      {"factor 'W_prior' (Wishart)", "'out'", "variable 'W'", "dimension 3", "dimension 2"});
}

// ---- Dimensions -------------------------------------------------------------------------------

TEST(Errors, MeanOfAnotherDimensionNamesBothVariablesAndDimensions) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        const Variable mean = g.AddVariable("mean3", Family::kMvGaussian, 3);
        g.AddMvGaussian(mean, Zeros(3), Identity(3), "mean3_prior");
        g.AddMvGaussian(m, mean, Identity(2), "m_given_mean");
        g.Finalize();
      },
      {"factor 'm_given_mean' (MvGaussian)", "'mean'", "expects dimension 2",
       "variable 'mean3' of dimension 3"});
  // The same with a constant mean.
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        g.AddMvGaussian(g.AddVariable("m", Family::kMvGaussian, 2), Zeros(3), Identity(2),
                        "m_prior");
        g.Finalize();
      },
      {"factor 'm_prior' (MvGaussian)", "'mean'", "expects dimension 2", "constant mean",
       "dimension 3"});
  // An observed vector of another dimension than the variable it is compared with.
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Zeros(2), Identity(2), "m_prior");
        g.AddMvGaussian(g.AddObserved("point", Matrix(Matrix::Ones(3, 1))), m, Identity(2),
                        "point_given_m");
        g.Finalize();
      },
      {"factor 'point_given_m' (MvGaussian)", "'mean'", "expects dimension 3",
       "variable 'm' of dimension 2"});
}

TEST(Errors, LinearGaussianMatrixShapeNamesMatrixAndBothVariables) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariable("x", Family::kMvGaussian, 3);
        g.AddMvGaussian(x, Zeros(3), Identity(3), "x_prior");
        g.AddLinearGaussian(g.AddObservedRows("obs", Matrix::Ones(4, 2)), x, Matrix::Ones(2, 2),
                            1.0, "projection");
        g.Finalize();
      },
      {"factor 'projection' (LinearGaussian)", "the matrix is 2x2", "observed variable 'obs'",
       "of dimension 2", "variable 'x' of dimension 3"});
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariable("x", Family::kMvGaussian, 3);
        g.AddMvGaussian(x, Zeros(3), Identity(3), "x_prior");
        g.AddLinearGaussian(g.AddObservedRows("obs", Matrix::Ones(4, 2)), x, Matrix::Ones(3, 3),
                            1.0, "projection");
        g.Finalize();
      },
      {"factor 'projection' (LinearGaussian)", "the matrix is 3x3", "observed variable 'obs'",
       "of dimension 2"});
}

TEST(Errors, RegressionDesignRowsMustMatchTheObservations) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable w = g.AddVariable("w", Family::kMvGaussian, 2);
        g.AddMvGaussian(w, Zeros(2), Identity(2), "w_prior");
        g.AddLinearRegression(g.AddObserved("targets", std::vector<double>{1, 2, 3}), w,
                              Matrix::Ones(5, 2), 1.0, "regression");
        g.Finalize();
      },
      {"factor 'regression' (LinearGaussian)", "5 rows", "3 factors"});
  // Design columns against the weights' dimension.
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable w = g.AddVariable("w", Family::kMvGaussian, 2);
        g.AddMvGaussian(w, Zeros(2), Identity(2), "w_prior");
        g.AddLinearRegression(g.AddObserved("targets", std::vector<double>{1, 2, 3}), w,
                              Matrix::Ones(3, 4), 1.0, "regression");
        g.Finalize();
      },
      {"factor 'regression' (LinearGaussian)", "1x4", "variable 'w' of dimension 2"});
}

TEST(Errors, PlatesOfDifferentLengthsNameTheArgumentAndBothLengths) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariableArray("x", Family::kGaussian, {3});
        g.AddGaussian(x, 0.0, 1.0, "x_prior");
        g.AddGaussian(g.AddObserved("y", std::vector<double>{1, 2, 3, 4, 5}), x, 1.0, "pairs");
      },
      {"factor 'pairs' (Gaussian)", "'mean'", "'x'", "has 3 elements", "has 5 factors"});
}

// ---- Structure --------------------------------------------------------------------------------

TEST(Errors, HiddenVariableWithoutFactorIsNamed) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddVariable("orphan", Family::kGaussian);
        g.Finalize();
      },
      {"variable 'orphan'", "not connected to any factor"});
  // One element of an array left out.
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g = BaseModel();
        const Variable x = g.AddVariableArray("x", Family::kGaussian, {4});
        g.AddGaussian(x.Slice(0, 3), 0.0, 1.0, "x_prior");
        g.Finalize();
      },
      {"variable 'x'", "x[3]", "not connected to any factor"});
}

TEST(Errors, WrongFamilyAtASlotNamesSlotExpectedAndFound) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", 1.0), g.Find("tau"), 1.0, "odd");
        g.Finalize();
      },
      {"factor 'odd' (Gaussian)", "'mean'", "expects a Gaussian variable",
       "got variable 'tau' (Gamma)"});
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", 1.0), 0.0, g.Find("mu"), "odd");
        g.Finalize();
      },
      {"factor 'odd' (Gaussian)", "'precision'", "expects a Gamma variable",
       "got variable 'mu' (Gaussian)"});
}

TEST(Errors, VariableConnectedTwiceToOneFactorIsNamed) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariable("x", Family::kGaussian);
        g.AddGaussian(x, x, 1.0, "loop");
        g.Finalize();
      },
      {"factor 'loop' (Gaussian)", "variable 'x'", "both 'out' and 'mean'"});
  // Element 1 of an array as the shared mean of a plate over the whole array.
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        const Variable x = g.AddVariableArray("x", Family::kGaussian, {3});
        g.AddGaussian(x, x[1], 1.0, "chain");
        g.Finalize();
      },
      {"factor 'chain' (Gaussian)", "variable 'x'", "both 'out' and 'mean'"});
}

TEST(Errors, NamesMustBeUniqueAndNonEmpty) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        g.AddVariable("a", Family::kGaussian);
        g.AddVariable("a", Family::kGamma);
      },
      {"variable 'a'", "declared twice"});
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g;
        g.AddVariable("a", Family::kGaussian);
        g.AddObserved("a", 1.0);
      },
      {"variable 'a'", "declared twice"});
  ExpectErrorMentioning<GraphError>([] { FactorGraph().AddVariable("", Family::kGaussian); },
                                    {"non-empty name"});
  ExpectErrorMentioning<GraphError>([] { FactorGraph().AddObserved("", 1.0); },
                                    {"non-empty name"});
}

TEST(Errors, FindOfAnUnknownNameNamesIt) {
  ExpectErrorMentioning<GraphError>([] { BaseModel().Find("nobody"); },
                                    {"no variable named 'nobody'"});
}

TEST(Errors, VariableDeclarationsAreChecked) {
  ExpectErrorMentioning<GraphError>(
      [] { FactorGraph().AddVariable("g", Family::kGaussian, 2); },
      {"variable 'g'", "scalar", "got dimension 2"});
  ExpectErrorMentioning<GraphError>(
      [] { FactorGraph().AddVariable("m", Family::kMvGaussian, 0); },
      {"variable 'm'", "dimension must be >= 1", "got 0"});
  ExpectErrorMentioning<GraphError>(
      [] { FactorGraph().AddVariableArray("x", Family::kGaussian, {3, 0}); },
      {"variable 'x'", "no elements"});
  ExpectErrorMentioning<GraphError>(
      [] { FactorGraph().AddObserved("y", std::vector<double>{}); },
      {"observed variable 'y'", "no values"});
}

// ---- Observed values --------------------------------------------------------------------------

TEST(Errors, NanObservedScalarIsNamed) {
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", kNan), g.Find("mu"), 1.0, "z_given_mu");
        g.Finalize();
      },
      {"observed variable 'z'", "must be finite", "got nan"});
}

TEST(Errors, NanObservedArrayElementIsNamedByIndex) {
  ExpectErrorMentioning<ModelError>([] { FinalizeWithData({1.0, 2.0, 3.0, kNan, 5.0}); },
                                    {"observed variable 'y'", "y[3]", "must be finite",
                                     "got nan"});
}

TEST(Errors, NanInAnObservedMatrixIsNamed) {
  // One observed vector.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Zeros(2), Identity(2), "m_prior");
        Vector point(2);
        point << 1.0, kNan;
        g.AddMvGaussian(g.AddObserved("point", Matrix(point)), m, Identity(2));
        g.Finalize();
      },
      {"observed variable 'point'", "must be finite", "nan"});
  // Row 2 of observed rows.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Zeros(2), Identity(2), "m_prior");
        Matrix rows = Matrix::Ones(4, 2);
        rows(2, 1) = kNan;
        g.AddMvGaussian(g.AddObservedRows("points", rows), m, Identity(2));
        g.Finalize();
      },
      {"observed variable 'points'", "points[2]", "must be finite", "nan"});
  // An observed precision matrix.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Zeros(2), g.AddObserved("W", Square(1.0, kNan, kNan, 1.0)),
                        "m_prior");
        g.Finalize();
      },
      {"observed variable 'W'", "must be finite", "nan"});
  // A constant matrix.
  ExpectErrorMentioning<ModelError>([] { MvPrior(Square(1.0, 0.0, 0.0, kNan)); },
                                    {"factor 'm_prior' (MvGaussian)", "precision",
                                     "must be finite", "nan"});
}

TEST(Errors, InfiniteObservedValuesAreNamed) {
  ExpectErrorMentioning<ModelError>([] { FinalizeWithData({1.0, kInf, 3.0}); },
                                    {"observed variable 'y'", "y[1]", "must be finite",
                                     "got inf"});
  ExpectErrorMentioning<ModelError>([] { FinalizeWithData({1.0, 2.0, -kInf}); },
                                    {"observed variable 'y'", "y[2]", "must be finite",
                                     "got -inf"});
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        g.AddGaussian(g.AddVariable("mu", Family::kGaussian), kInf, 1.0, "mu_prior");
        g.Finalize();
      },
      {"factor 'mu_prior' (Gaussian)", "constant mean", "must be finite", "got inf"});
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Zeros(2), Identity(2), "m_prior");
        Matrix rows = Matrix::Ones(3, 2);
        rows(1, 0) = -kInf;
        g.AddMvGaussian(g.AddObservedRows("points", rows), m, Identity(2));
        g.Finalize();
      },
      {"observed variable 'points'", "points[1]", "must be finite", "inf"});
}

TEST(Errors, ObservedValueOutsideTheSupportIsNamed) {
  // An observed precision must be > 0.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g = BaseModel();
        g.AddGaussian(g.AddObserved("z", std::vector<double>{1.0, 2.0}), g.Find("mu"),
                      g.AddObserved("s", std::vector<double>{1.0, -4.0}), "z_given_mu");
        g.Finalize();
      },
      {"observed variable 's'", "s[1]", "positive", "got -4"});
  // A matrix where a vector is expected.
  ExpectErrorMentioning<ModelError>(
      [] {
        FactorGraph g;
        const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
        g.AddMvGaussian(m, Zeros(2), Identity(2), "m_prior");
        g.AddMvGaussian(g.AddObserved("point", Matrix(Matrix::Ones(2, 3))), m, Identity(2));
        g.Finalize();
      },
      {"observed variable 'point'", "expected a vector of dimension 2", "got a 2x3 matrix"});
}

// ---- Life cycle -------------------------------------------------------------------------------

TEST(Errors, AddingAfterFinalizeNamesTheAddition) {
  FactorGraph g = BaseModel();
  g.Finalize();
  const Variable mu = g.Find("mu");
  ExpectErrorMentioning<GraphError>([&] { g.AddGaussian(mu, 1.0, 1.0, "late"); },
                                    {"factor 'late' (Gaussian)", "already finalised"});
  ExpectErrorMentioning<GraphError>([&] { g.AddVariable("z", Family::kGaussian); },
                                    {"variable 'z'", "already finalised"});
  ExpectErrorMentioning<GraphError>([&] { g.AddObserved("w", 1.0); },
                                    {"variable 'w'", "already finalised"});
  ExpectErrorMentioning<GraphError>([&] { g.Finalize(); }, {"Finalize", "already finalised"});
  // The graph still runs, and reports the refused names as unknown.
  EXPECT_TRUE(SequentialScheduler(SchedulerOptions()).Run(g).converged());
  ExpectErrorMentioning<GraphError>([&] { g.Find("z"); }, {"no variable named 'z'"});
  EXPECT_EQ(g.num_plates(), 3u);
}

TEST(Errors, EmptyGraphCannotBeFinalised) {
  ExpectErrorMentioning<GraphError>([] { FactorGraph().Finalize(); }, {"no factors"});
}

TEST(Errors, RunningOnAnUnfinalisedGraphIsRefused) {
  ExpectErrorMentioning<GraphError>(
      [] {
        FactorGraph g = BaseModel();
        SequentialScheduler(SchedulerOptions()).Run(g);
      },
      {"Run", "finalise the graph first"});
}

TEST(Errors, PosteriorOfTheWrongFamilyNamesBothFamilies) {
  FactorGraph g = BaseModel();
  const Variable mu = g.Find("mu");
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<Gaussian>(mu); },
                                    {"posteriors exist once the graph is finalised"});
  g.Finalize();
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<Gamma>(mu); },
                                    {"variable 'mu'", "is Gaussian", "not Gamma"});
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<MvGaussian>(g.Find("tau")); },
                                    {"variable 'tau'", "is Gamma", "not MvGaussian"});
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<Gaussian>(g.Find("y")[0]); },
                                    {"observed variable 'y'", "no posterior"});
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<Gaussian>(Variable()); },
                                    {"not a variable of this graph"});
  ExpectErrorMentioning<GraphError>([&] { g.SetPosterior(mu, Gamma(1.0, 1.0)); },
                                    {"variable 'mu'", "is Gaussian", "got Gamma"});
}

TEST(Errors, PosteriorOfAWholeArrayAsksForOneElement) {
  FactorGraph g;
  const Variable x = g.AddVariableArray("x", Family::kGaussian, {3});
  g.AddGaussian(x, 0.0, 1.0, "x_prior");
  g.Finalize();
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<Gaussian>(x); },
                                    {"variable 'x'", "has 3 elements", "x[0]"});
  EXPECT_NO_THROW(g.Posterior<Gaussian>(x[2]));
}

TEST(Errors, ElementIndexOutOfRangeGivesIndexAndSize) {
  FactorGraph g = BaseModel();
  const Variable mu = g.Find("mu");
  const Variable y = g.Find("y");
  ExpectErrorMentioning<GraphError>([&] { mu[1]; },
                                    {"element 1", "out of range", "has 1 elements"});
  ExpectErrorMentioning<GraphError>([&] { y[5]; },
                                    {"element 5", "out of range", "has 5 elements"});
  ExpectErrorMentioning<GraphError>([&] { y.Slice(3, 7); },
                                    {"[3, 7)", "out of range", "has 5 elements"});
  ExpectErrorMentioning<GraphError>([&] { y.Slice(4, 2); }, {"[4, 2)", "out of range"});
  EXPECT_NO_THROW(y[4]);
}

TEST(Errors, VariableOfAnotherGraphIsRefused) {
  // `other` has an array of 10 where `g` has scalars: element 7 of it is no element of `g`.
  FactorGraph other;
  const Variable big = other.AddVariableArray("big", Family::kGaussian, {10});
  other.AddGaussian(big, 0.0, 1.0);
  FactorGraph g;
  const Variable x = g.AddVariable("x", Family::kGaussian);
  ExpectErrorMentioning<GraphError>([&] { g.AddGaussian(big[7], 0.0, 1.0, "stray"); },
                                    {"factor 'stray' (Gaussian)", "'out'",
                                     "not a variable of this graph"});
  ExpectErrorMentioning<GraphError>([&] { g.AddGaussian(Variable(), 0.0, 1.0, "stray"); },
                                    {"factor 'stray' (Gaussian)", "'out'",
                                     "not a variable of this graph"});
  g.AddGaussian(x, 0.0, 1.0, "x_prior");
  g.Finalize();
  ExpectErrorMentioning<GraphError>([&] { g.Posterior<Gaussian>(big[7]); },
                                    {"not a variable of this graph", "variable 'x'",
                                     "1 element"});
  ExpectErrorMentioning<GraphError>([&] { g.SetPosterior(big.Slice(2, 6), Gaussian(0.0, 1.0)); },
                                    {"not a variable of this graph", "variable 'x'"});
  ExpectErrorMentioning<GraphError>([&] { g.ElementName(big[7]); },
                                    {"not a variable of this graph"});
  // The graph is unharmed.
  EXPECT_EQ(g.num_plates(), 1u);
  EXPECT_TRUE(SequentialScheduler(SchedulerOptions()).Run(g).converged());
  EXPECT_NEAR(g.Posterior<Gaussian>(x).mean(), 0.0, 1e-12);
}

// ---- Scheduler options ------------------------------------------------------------------------

TEST(Errors, InvalidSchedulerOptionsNameFieldConstraintAndValue) {
  SchedulerOptions options;
  options.max_iterations = 0;
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler{options}; },
                                      {"max_iterations", ">= 1", "got 0"});
  options.max_iterations = -3;
  ExpectErrorMentioning<OptionsError>([&] { options.Validate(); },
                                      {"max_iterations", ">= 1", "got -3"});
  options = SchedulerOptions();
  options.tolerance = -1e-3;
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler{options}; },
                                      {"tolerance", ">= 0", "got -0.001"});
  options.tolerance = kNan;
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler{options}; },
                                      {"tolerance", ">= 0", "got nan"});
  options.tolerance = kInf;
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler{options}; },
                                      {"tolerance", "finite", "got inf"});
  options = SchedulerOptions();
  options.order = {Variable()};
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler{options}; },
                                      {"order[0]", "not a variable"});
}

TEST(Errors, OrderNamingAnObservedVariableIsRefused) {
  FactorGraph g = BaseModel();
  g.Finalize();
  SchedulerOptions options;
  options.order = {g.Find("mu"), g.Find("y")};
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler(options).Run(g); },
                                      {"order[1]", "'y'", "observed", "hidden variable"});
}

TEST(Errors, OrderNamingAVariableOfAnotherGraphIsRefused) {
  FactorGraph g = BaseModel();
  g.Finalize();
  FactorGraph other;
  const Variable big = other.AddVariableArray("big", Family::kGaussian, {10});
  for (int k = 0; k < 20; ++k) other.AddVariable("v" + std::to_string(k), Family::kGaussian);
  SchedulerOptions options;
  // An id past the variables (and constants) of `g`.
  options.order = {g.Find("mu"), other.Find("v19")};
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler(options).Run(g); },
                                      {"order[1]", "not a variable of this graph"});
  // An id of `g` ("mu") but elements that "mu" does not have.
  options.order = {big.Slice(3, 8)};
  ExpectErrorMentioning<OptionsError>([&] { SequentialScheduler(options).Run(g); },
                                      {"order[0]", "not a variable of this graph",
                                       "variable 'mu'"});
  options.order = {g.Find("tau"), g.Find("mu")};
  EXPECT_TRUE(SequentialScheduler(options).Run(g).converged());
}

// ---- Nothing crashes; a graph that refused input still works ----------------------------------

TEST(Errors, EveryBadInputThrowsAVfeErrorInsteadOfCrashing) {
  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"negative precision", [] {
         FactorGraph g = BaseModel();
         g.AddGaussian(g.AddObserved("z", 1.0), g.Find("mu"), -1.0);
         g.Finalize();
       }},
      {"negative precision matrix", [] { MvPrior(-Identity(2)); }},
      {"non-symmetric precision", [] { MvPrior(Square(1.0, 0.5, 0.0, 1.0)); }},
      {"indefinite precision", [] { MvPrior(Square(1.0, 2.0, 2.0, 1.0)); }},
      {"NaN precision", [] { MvPrior(Square(kNan, 0.0, 0.0, 1.0)); }},
      {"NaN data", [] { FinalizeWithData({kNan}); }},
      {"infinite data", [] { FinalizeWithData({1.0, -kInf}); }},
      {"all data NaN", [] { FinalizeWithData(std::vector<double>(100, kNan)); }},
      {"mean of dimension 3", [] {
         FactorGraph g;
         g.AddMvGaussian(g.AddVariable("m", Family::kMvGaussian, 2), Zeros(3), Identity(3));
         g.Finalize();
       }},
      {"empty matrix", [] {
         FactorGraph g;
         const Variable x = g.AddVariable("x", Family::kMvGaussian, 2);
         g.AddMvGaussian(x, Zeros(2), Identity(2));
         g.AddLinearGaussian(g.AddObserved("o", 1.0), x, Matrix(0, 0), 1.0);
         g.Finalize();
       }},
      {"regression rows", [] {
         FactorGraph g;
         const Variable w = g.AddVariable("w", Family::kMvGaussian, 2);
         g.AddMvGaussian(w, Zeros(2), Identity(2));
         g.AddLinearRegression(g.AddObserved("t", std::vector<double>{1, 2}), w,
                               Matrix::Ones(7, 2), 1.0);
         g.Finalize();
       }},
      {"orphan", [] {
         FactorGraph g = BaseModel();
         g.AddVariableArray("orphans", Family::kWishart, {2, 2}, 3);
         g.Finalize();
       }},
      {"self loop", [] {
         FactorGraph g;
         const Variable x = g.AddVariable("x", Family::kGaussian);
         g.AddGaussian(x, 0.0, 1.0);
         g.AddGaussian(g.AddObserved("y", 1.0), x, x);
         g.Finalize();
       }},
      {"Gamma shape", [] {
         FactorGraph g;
         g.AddGamma(g.AddVariable("s", Family::kGamma), -kInf, 1.0);
         g.Finalize();
       }},
      {"Wishart dof", [] {
         FactorGraph g;
         g.AddWishart(g.AddVariable("W", Family::kWishart, 2), kNan, Identity(2));
         g.Finalize();
       }},
      {"wrong argument count", [] {
         FactorGraph g;
         g.AddFactor(MakeGaussianNode(), {0.0, 1.0});
       }},
      {"no node", [] { FactorGraph().AddFactor(std::unique_ptr<Node>(), {}); }},
      {"stray element", [] {
         FactorGraph other;
         const Variable big = other.AddVariableArray("big", Family::kGaussian, {1000});
         FactorGraph g;
         g.AddVariable("x", Family::kGaussian);
         g.AddGaussian(big.Slice(500, 1000), 0.0, 1.0);
         g.Finalize();
       }},
      {"stray posterior", [] {
         FactorGraph other;
         const Variable big = other.AddVariableArray("big", Family::kGaussian, {1000});
         FactorGraph g = BaseModel();
         g.Finalize();
         g.SetPosterior(big.Slice(0, 1000), Gaussian(0.0, 1.0));
       }},
      {"posterior of no variable", [] {
         FactorGraph g = BaseModel();
         g.Finalize();
         g.Posterior<Gaussian>(Variable());
       }},
      {"posterior of a stray element", [] {
         FactorGraph other;
         const Variable big = other.AddVariableArray("big", Family::kGaussian, {1000});
         FactorGraph g = BaseModel();
         g.Finalize();
         g.Posterior<Gaussian>(big[999]);
       }},
      {"element out of range", [] { BaseModel().Find("y")[5]; }},
      {"stray order", [] {
         FactorGraph other;
         const Variable big = other.AddVariableArray("big", Family::kGaussian, {1000});
         SchedulerOptions options;
         options.order = {big};
         RunWith(options);
       }},
      {"zero iterations", [] {
         SchedulerOptions options;
         options.max_iterations = 0;
         RunWith(options);
       }},
      {"NaN tolerance", [] {
         SchedulerOptions options;
         options.tolerance = kNan;
         RunWith(options);
       }},
  };
  for (const auto& [label, action] : cases) {
    SCOPED_TRACE(label);
    EXPECT_THROW(action(), Error);
  }
}

TEST(Errors, GraphThatRefusedInputGivesTheSameResultAsAFreshOne) {
  FactorGraph g;
  const Variable mu = g.AddVariable("mu", Family::kGaussian);
  const Variable tau = g.AddVariable("tau", Family::kGamma);
  EXPECT_THROW(g.AddVariable("mu", Family::kGamma), GraphError);
  EXPECT_THROW(g.AddVariable("", Family::kGaussian), GraphError);
  EXPECT_THROW(g.AddVariable("v", Family::kGamma, 3), GraphError);
  g.AddGaussian(mu, 0.0, 1.0, "mu_prior");
  // A refused plate leaves no trace, not even its constants (the observed arguments were
  // declared before the call, and stay).
  const Variable pair = g.AddObserved("pair", std::vector<double>{1, 2});
  const Variable triple = g.AddObserved("triple", std::vector<double>{1, 2, 3});
  EXPECT_THROW(g.AddGaussian(pair, triple, 1.0), GraphError);
  g.AddGamma(tau, 1.0, 1.0, "tau_prior");
  EXPECT_THROW(g.AddFactor(MakeGaussianNode(), {mu, 1.0}), GraphError);
  g.AddGaussian(g.AddObserved("y", std::vector<double>{1.0, 2.0, 3.0, 2.5, 1.5}), mu, tau,
                "likelihood");
  // Finalize refuses unconnected variables without changing the graph, so they can be
  // connected and Finalize called again.
  EXPECT_THROW(g.Finalize(), GraphError);
  g.AddGaussian(pair, mu, 1.0, "pair_given_mu");
  EXPECT_THROW(g.Finalize(), GraphError);
  g.AddGaussian(triple, 0.0, 1.0, "triple_prior");
  ASSERT_NO_THROW(g.Finalize());

  FactorGraph reference;
  const Variable ref_mu = reference.AddVariable("mu", Family::kGaussian);
  const Variable ref_tau = reference.AddVariable("tau", Family::kGamma);
  reference.AddGaussian(ref_mu, 0.0, 1.0, "mu_prior");
  const Variable ref_pair = reference.AddObserved("pair", std::vector<double>{1, 2});
  const Variable ref_triple = reference.AddObserved("triple", std::vector<double>{1, 2, 3});
  reference.AddGamma(ref_tau, 1.0, 1.0, "tau_prior");
  reference.AddGaussian(reference.AddObserved("y", std::vector<double>{1.0, 2.0, 3.0, 2.5, 1.5}),
                        ref_mu, ref_tau, "likelihood");
  reference.AddGaussian(ref_pair, ref_mu, 1.0, "pair_given_mu");
  reference.AddGaussian(ref_triple, 0.0, 1.0, "triple_prior");
  reference.Finalize();
  EXPECT_EQ(g.num_variables(), reference.num_variables());
  EXPECT_EQ(g.num_plates(), reference.num_plates());
  EXPECT_EQ(g.num_factors(), reference.num_factors());

  SchedulerOptions bad;
  bad.max_iterations = 0;
  EXPECT_THROW(SequentialScheduler{bad}, OptionsError);
  const Result result = SequentialScheduler(SchedulerOptions()).Run(g);
  const Result fresh = SequentialScheduler(SchedulerOptions()).Run(reference);
  ASSERT_TRUE(result.converged());
  EXPECT_EQ(result.iterations, fresh.iterations);
  EXPECT_EQ(result.free_energy, fresh.free_energy);
  EXPECT_EQ(g.Posterior<Gaussian>(mu).mean(), reference.Posterior<Gaussian>(ref_mu).mean());
  EXPECT_EQ(g.Posterior<Gamma>(tau).mean(), reference.Posterior<Gamma>(ref_tau).mean());
}

// ---- Robustness: scratch, sizes, memory, shapes that doubles cannot hold ----------------

TEST(Errors, ScratchNotMadeByTheGraphIsRefused) {
  FactorGraph g = BaseModel();
  g.Finalize();
  FactorGraph small;
  small.AddGaussian(small.AddVariable("x", Family::kGaussian), 0.0, 1.0);
  small.Finalize();
  Scratch none;                             // default-constructed: no room at all
  Scratch other = small.MakeScratch();      // another graph's
  const uint32_t mu = g.Find("mu").id();
  for (Scratch* scratch : {&none, &other}) {
    const std::string which = scratch == &none ? "not made by MakeScratch" : "another graph";
    ExpectErrorMentioning<GraphError>([&] { g.UpdateElement(mu, 0, *scratch); },
                                      {"UpdateElement", which});
    ExpectErrorMentioning<GraphError>([&] { g.UpdateElements(mu, 0, 1, *scratch); },
                                      {"UpdateElements", which});
    ExpectErrorMentioning<GraphError>([&] { g.FreeEnergy(*scratch); }, {"FreeEnergy", which});
    ExpectErrorMentioning<GraphError>([&] { g.FreeEnergyBlock(0, *scratch); },
                                      {"FreeEnergyBlock", which});
    ExpectErrorMentioning<GraphError>([&] { g.FreeEnergyParts(*scratch); },
                                      {"FreeEnergyParts", which});
    ExpectErrorMentioning<GraphError>(
        [&] { g.UpdateElementsNaturalGradient(mu, 0, 1, 0.5, *scratch); },
        {"UpdateElementsNaturalGradient", which});
    const size_t element = 0;
    ExpectErrorMentioning<GraphError>(
        [&] { g.UpdateListedElements(mu, &element, 1, *scratch); },
        {"UpdateListedElements", which});
  }
  // The graph's own, and a copy of it, work.
  Scratch own = g.MakeScratch();
  Scratch copy = own;
  EXPECT_TRUE(g.UpdateElement(mu, 0, copy));
  EXPECT_TRUE(std::isfinite(g.FreeEnergy(own)));
}

TEST(Errors, ShapeWhoseElementCountOverflowsIsRefused) {
  FactorGraph g;
  const size_t half = size_t{1} << 32;
  ExpectErrorMentioning<GraphError>(
      [&] { g.AddVariableArray("x", Family::kGaussian, {half, half}); },
      {"variable 'x'", "shape [4294967296, 4294967296]", "more elements than can be counted"});
  ExpectErrorMentioning<GraphError>(
      [&] { g.AddVariableArray("z", Family::kGaussian, {3, 0}); },
      {"variable 'z'", "no elements"});
  // Nothing was declared: the names are free.
  EXPECT_NO_THROW(g.AddVariableArray("x", Family::kGaussian, {2, 3}));
}

TEST(Errors, MatrixAndVectorDimensionsAboveTheMaximumAreRefused) {
  FactorGraph g;
  // 46,341 overflowed an int in D + D² before the maximum existed.
  ExpectErrorMentioning<GraphError>(
      [&] { g.AddVariable("m", Family::kMvGaussian, 46341); },
      {"variable 'm'", "MvGaussian", "at most 4096", "got 46341"});
  ExpectErrorMentioning<GraphError>([&] { g.AddVariable("w", Family::kWishart, kMaxMatrixDim + 1); },
                                    {"variable 'w'", "at most 4096"});
  ExpectErrorMentioning<GraphError>(
      [&] { g.AddVariable("c", Family::kCategorical, kMaxVectorDim + 1); },
      {"variable 'c'", "at most 16777216"});
  EXPECT_NO_THROW(g.AddVariable("ok", Family::kMvGaussian, kMaxMatrixDim));
  // Observed data take their dimension from the values: the same limit.
  FactorGraph data;
  const Variable m = data.AddVariable("m", Family::kMvGaussian, 2);
  data.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)), "m_prior");
  data.AddFactor("MvGaussian", {{"out", data.AddObserved("y", Matrix(Matrix::Zero(46341, 1)))},
                                {"mean", m}, {"precision", Matrix(Matrix::Identity(2, 2))}},
                 "likelihood");
  ExpectErrorMentioning<GraphError>([&] { data.Finalize(); },
                                    {"factor 'likelihood'", "dimension 46341", "4096"});
  static_assert(static_cast<long long>(kMaxMatrixDim) * (kMaxMatrixDim + 1) <
                std::numeric_limits<int>::max());
}

TEST(Errors, PotentialTableSizeThatOverflowsIsRefused) {
  // Four variables of 2^16 categories make 2^64 table entries: not a wrapped 0.
  FactorGraph g;
  std::vector<Argument> variables;
  for (const char* name : {"a", "b", "c", "d"})
    variables.push_back(g.AddVariable(name, Family::kCategorical, 1 << 16));
  g.AddFactor(MakePotentialNode(4, {0.0}), variables, "joint");
  ExpectErrorMentioning<ModelError>([&] { g.Finalize(); },
                                    {"factor 'joint'", "more table entries than can be counted"});
}

TEST(Errors, GraphAboveTheMemoryBudgetIsRefusedAtFinalizeWithTheEstimate) {
  // 10^5 scalar Gaussians, hidden: 10^5 · 2 numbers · 3 copies · 8 bytes = 4.8 MB at least.
  FactorGraph g;
  const Variable x = g.AddVariableArray("x", Family::kGaussian, {100000});
  g.AddGaussian(x, 0.0, 1.0, "x_prior");
  g.set_memory_budget(1000000);
  EXPECT_EQ(g.memory_budget(), 1000000u);
  ExpectErrorMentioning<GraphError>(
      [&] { g.Finalize(); },
      {"Finalize: the graph needs at least 4.8 MB", "budget of 1.0 MB", "set_memory_budget",
       "'x' 4.8 MB (100000 elements of 2 numbers)"});
  EXPECT_FALSE(g.finalized());
  g.set_memory_budget(5000000);
  EXPECT_NO_THROW(g.Finalize());
  // The default budget is the machine's memory, never zero.
  EXPECT_GT(FactorGraph().memory_budget(), size_t{1} << 20);
}

TEST(Errors, ShapesThatDoublePrecisionCannotHoldAreRefusedWhereGiven) {
  // a − 1 rounds to −1 for a < 2^-53: the density would be improper at the first update.
  for (const double shape : {1e-300, 1e-17}) {
    ExpectErrorMentioning<ModelError>(
        [&] {
          FactorGraph g;
          g.AddGamma(g.AddVariable("s", Family::kGamma), shape, 1.0, "s_prior");
          g.Finalize();
        },
        {"factor 's_prior' (Gamma)", "shape " + FormatNumber(shape), "below 1.1e-16",
         "improper"});
    ExpectErrorMentioning<ModelError>([&] { Gamma(shape, 1.0); }, {"Gamma: shape", "below"});
    ExpectErrorMentioning<ModelError>([&] { Beta(1.0, shape); }, {"Beta: b", "below"});
    ExpectErrorMentioning<ModelError>([&] { Dirichlet(Vector::Constant(3, shape)); },
                                      {"Dirichlet: alpha[0]", "below"});
  }
  // At the limit the prior runs and gives a finite F.
  FactorGraph g;
  const Variable s = g.AddVariable("s", Family::kGamma);
  g.AddGamma(s, kMinShape, 1.0, "s_prior");
  g.Finalize();
  SchedulerOptions options;
  options.max_iterations = 2;
  const Result result = SequentialScheduler(options).Run(g);
  EXPECT_NE(result.termination, Termination::kNumericalFailure) << result.message;
  EXPECT_TRUE(std::isfinite(result.free_energy.back()));
  EXPECT_EQ(g.Posterior<Gamma>(s).shape(), kMinShape);
}

}  // namespace
}  // namespace vfe
