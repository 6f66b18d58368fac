// Every node's messages and average energy against Monte Carlo with textbook densities.
//
// Message: a target variable is connected to the node under test only, so its update sets
// η = Σ messages. The message must be exp E_{q\x}[log f] as a function of x: for points x1, x2,
// η·T(x1) − η·T(x2) = E[log f(x1, ·)] − E[log f(x2, ·)], the expectation over the other
// variables' q by sampling (common samples for x1 and x2).
// Average energy: the plate's U = −E_q[log f] against sampling every connected variable.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "nodes/chunk_cache.h"
#include "tests/testing/expect.h"
#include "tests/testing/textbook.h"
#include "vfe/distributions/dispatch.h"
#include "vfe/model.h"

namespace vfe {
namespace {

using testing::ExpectMatrixNear;
using testing::LogGammaDensity;
using testing::LogNormal;
using testing::LogWishart;

/// The sufficient statistic T(x) in the flat layout of DESIGN §2 (matrices column-major);
/// a categorical outcome is given as its index, with K = `categories`.
Vector Statistic(Family family, const Matrix& x, int categories = 1) {
  const int d = static_cast<int>(x.rows());
  switch (family) {
    case Family::kBeta: return (Vector(2) << std::log(x(0, 0)), std::log1p(-x(0, 0))).finished();
    case Family::kBernoulli: return Vector::Constant(1, x(0, 0));
    case Family::kCategorical: {
      Vector t = Vector::Zero(categories);
      t[static_cast<int>(x(0, 0))] = 1.0;
      return t;
    }
    case Family::kDirichlet: return x.col(0).array().log().matrix();
    case Family::kGaussian: return (Vector(2) << x(0, 0), x(0, 0) * x(0, 0)).finished();
    case Family::kGamma: return (Vector(2) << x(0, 0), std::log(x(0, 0))).finished();
    case Family::kMvGaussian: {
      Vector t(d + d * d);
      t.head(d) = x.col(0);
      const Matrix outer = x.col(0) * x.col(0).transpose();
      t.tail(d * d) = Eigen::Map<const Vector>(outer.data(), d * d);
      return t;
    }
    case Family::kWishart: {
      Vector t(d * d + 1);
      t.head(d * d) = Eigen::Map<const Vector>(x.data(), d * d);
      t[d * d] = std::log(x.determinant());
      return t;
    }
  }
  return Vector();
}

Matrix RandomSpd(std::mt19937_64& rng, int d, double scale) {
  std::normal_distribution<double> normal;
  Matrix b(d, d);
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) b(i, j) = normal(rng);
  return scale * (b * b.transpose() / d + 0.5 * Matrix::Identity(d, d));
}

/// A sample of every hidden variable of a graph, by name (scalars as 1x1, vectors as dx1).
using Sample = std::map<std::string, Matrix>;

/// Draws every hidden variable from its current q, with samplers independent of vfe's.
Sample Draw(const FactorGraph& graph, std::mt19937_64& rng) {
  Sample sample;
  std::normal_distribution<double> normal;
  for (const Variable& v : graph.HiddenVariables()) {
    const std::string& name = graph.variable_name(v.id());
    switch (graph.family(v)) {
      case Family::kGaussian: {
        const Gaussian q = graph.Posterior<Gaussian>(v);
        sample[name] = Matrix::Constant(1, 1, q.mean() + std::sqrt(q.variance()) * normal(rng));
        break;
      }
      case Family::kGamma: {
        const Gamma q = graph.Posterior<Gamma>(v);
        sample[name] =
            Matrix::Constant(1, 1, std::gamma_distribution<double>(q.shape(), 1 / q.rate())(rng));
        break;
      }
      case Family::kMvGaussian: {
        const MvGaussian q = graph.Posterior<MvGaussian>(v);
        Vector z(q.dim());
        for (int j = 0; j < q.dim(); ++j) z[j] = normal(rng);
        const Matrix chol = q.covariance().llt().matrixL();
        sample[name] = q.mean() + chol * z;
        break;
      }
      case Family::kWishart:
        sample[name] = graph.Posterior<Wishart>(v).Sample(rng);  // Bartlett; see distributions_test
        break;
      case Family::kBeta: {
        const Beta q = graph.Posterior<Beta>(v);
        const double x = std::gamma_distribution<double>(q.a(), 1.0)(rng);
        const double y = std::gamma_distribution<double>(q.b(), 1.0)(rng);
        sample[name] = Matrix::Constant(1, 1, x / (x + y));
        break;
      }
      case Family::kBernoulli: {
        const double p = graph.Posterior<Bernoulli>(v).p();
        sample[name] = Matrix::Constant(1, 1, std::uniform_real_distribution<double>()(rng) < p);
        break;
      }
      case Family::kCategorical: {
        const Vector p = graph.Posterior<Categorical>(v).p();
        std::discrete_distribution<int> outcome(p.data(), p.data() + p.size());
        sample[name] = Matrix::Constant(1, 1, outcome(rng));
        break;
      }
      case Family::kDirichlet: {
        const Vector alpha = graph.Posterior<Dirichlet>(v).alpha();
        Vector x(alpha.size());
        for (Eigen::Index k = 0; k < x.size(); ++k)
          x[k] = std::gamma_distribution<double>(alpha[k], 1.0)(rng);
        sample[name] = x / x.sum();
        break;
      }
    }
  }
  return sample;
}

/// One node under test: a finalised graph where `target` is connected only to `plate`, and
/// the textbook log of the plate's factors (summed) given a sample of every hidden variable.
struct NodeCase {
  std::string name;
  std::unique_ptr<FactorGraph> graph = std::make_unique<FactorGraph>();
  Variable target;
  PlateId plate = 0;
  std::function<double(const Sample&)> log_factor;
  std::vector<Matrix> points;  // values of the target at which the message is compared
};

/// Sets every hidden variable's q to a random proper density.
void Randomise(FactorGraph& graph, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.5, 2.0);
  std::normal_distribution<double> normal;
  for (const Variable& v : graph.HiddenVariables()) {
    const int d = graph.dim(v);
    switch (graph.family(v)) {
      case Family::kGaussian: graph.SetPosterior(v, Gaussian(normal(rng), 2 * uniform(rng))); break;
      case Family::kGamma: graph.SetPosterior(v, Gamma(3 * uniform(rng), uniform(rng))); break;
      case Family::kMvGaussian: {
        Vector mean(d);
        for (int j = 0; j < d; ++j) mean[j] = normal(rng);
        graph.SetPosterior(v, MvGaussian(mean, RandomSpd(rng, d, 2.0)));
        break;
      }
      case Family::kWishart:
        graph.SetPosterior(v, Wishart(d + 2 + uniform(rng), RandomSpd(rng, d, 0.3)));
        break;
      case Family::kBeta: graph.SetPosterior(v, Beta(2 * uniform(rng), 2 * uniform(rng))); break;
      case Family::kBernoulli: graph.SetPosterior(v, Bernoulli(uniform(rng) / 2.5)); break;
      case Family::kCategorical: {
        Vector p(d);
        for (int k = 0; k < d; ++k) p[k] = uniform(rng);
        graph.SetPosterior(v, Categorical(Vector(p / p.sum())));
        break;
      }
      case Family::kDirichlet: {
        Vector alpha(d);
        for (int k = 0; k < d; ++k) alpha[k] = 2 * uniform(rng);
        graph.SetPosterior(v, Dirichlet(alpha));
        break;
      }
    }
  }
}

/// The message check and the energy check of one case.
void CheckNode(NodeCase& c, uint64_t seed) {
  SCOPED_TRACE(c.name);
  FactorGraph& graph = *c.graph;
  std::mt19937_64 rng(seed);
  Randomise(graph, rng);
  Scratch scratch = graph.MakeScratch();
  ASSERT_TRUE(graph.UpdateElement(c.target.id(), 0, scratch)) << "improper message";
  const Family family = graph.family(c.target);
  const int d = graph.dim(c.target);
  std::vector<double> eta_flat(StatSize(family, d));
  switch (family) {
    case Family::kGaussian: graph.Posterior<Gaussian>(c.target).WriteNatural(eta_flat.data()); break;
    case Family::kGamma: graph.Posterior<Gamma>(c.target).WriteNatural(eta_flat.data()); break;
    case Family::kMvGaussian:
      graph.Posterior<MvGaussian>(c.target).WriteNatural(eta_flat.data());
      break;
    case Family::kWishart: graph.Posterior<Wishart>(c.target).WriteNatural(eta_flat.data()); break;
    case Family::kBeta: graph.Posterior<Beta>(c.target).WriteNatural(eta_flat.data()); break;
    case Family::kBernoulli:
      graph.Posterior<Bernoulli>(c.target).WriteNatural(eta_flat.data());
      break;
    case Family::kCategorical:
      graph.Posterior<Categorical>(c.target).WriteNatural(eta_flat.data());
      break;
    case Family::kDirichlet:
      graph.Posterior<Dirichlet>(c.target).WriteNatural(eta_flat.data());
      break;
  }
  const Eigen::Map<const Vector> eta(eta_flat.data(), static_cast<Eigen::Index>(eta_flat.size()));
  const std::string target = graph.variable_name(c.target.id());

  // Message: differences of E[log f] between points, by common samples of the others.
  const int samples = 40000;
  for (size_t i = 1; i < c.points.size(); ++i) {
    testing::RunningMean difference;
    for (int s = 0; s < samples; ++s) {
      Sample sample = Draw(graph, rng);
      sample[target] = c.points[i];
      const double at_i = c.log_factor(sample);
      sample[target] = c.points[0];
      difference.Add(at_i - c.log_factor(sample));
    }
    const double message =
        eta.dot(Statistic(family, c.points[i], d) - Statistic(family, c.points[0], d));
    EXPECT_NEAR(message, difference.mean(), 5 * difference.standard_error() + 1e-10)
        << "point " << i;
  }

  // Average energy: U = −E_q[log f] over every connected variable.
  const double energy = graph.FreeEnergyParts(scratch).plate_energy[c.plate];
  testing::RunningMean estimate;
  for (int s = 0; s < samples; ++s) estimate.Add(-c.log_factor(Draw(graph, rng)));
  EXPECT_NEAR(energy, estimate.mean(), 5 * estimate.standard_error() + 1e-10);
}

double Scalar(const Sample& s, const std::string& name) { return s.at(name)(0, 0); }
Matrix Value(double x) { return Matrix::Constant(1, 1, x); }
Matrix Value(const Vector& x) { return x; }

const std::vector<double> kData = {0.4, -1.2, 2.1};

// ---- Gaussian -------------------------------------------------------------------------------

TEST(GaussianNode, MessagesAndEnergyMatchMonteCarlo) {
  for (const char* target : {"mean", "out", "precision"}) {
    NodeCase c;
    c.name = std::string("Gaussian to ") + target;
    FactorGraph& g = *c.graph;
    const Variable m = g.AddVariable("m", Family::kGaussian);
    const Variable tau = g.AddVariable("tau", Family::kGamma);
    if (std::string(target) == "out") {
      const Variable x = g.AddVariable("x", Family::kGaussian);
      g.AddGaussian(m, 0.0, 1.0);
      g.AddGamma(tau, 2.0, 1.0);
      c.plate = g.AddGaussian(x, m, tau);
      c.target = x;
      c.log_factor = [](const Sample& s) {
        return LogNormal(s.at("x"), s.at("m"), Matrix::Constant(1, 1, Scalar(s, "tau")));
      };
      c.points = {Value(-1.0), Value(0.5), Value(3.0)};
    } else {
      const bool to_mean = std::string(target) == "mean";
      if (to_mean) g.AddGamma(tau, 2.0, 1.0); else g.AddGaussian(m, 0.0, 1.0);
      c.plate = g.AddGaussian(g.AddObserved("y", kData), m, tau);
      c.target = to_mean ? m : tau;
      c.log_factor = [](const Sample& s) {
        double sum = 0;
        for (double y : kData)
          sum += LogNormal(Value(y), s.at("m"), Matrix::Constant(1, 1, Scalar(s, "tau")));
        return sum;
      };
      c.points = to_mean ? std::vector<Matrix>{Value(-2.0), Value(0.1), Value(1.5)}
                         : std::vector<Matrix>{Value(0.3), Value(1.0), Value(4.0)};
    }
    g.Finalize();
    CheckNode(c, 11);
  }
}

// ---- MvGaussian -----------------------------------------------------------------------------

Matrix kRows() {
  Matrix rows(3, 2);
  rows << 0.5, -0.3, 1.2, 0.8, -0.7, 0.1;
  return rows;
}

TEST(MvGaussianNode, MessagesAndEnergyMatchMonteCarlo) {
  struct Variant {
    const char* target;
    Family precision;
  };
  for (const Variant& variant : {Variant{"mean", Family::kWishart}, Variant{"precision", Family::kWishart},
                                 Variant{"mean", Family::kGamma}, Variant{"precision", Family::kGamma},
                                 Variant{"out", Family::kWishart}}) {
    NodeCase c;
    c.name = std::string("MvGaussian to ") + variant.target + " with " +
             FamilyName(variant.precision) + " precision";
    FactorGraph& g = *c.graph;
    const Variable m = g.AddVariable("m", Family::kMvGaussian, 2);
    const Variable w = g.AddVariable("W", variant.precision, variant.precision == Family::kWishart ? 2 : 1);
    const std::string target = variant.target;
    auto precision_of = [isotropic = variant.precision == Family::kGamma](const Sample& s) {
      return isotropic ? Matrix(Scalar(s, "W") * Matrix::Identity(2, 2)) : s.at("W");
    };
    if (target != "mean") g.AddMvGaussian(m, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
    if (target != "precision") {
      if (variant.precision == Family::kWishart) {
        g.AddWishart(w, 3.0, Matrix(Matrix::Identity(2, 2)));
      } else {
        g.AddGamma(w, 2.0, 1.0);
      }
    }
    if (target == "out") {
      const Variable x = g.AddVariable("x", Family::kMvGaussian, 2);
      c.plate = g.AddMvGaussian(x, m, w);
      c.target = x;
      c.log_factor = [=](const Sample& s) { return LogNormal(s.at("x"), s.at("m"), precision_of(s)); };
      c.points = {Value((Vector(2) << 0, 0).finished()), Value((Vector(2) << 1, -2).finished()),
                  Value((Vector(2) << -0.5, 3).finished())};
    } else {
      const Matrix rows = kRows();
      c.plate = g.AddMvGaussian(g.AddObservedRows("y", rows), m, w);
      c.target = target == "mean" ? m : w;
      c.log_factor = [=](const Sample& s) {
        double sum = 0;
        for (int i = 0; i < rows.rows(); ++i)
          sum += LogNormal(rows.row(i).transpose(), s.at("m"), precision_of(s));
        return sum;
      };
      if (target == "mean") {
        c.points = {Value((Vector(2) << 0, 0).finished()), Value((Vector(2) << 1, -1).finished()),
                    Value((Vector(2) << -2, 0.5).finished())};
      } else if (variant.precision == Family::kGamma) {
        c.points = {Value(0.5), Value(1.0), Value(3.0)};
      } else {
        Matrix a(2, 2), b(2, 2), e(2, 2);
        a << 1, 0, 0, 1;
        b << 2, 0.5, 0.5, 1;
        e << 0.5, -0.2, -0.2, 3;
        c.points = {a, b, e};
      }
    }
    g.Finalize();
    CheckNode(c, 12);
  }
}

// ---- LinearGaussian -------------------------------------------------------------------------

TEST(LinearGaussianNode, SharedMatrixMessagesAndEnergyMatchMonteCarlo) {
  // in: 2-D, out: 3-D (so that the message to `in` is proper from one matrix).
  Matrix a(3, 2);
  a << 1.0, 0.5, -0.2, 0.0, 2.0, 1.0;
  Matrix rows(2, 3);
  rows << 0.5, 1.0, -1.0, 2.0, 0.3, -0.4;
  for (const char* target : {"in", "precision", "out"}) {
    NodeCase c;
    c.name = std::string("LinearGaussian to ") + target;
    FactorGraph& g = *c.graph;
    const Variable x = g.AddVariable("x", Family::kMvGaussian, 2);
    const Variable w = g.AddVariable("W", Family::kWishart, 3);
    const std::string t = target;
    if (t != "in") g.AddMvGaussian(x, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
    if (t != "precision") g.AddWishart(w, 4.0, Matrix(Matrix::Identity(3, 3)));
    if (t == "out") {
      const Variable y = g.AddVariable("y", Family::kMvGaussian, 3);
      c.plate = g.AddLinearGaussian(y, x, a, w);
      c.target = y;
      c.log_factor = [=](const Sample& s) {
        return LogNormal(s.at("y"), a * s.at("x"), s.at("W"));
      };
      c.points = {Value(Vector(Vector::Zero(3))), Value((Vector(3) << 1, 1, 0).finished()),
                  Value((Vector(3) << -2, 0.5, 1).finished())};
    } else {
      c.plate = g.AddLinearGaussian(g.AddObservedRows("y", rows), x, a, w);
      c.target = t == "in" ? x : w;
      c.log_factor = [=](const Sample& s) {
        double sum = 0;
        for (int i = 0; i < rows.rows(); ++i)
          sum += LogNormal(rows.row(i).transpose(), a * s.at("x"), s.at("W"));
        return sum;
      };
      if (t == "in") {
        c.points = {Value(Vector(Vector::Zero(2))), Value((Vector(2) << 1, -1).finished()),
                    Value((Vector(2) << -0.5, 2).finished())};
      } else {
        Matrix p = Matrix::Identity(3, 3), q(3, 3), r(3, 3);
        q << 2, 0.5, 0, 0.5, 1, 0.2, 0, 0.2, 1.5;
        r << 0.5, -0.2, 0.1, -0.2, 3, 0, 0.1, 0, 0.8;
        c.points = {p, q, r};
      }
    }
    g.Finalize();
    CheckNode(c, 13);
  }
}

TEST(LinearGaussianNode, RegressionRowsMessagesAndEnergyMatchMonteCarlo) {
  Matrix design(4, 2);
  design << 1.0, 0.5, -0.3, 2.0, 0.8, -1.1, 0.0, 1.0;
  const std::vector<double> targets = {1.0, 3.2, -0.5, 2.0};
  for (const char* target : {"in", "precision"}) {
    NodeCase c;
    c.name = std::string("regression to ") + target;
    FactorGraph& g = *c.graph;
    const Variable w = g.AddVariable("w", Family::kMvGaussian, 2);
    const Variable tau = g.AddVariable("tau", Family::kGamma);
    const bool to_in = std::string(target) == "in";
    if (to_in) g.AddGamma(tau, 2.0, 1.0); else g.AddMvGaussian(w, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
    c.plate = g.AddLinearRegression(g.AddObserved("y", targets), w, design, tau);
    c.target = to_in ? w : tau;
    c.log_factor = [=](const Sample& s) {
      double sum = 0;
      for (int i = 0; i < design.rows(); ++i)
        sum += LogNormal(Value(targets[i]), design.row(i) * s.at("w"),
                         Matrix::Constant(1, 1, Scalar(s, "tau")));
      return sum;
    };
    c.points = to_in ? std::vector<Matrix>{Value(Vector(Vector::Zero(2))),
                                           Value((Vector(2) << 1, 2).finished()),
                                           Value((Vector(2) << -1, 0.3).finished())}
                     : std::vector<Matrix>{Value(0.2), Value(1.0), Value(5.0)};
    g.Finalize();
    CheckNode(c, 14);
  }
}

// ---- Gamma and Wishart ------------------------------------------------------------------------

TEST(GammaNode, MessagesAndEnergyMatchMonteCarlo) {
  for (const char* target : {"out", "rate"}) {
    NodeCase c;
    c.name = std::string("Gamma to ") + target;
    FactorGraph& g = *c.graph;
    const Variable s = g.AddVariable("s", Family::kGamma);
    const Variable b = g.AddVariable("b", Family::kGamma);
    const bool to_out = std::string(target) == "out";
    g.AddGamma(to_out ? b : s, 2.0, 1.5);  // the other variable's prior
    c.plate = g.AddGamma(s, 3.0, b);
    c.target = to_out ? s : b;
    c.log_factor = [](const Sample& x) { return LogGammaDensity(Scalar(x, "s"), 3.0, Scalar(x, "b")); };
    c.points = {Value(0.3), Value(1.0), Value(2.5)};
    g.Finalize();
    CheckNode(c, 15);
  }
}

TEST(WishartNode, MessageIsThePriorAndEnergyMatchesMonteCarlo) {
  NodeCase c;
  c.name = "Wishart to out";
  Matrix scale(2, 2);
  scale << 0.6, 0.1, 0.1, 0.4;
  const Variable w = c.graph->AddVariable("W", Family::kWishart, 2);
  c.plate = c.graph->AddWishart(w, 4.5, scale);
  c.target = w;
  c.log_factor = [=](const Sample& s) { return LogWishart(s.at("W"), 4.5, scale); };
  Matrix p(2, 2), q(2, 2), r(2, 2);
  p << 1, 0, 0, 1;
  q << 2, 0.5, 0.5, 1;
  r << 0.5, -0.2, -0.2, 3;
  c.points = {p, q, r};
  c.graph->Finalize();
  CheckNode(c, 16);
}

// ---- Discrete families -----------------------------------------------------------------------

using testing::LogBetaDensity;
using testing::LogDirichletDensity;

TEST(BernoulliNode, MessagesAndEnergyMatchMonteCarlo) {
  const std::vector<double> flips = {1, 0, 1, 1};
  for (const char* target : {"out", "p"}) {
    NodeCase c;
    c.name = std::string("Bernoulli to ") + target;
    FactorGraph& g = *c.graph;
    const Variable p = g.AddVariable("p", Family::kBeta);
    if (std::string(target) == "out") {
      const Variable x = g.AddVariable("x", Family::kBernoulli);
      g.AddBeta(p, 2.0, 3.0);
      c.plate = g.AddBernoulli(x, p);
      c.target = x;
      c.log_factor = [](const Sample& s) {
        const double x = Scalar(s, "x"), q = Scalar(s, "p");
        return x * std::log(q) + (1 - x) * std::log1p(-q);
      };
      c.points = {Value(0.0), Value(1.0)};
    } else {
      c.plate = g.AddBernoulli(g.AddObserved("y", flips), p);
      c.target = p;
      c.log_factor = [=](const Sample& s) {
        double sum = 0;
        for (double x : flips) sum += x * std::log(Scalar(s, "p")) + (1 - x) * std::log1p(-Scalar(s, "p"));
        return sum;
      };
      c.points = {Value(0.2), Value(0.5), Value(0.9)};
    }
    g.Finalize();
    CheckNode(c, 17);
  }
}

TEST(CategoricalNode, MessagesAndEnergyMatchMonteCarlo) {
  const std::vector<int> outcomes = {0, 2, 2, 1};
  for (const char* target : {"out", "p"}) {
    NodeCase c;
    c.name = std::string("Categorical to ") + target;
    FactorGraph& g = *c.graph;
    const Variable p = g.AddVariable("p", Family::kDirichlet, 3);
    if (std::string(target) == "out") {
      const Variable z = g.AddVariable("z", Family::kCategorical, 3);
      g.AddDirichlet(p, (Vector(3) << 1.0, 2.0, 3.0).finished());
      c.plate = g.AddCategorical(z, p);
      c.target = z;
      c.log_factor = [](const Sample& s) {
        return std::log(s.at("p")(static_cast<int>(Scalar(s, "z")), 0));
      };
      c.points = {Value(0.0), Value(1.0), Value(2.0)};
    } else {
      c.plate = g.AddCategorical(g.AddObservedCategorical("y", outcomes, 3), p);
      c.target = p;
      c.log_factor = [=](const Sample& s) {
        double sum = 0;
        for (int k : outcomes) sum += std::log(s.at("p")(k, 0));
        return sum;
      };
      c.points = {Value((Vector(3) << 0.2, 0.3, 0.5).finished()),
                  Value((Vector(3) << 0.6, 0.3, 0.1).finished()),
                  Value((Vector(3) << 0.1, 0.1, 0.8).finished())};
    }
    g.Finalize();
    CheckNode(c, 18);
  }
}

TEST(PriorNodes, BetaAndDirichletMessagesAreThePriorsAndEnergiesMatchMonteCarlo) {
  {
    NodeCase c;
    c.name = "Beta to out";
    const Variable p = c.graph->AddVariable("p", Family::kBeta);
    c.plate = c.graph->AddBeta(p, 2.5, 0.7);
    c.target = p;
    c.log_factor = [](const Sample& s) { return LogBetaDensity(Scalar(s, "p"), 2.5, 0.7); };
    c.points = {Value(0.1), Value(0.5), Value(0.95)};
    c.graph->Finalize();
    CheckNode(c, 19);
  }
  {
    NodeCase c;
    c.name = "Dirichlet to out";
    const Vector alpha = (Vector(3) << 0.8, 2.0, 4.0).finished();
    const Variable p = c.graph->AddVariable("p", Family::kDirichlet, 3);
    c.plate = c.graph->AddDirichlet(p, alpha);
    c.target = p;
    c.log_factor = [=](const Sample& s) { return LogDirichletDensity(s.at("p"), alpha); };
    c.points = {Value((Vector(3) << 0.2, 0.3, 0.5).finished()),
                Value((Vector(3) << 0.6, 0.3, 0.1).finished())};
    c.graph->Finalize();
    CheckNode(c, 20);
  }
}

TEST(GaussianMixtureNode, MessagesAndEnergyMatchMonteCarlo) {
  // y (observed 2-vector) ~ Σ_k z_k N(μ_k, Λ_k⁻¹), K = 2, every slot in turn the target.
  const Vector y = (Vector(2) << 0.7, -1.2).finished();
  for (const char* target : {"switch", "m0", "m1", "L0", "out"}) {
    NodeCase c;
    c.name = std::string("GaussianMixture to ") + target;
    FactorGraph& g = *c.graph;
    const std::string t = target;
    const Variable z = g.AddVariable("z", Family::kCategorical, 2);
    const Variable m0 = g.AddVariable("m0", Family::kMvGaussian, 2);
    const Variable m1 = g.AddVariable("m1", Family::kMvGaussian, 2);
    const Variable l0 = g.AddVariable("L0", Family::kWishart, 2);
    const Variable l1 = g.AddVariable("L1", Family::kWishart, 2);
    if (t != "switch") g.AddCategorical(z, Vector((Vector(2) << 0.3, 0.7).finished()));
    if (t != "m0") g.AddMvGaussian(m0, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
    if (t != "m1") g.AddMvGaussian(m1, Vector(Vector::Zero(2)), Matrix(Matrix::Identity(2, 2)));
    if (t != "L0") g.AddWishart(l0, 3.0, Matrix(Matrix::Identity(2, 2)));
    g.AddWishart(l1, 3.0, Matrix(Matrix::Identity(2, 2)));
    Variable out;
    if (t == "out") {
      out = g.AddVariable("x", Family::kMvGaussian, 2);
    } else {
      out = g.AddObserved("y", Matrix(y));
    }
    c.plate = g.AddFactor(MakeGaussianMixtureNode(2), {out, z, m0, m1, l0, l1});
    c.target = t == "switch" ? z : t == "m0" ? m0 : t == "m1" ? m1 : t == "L0" ? l0 : out;
    c.log_factor = [=](const Sample& s) {
      const int k = static_cast<int>(Scalar(s, "z"));
      const Vector x = t == "out" ? Vector(s.at("x")) : y;
      return LogNormal(x, s.at(k == 0 ? "m0" : "m1"), s.at(k == 0 ? "L0" : "L1"));
    };
    if (t == "switch") {
      c.points = {Value(0.0), Value(1.0)};
    } else if (t == "L0") {
      Matrix p = Matrix::Identity(2, 2), q(2, 2);
      q << 2, 0.5, 0.5, 1;
      c.points = {p, q};
    } else {
      c.points = {Value(Vector(Vector::Zero(2))), Value((Vector(2) << 1, -1).finished()),
                  Value((Vector(2) << -0.5, 2).finished())};
    }
    g.Finalize();
    CheckNode(c, 21);
  }
}

TEST(TransitionNode, MessagesAndEnergyMatchMonteCarlo) {
  Matrix a(2, 3);  // p(out = j | in = k) = a(j, k)
  a << 0.7, 0.2, 0.5, 0.3, 0.8, 0.5;
  for (const char* target : {"out", "in"}) {
    NodeCase c;
    c.name = std::string("Transition to ") + target;
    const Variable out = c.graph->AddVariable("out", Family::kCategorical, 2);
    const Variable in = c.graph->AddVariable("in", Family::kCategorical, 3);
    if (std::string(target) == "out") {
      c.graph->AddCategorical(in, Vector((Vector(3) << 0.2, 0.5, 0.3).finished()));
    } else {
      c.graph->AddCategorical(out, Vector((Vector(2) << 0.6, 0.4).finished()));
    }
    c.plate = c.graph->AddTransition(out, in, a);
    c.target = std::string(target) == "out" ? out : in;
    c.log_factor = [=](const Sample& s) {
      return std::log(a(static_cast<int>(Scalar(s, "out")), static_cast<int>(Scalar(s, "in"))));
    };
    c.points = std::string(target) == "out" ? std::vector<Matrix>{Value(0.0), Value(1.0)}
                                            : std::vector<Matrix>{Value(0.0), Value(1.0), Value(2.0)};
    c.graph->Finalize();
    CheckNode(c, 23);
  }
}

TEST(PotentialNode, MessagesAndEnergyMatchMonteCarlo) {
  // exp T[a, b] with a (2 outcomes, the target) and b (3 outcomes, a constant prior).
  const std::vector<double> table = {0.5, -1.0, 2.0, -0.3, 0.0, 1.2};
  NodeCase c;
  c.name = "Potential to its first variable";
  const Variable a = c.graph->AddVariable("a", Family::kCategorical, 2);
  const Variable b = c.graph->AddVariable("b", Family::kCategorical, 3);
  c.graph->AddCategorical(b, Vector((Vector(3) << 0.2, 0.5, 0.3).finished()));
  c.plate = c.graph->AddPotential({a, b}, table);
  c.target = a;
  c.log_factor = [=](const Sample& s) {
    return table[3 * static_cast<int>(Scalar(s, "a")) + static_cast<int>(Scalar(s, "b"))];
  };
  c.points = {Value(0.0), Value(1.0)};
  c.graph->Finalize();
  CheckNode(c, 22);
}
// ---- Nodes driven directly ------------------------------------------------------------------
//
// The tests below bind a node by hand (SlotInfo per slot, flat moment arrays, SlotView), as
// FactorGraph does, and call AccumulateMessage and AverageEnergy on factor ranges.

/// A hidden element's q in textbook parameters, with a sampler of its own.
struct Q {
  Family family = Family::kGaussian;
  Vector mean;       // Gaussian (size 1) and MvGaussian
  Matrix precision;  // Gaussian (1 x 1) and MvGaussian
  double shape = 1.0, rate = 1.0;  // Gamma
  double dof = 1.0;                // Wishart
  Matrix scale;                    // Wishart
};

Q RandomQ(Family family, int d, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal;
  Q q;
  q.family = family;
  switch (family) {
    case Family::kGaussian:
      q.mean = Vector::Constant(1, normal(rng));
      q.precision = Matrix::Constant(1, 1, 0.5 + 2.0 * uniform(rng));
      break;
    case Family::kMvGaussian:
      q.mean = Vector(d);
      for (int j = 0; j < d; ++j) q.mean[j] = normal(rng);
      q.precision = RandomSpd(rng, d, 1.5);
      break;
    case Family::kGamma:
      q.shape = 2.0 + 3.0 * uniform(rng);
      q.rate = 0.5 + 1.5 * uniform(rng);
      break;
    case Family::kWishart:
      q.dof = d + 2.0 + 2.0 * uniform(rng);
      q.scale = RandomSpd(rng, d, 0.4);
      break;
    default: ADD_FAILURE() << "no random q for " << FamilyName(family);
  }
  return q;
}

/// η of q, through vfe's constructors (whose moments are what a node reads).
Vector NaturalOf(const Q& q, int d) {
  Vector eta(StatSize(q.family, d));
  switch (q.family) {
    case Family::kGaussian: Gaussian(q.mean[0], q.precision(0, 0)).WriteNatural(eta.data()); break;
    case Family::kMvGaussian: MvGaussian(q.mean, q.precision).WriteNatural(eta.data()); break;
    case Family::kGamma: Gamma(q.shape, q.rate).WriteNatural(eta.data()); break;
    case Family::kWishart: Wishart(q.dof, q.scale).WriteNatural(eta.data()); break;
    default: break;
  }
  return eta;
}

/// A draw from q: normal by a Cholesky factor of the precision, gamma by the standard
/// library, Wishart by Bartlett's decomposition Λ = L A Aᵀ Lᵀ (V = L Lᵀ, A lower triangular,
/// A_ii² ~ χ²(ν − i), i = 0..D−1, A_ij ~ N(0, 1) below the diagonal).
Matrix SampleOf(const Q& q, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  switch (q.family) {
    case Family::kGaussian:
      return Matrix::Constant(1, 1, q.mean[0] + normal(rng) / std::sqrt(q.precision(0, 0)));
    case Family::kMvGaussian: {
      const Eigen::Index d = q.mean.size();
      Vector z(d);
      for (Eigen::Index j = 0; j < d; ++j) z[j] = normal(rng);
      const Eigen::LLT<Matrix> llt(q.precision);  // W = L Lᵀ, so L⁻ᵀz has covariance W⁻¹
      return Vector(q.mean + llt.matrixU().solve(z));
    }
    case Family::kGamma:
      return Matrix::Constant(1, 1, std::gamma_distribution<double>(q.shape, 1.0 / q.rate)(rng));
    case Family::kWishart: {
      const Eigen::Index d = q.scale.rows();
      Matrix a = Matrix::Zero(d, d);
      for (Eigen::Index i = 0; i < d; ++i) {
        a(i, i) = std::sqrt(std::chi_squared_distribution<double>(q.dof - i)(rng));
        for (Eigen::Index j = 0; j < i; ++j) a(i, j) = normal(rng);
      }
      const Matrix la = Matrix(q.scale.llt().matrixL()) * a;
      return la * la.transpose();
    }
    default: break;
  }
  return Matrix();
}

/// A value in the support of `family` for an observed element or a constant.
Matrix RandomValue(Family family, int d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  switch (family) {
    case Family::kGaussian: return Matrix::Constant(1, 1, 1.5 * normal(rng));
    case Family::kGamma: return Matrix::Constant(1, 1, 0.3 + 2.0 * uniform(rng));
    case Family::kMvGaussian: {
      Vector x(d);
      for (int j = 0; j < d; ++j) x[j] = 1.5 * normal(rng);
      return x;
    }
    case Family::kWishart: return RandomSpd(rng, d, 1.0);
    default: break;
  }
  return Matrix();
}

/// How a slot is connected: hidden or observed, one element for the plate or one per factor.
enum class Link { kHiddenShared, kHiddenEach, kObservedShared, kObservedEach };

/// What a plate connects to one slot: a hidden q or an observed value per element.
struct SlotSpec {
  std::string name;
  Family family = Family::kGaussian;
  int dim = 1;
  bool shared = true;
  bool observed = false;
  std::vector<Q> q;           // hidden: one per element
  std::vector<Matrix> value;  // observed: one per element
  size_t count() const { return observed ? value.size() : q.size(); }
};

SlotSpec MakeSlot(const std::string& name, Family family, int d, Link link, size_t num_factors,
                  std::mt19937_64& rng) {
  SlotSpec slot;
  slot.name = name;
  slot.family = family;
  slot.dim = d;
  slot.shared = link == Link::kHiddenShared || link == Link::kObservedShared;
  slot.observed = link == Link::kObservedShared || link == Link::kObservedEach;
  const size_t count = slot.shared ? 1 : num_factors;
  for (size_t i = 0; i < count; ++i) {
    if (slot.observed) {
      slot.value.push_back(RandomValue(family, d, rng));
    } else {
      slot.q.push_back(RandomQ(family, d, rng));
    }
  }
  return slot;
}

/// log f_n given the value at every slot of factor n (scalars 1 x 1, vectors D x 1).
using LogFactor = std::function<double(const std::vector<Matrix>& x, size_t n)>;

/// One slot of one factor as a closed-form expectation sees it: a hidden element's q, or a
/// value (observed, or the point at which a message is compared).
struct Arg {
  Family family = Family::kGaussian;
  int dim = 1;
  const Q* q = nullptr;  // null for a value
  Matrix value;
};

/// E_q[log f_n] in closed form from the textbook parameters of every slot of factor n.
using ExpectedLogFactor = std::function<double(const std::vector<Arg>& x, size_t n)>;

// Expectations under q of a normal, gamma or Wishart element, from its textbook parameters
// (Bishop, PRML, B.26–B.27, B.79–B.81); a value is its own expectation.

Vector MeanOf(const Arg& x) { return x.q ? x.q->mean : Vector(x.value.col(0)); }
Matrix CovarianceOf(const Arg& x) {
  return x.q ? Matrix(x.q->precision.inverse()) : Matrix(Matrix::Zero(x.dim, x.dim));
}
/// E[x] and E[log x] of a Gamma element.
double GammaMean(const Arg& x) { return x.q ? x.q->shape / x.q->rate : x.value(0, 0); }
double GammaMeanLog(const Arg& x) {
  return x.q ? Digamma(x.q->shape) - std::log(x.q->rate) : std::log(x.value(0, 0));
}
/// E[Λ] and E[log|Λ|] of a Wishart element, or of τ·I (M x M) for a Gamma one.
Matrix PrecisionMean(const Arg& w, int m) {
  if (w.family == Family::kGamma) return GammaMean(w) * Matrix::Identity(m, m);
  return w.q ? Matrix(w.q->dof * w.q->scale) : w.value;
}
double PrecisionMeanLogDet(const Arg& w, int m) {
  if (w.family == Family::kGamma) return m * GammaMeanLog(w);
  if (!w.q) return std::log(w.value.determinant());
  double sum = w.dim * std::log(2.0) + std::log(w.q->scale.determinant());
  for (int i = 1; i <= w.dim; ++i) sum += Digamma(0.5 * (w.q->dof + 1 - i));
  return sum;
}
/// E[log N(y | A·x, Λ⁻¹)] = ½ E[log|Λ|] − (M/2) log 2π
///   − ½ tr(E[Λ] (Σ_y + A Σ_x Aᵀ + (E[y] − A E[x])(E[y] − A E[x])ᵀ)).
double ExpectedLogNormal(const Arg& y, const Matrix& a, const Arg& x, const Arg& w) {
  const int m = static_cast<int>(a.rows());
  const Vector r = MeanOf(y) - a * MeanOf(x);
  const Matrix second = CovarianceOf(y) + a * CovarianceOf(x) * a.transpose() + r * r.transpose();
  return 0.5 * PrecisionMeanLogDet(w, m) - 0.5 * m * testing::kLogTwoPi -
         0.5 * (PrecisionMean(w, m) * second).trace();
}

/// A plate of one node type with its connected elements, and the textbook log f_n.
struct PlateCase {
  std::string name;
  std::function<std::unique_ptr<Node>()> make_node;
  std::vector<SlotSpec> slots;
  size_t num_factors = 1;
  LogFactor log_factor;
  ExpectedLogFactor expected_log_factor;
};

/// A node bound and prepared by hand on the moments of a case. With `offsets`, the
/// per-factor elements are stored in reverse order and read through SlotView::offsets.
class BoundNode {
 public:
  explicit BoundNode(const PlateCase& c, bool offsets = false) : case_(c), node_(c.make_node()) {
    const size_t n = c.num_factors;
    std::vector<SlotInfo> infos;
    int max_dim = 1;
    for (const SlotSpec& s : c.slots) {
      SlotInfo info;
      info.name = s.name;
      info.family = s.family;
      info.dim = s.dim;
      info.shared = s.shared;
      info.observed = s.observed;
      info.variable = "variable '" + s.name + "'";
      infos.push_back(info);
      max_dim = std::max(max_dim, s.dim);
    }
    node_->Bind(infos, n, "plate 'test'");
    moments_.resize(c.slots.size());
    offsets_.resize(c.slots.size());
    for (size_t k = 0; k < c.slots.size(); ++k) {
      const SlotSpec& s = c.slots[k];
      const int stat = StatSize(s.family, s.dim);
      const size_t count = s.count();
      EXPECT_EQ(count, s.shared ? 1 : n) << s.name;
      moments_[k].assign(count * stat, 0.0);
      Workspace ws(IsMultivariate(s.family) ? s.dim : 0);
      for (size_t i = 0; i < count; ++i) {
        double* out = moments_[k].data() + (offsets && !s.shared ? count - 1 - i : i) * stat;
        if (s.observed) {
          const Matrix& v = s.value[i];
          if (s.family == Family::kMvGaussian) {
            PointMass(Vector(v.col(0))).Moments(s.family, out, s.dim);
          } else if (s.family == Family::kWishart) {
            PointMass(v).Moments(s.family, out, s.dim);
          } else {
            PointMass(v(0, 0)).Moments(s.family, out, s.dim);
          }
        } else {
          const Vector eta = NaturalOf(s.q[i], s.dim);
          EXPECT_TRUE(MomentsFromNatural(s.family, s.dim, eta.data(), out, ws)) << s.name;
        }
      }
      SlotView view;
      view.data = moments_[k].data();
      if (!s.shared && offsets) {
        for (size_t f = 0; f < n; ++f) offsets_[k].push_back((n - 1 - f) * stat);
        view.offsets = offsets_[k].data();
      } else {
        view.stride = s.shared ? 0 : stat;
      }
      views_.push_back(view);
    }
    views_.push_back(SlotView{});  // no pair of a cluster: the view after the last slot is empty
    ws_.Resize(max_dim);
    node_->Prepare(views_.data(), n);
  }

  /// Σ_{n ∈ [begin, end)} m_{n→slot}, added by the node to an η that starts at 0.25 (so that
  /// overwriting instead of adding shows).
  Vector Message(int slot, size_t begin, size_t end) {
    const SlotSpec& s = case_.slots[slot];
    Vector eta = Vector::Constant(StatSize(s.family, s.dim), 0.25);
    node_->AccumulateMessage(slot, begin, end, views_.data(), eta.data(), ws_);
    return (eta.array() - 0.25).matrix();
  }
  double Energy(size_t begin, size_t end) {
    return node_->AverageEnergy(begin, end, views_.data(), ws_);
  }

  /// One draw of every element: observed ones at their values, hidden ones from their q.
  std::vector<std::vector<Matrix>> Draw(std::mt19937_64& rng) const {
    std::vector<std::vector<Matrix>> x(case_.slots.size());
    for (size_t k = 0; k < case_.slots.size(); ++k) {
      const SlotSpec& s = case_.slots[k];
      if (s.observed) {
        x[k] = s.value;
      } else {
        for (const Q& q : s.q) x[k].push_back(SampleOf(q, rng));
      }
    }
    return x;
  }
  /// Σ_{n ∈ [begin, end)} log f_n at a draw.
  double LogFactors(const std::vector<std::vector<Matrix>>& x, size_t begin, size_t end) const {
    double sum = 0.0;
    std::vector<Matrix> args(x.size());
    for (size_t n = begin; n < end; ++n) {
      for (size_t k = 0; k < x.size(); ++k) args[k] = x[k][case_.slots[k].shared ? 0 : n];
      sum += case_.log_factor(args, n);
    }
    return sum;
  }

 private:
  const PlateCase& case_;
  std::unique_ptr<Node> node_;
  std::vector<std::vector<double>> moments_;
  std::vector<std::vector<uint64_t>> offsets_;
  std::vector<SlotView> views_;
  Workspace ws_;
};

/// The arguments of factor n for a closed-form expectation; with `slot` ≥ 0, that slot at
/// the value `x`.
std::vector<Arg> ArgsOf(const PlateCase& c, size_t n, int slot = -1, const Matrix& x = Matrix()) {
  std::vector<Arg> args(c.slots.size());
  for (size_t k = 0; k < c.slots.size(); ++k) {
    const SlotSpec& s = c.slots[k];
    const size_t element = s.shared ? 0 : n;
    args[k].family = s.family;
    args[k].dim = s.dim;
    if (static_cast<int>(k) == slot) {
      args[k].value = x;
    } else if (s.observed) {
      args[k].value = s.value[element];
    } else {
      args[k].q = &s.q[element];
    }
  }
  return args;
}

/// Values of a target in `family` at which messages are compared.
std::vector<Matrix> TargetPoints(Family family, int d) {
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal;
  switch (family) {
    case Family::kGaussian: return {Value(-1.3), Value(0.4), Value(2.2)};
    case Family::kGamma: return {Value(0.4), Value(1.1), Value(2.7)};
    case Family::kMvGaussian: {
      std::vector<Matrix> points(3, Matrix(d, 1));
      for (Matrix& p : points)
        for (int j = 0; j < d; ++j) p(j, 0) = 1.5 * normal(rng);
      return points;
    }
    case Family::kWishart:
      return {Matrix::Identity(d, d), RandomSpd(rng, d, 1.0), RandomSpd(rng, d, 0.4)};
    default: break;
  }
  return {};
}

/// True when no slot but `except` is hidden: expectations are then exact.
bool OthersObserved(const PlateCase& c, int except) {
  for (size_t k = 0; k < c.slots.size(); ++k)
    if (static_cast<int>(k) != except && !c.slots[k].observed) return false;
  return true;
}

/// The message from factors [begin, end) to `slot` (shared, or one factor) against
/// E_{q\x}[log f] at TargetPoints: η·(T(x_i) − T(x_0)) = E[Σ_n log f_n(x_i, ·) − log f_n(x_0, ·)],
/// common draws of the other elements for all points. Exact when every other slot is observed.
void ExpectMessageMatches(const PlateCase& c, int slot, size_t begin, size_t end, uint64_t seed,
                          int samples = 10000) {
  const SlotSpec& target = c.slots[slot];
  SCOPED_TRACE(c.name + ": message to '" + target.name + "' from factors [" +
               std::to_string(begin) + ", " + std::to_string(end) + ")");
  ASSERT_TRUE(target.shared || end == begin + 1);
  BoundNode node(c);
  const Vector eta = node.Message(slot, begin, end);
  const std::vector<Matrix> points = TargetPoints(target.family, target.dim);
  if (OthersObserved(c, slot)) samples = 2;
  std::vector<testing::RunningMean> difference(points.size());
  std::mt19937_64 rng(seed);
  const size_t element = target.shared ? 0 : begin;
  for (int s = 0; s < samples; ++s) {
    std::vector<std::vector<Matrix>> x = node.Draw(rng);
    x[slot][element] = points[0];
    const double at_first = node.LogFactors(x, begin, end);
    for (size_t i = 1; i < points.size(); ++i) {
      x[slot][element] = points[i];
      difference[i].Add(node.LogFactors(x, begin, end) - at_first);
    }
  }
  for (size_t i = 1; i < points.size(); ++i) {
    const double message = eta.dot(Statistic(target.family, points[i], target.dim) -
                                   Statistic(target.family, points[0], target.dim));
    const double expected = difference[i].mean();
    EXPECT_NEAR(message, expected,
                5 * difference[i].standard_error() + 1e-9 * (1 + std::abs(expected)))
        << "point " << i;
    if (!c.expected_log_factor) continue;
    double exact = 0.0;  // the same difference in closed form
    for (size_t n = begin; n < end; ++n)
      exact += c.expected_log_factor(ArgsOf(c, n, slot, points[i]), n) -
               c.expected_log_factor(ArgsOf(c, n, slot, points[0]), n);
    EXPECT_NEAR(message, exact, 1e-9 * (1 + std::abs(exact))) << "point " << i << ", closed form";
  }
}

/// AverageEnergy over [begin, end) against −E_q[Σ_n log f_n] by sampling every element
/// (exact when every slot is observed).
void ExpectEnergyMatches(const PlateCase& c, size_t begin, size_t end, uint64_t seed,
                         int samples = 10000) {
  SCOPED_TRACE(c.name + ": energy of factors [" + std::to_string(begin) + ", " +
               std::to_string(end) + ")");
  BoundNode node(c);
  const double energy = node.Energy(begin, end);
  if (OthersObserved(c, -1)) samples = 2;
  testing::RunningMean estimate;
  std::mt19937_64 rng(seed);
  for (int s = 0; s < samples; ++s) estimate.Add(-node.LogFactors(node.Draw(rng), begin, end));
  EXPECT_NEAR(energy, estimate.mean(),
              5 * estimate.standard_error() + 1e-9 * (1 + std::abs(estimate.mean())));
  if (!c.expected_log_factor) return;
  double exact = 0.0;  // −E_q[Σ_n log f_n] in closed form
  for (size_t n = begin; n < end; ++n) exact -= c.expected_log_factor(ArgsOf(c, n), n);
  EXPECT_NEAR(energy, exact, 1e-9 * (1 + std::abs(exact))) << "closed form";
}

/// Plate consistency for every hidden slot's message and for the energy: [0, N) equals the
/// sum of the single factors [n, n + 1) and the sum of [0, k) and [k, N) for k = 0, 2, N
/// (only [0, N) may use sums cached in Prepare); the layout through offsets gives the same.
void ExpectPlateSumsConsistent(const PlateCase& c) {
  SCOPED_TRACE(c.name + ": plate sums");
  const size_t n = c.num_factors;
  BoundNode node(c);
  BoundNode reversed(c, /*offsets=*/true);
  auto tolerance = [](const Vector& v) { return 1e-10 * (1.0 + v.cwiseAbs().maxCoeff()); };
  for (size_t slot = 0; slot < c.slots.size(); ++slot) {
    if (c.slots[slot].observed) continue;
    const int s = static_cast<int>(slot);
    const std::string what = "message to '" + c.slots[slot].name + "'";
    const Vector whole = node.Message(s, 0, n);
    Vector singles = Vector::Zero(whole.size());
    for (size_t f = 0; f < n; ++f) singles += node.Message(s, f, f + 1);
    ExpectMatrixNear(singles, whole, tolerance(whole), what + ", single factors");
    for (size_t k : {size_t{0}, std::min<size_t>(2, n), n}) {
      const Vector split = node.Message(s, 0, k) + node.Message(s, k, n);
      ExpectMatrixNear(split, whole, tolerance(whole), what + ", split at " + std::to_string(k));
    }
    ExpectMatrixNear(reversed.Message(s, 0, n), whole, tolerance(whole), what + ", offsets");
    ExpectMatrixNear(reversed.Message(s, 1, n), node.Message(s, 1, n), tolerance(whole),
                     what + ", offsets, factors [1, N)");
  }
  const double whole = node.Energy(0, n);
  const double tol = 1e-10 * (1.0 + std::abs(whole));
  double singles = 0.0;
  for (size_t f = 0; f < n; ++f) singles += node.Energy(f, f + 1);
  EXPECT_NEAR(singles, whole, tol) << "energy, single factors";
  for (size_t k : {size_t{0}, std::min<size_t>(2, n), n})
    EXPECT_NEAR(node.Energy(0, k) + node.Energy(k, n), whole, tol) << "energy, split at " << k;
  EXPECT_NEAR(reversed.Energy(0, n), whole, tol) << "energy, offsets";
}

/// Everything for a plate of several factors: consistency, the message to every hidden slot
/// (the whole plate for a shared one, the last factor for one per factor) and the energy of
/// the whole plate against Monte Carlo.
void ExpectPlateMatches(const PlateCase& c, uint64_t seed) {
  ExpectPlateSumsConsistent(c);
  const size_t n = c.num_factors;
  for (size_t slot = 0; slot < c.slots.size(); ++slot) {
    if (c.slots[slot].observed) continue;
    if (c.slots[slot].shared) {
      ExpectMessageMatches(c, static_cast<int>(slot), 0, n, seed + slot, 5000);
    } else {
      ExpectMessageMatches(c, static_cast<int>(slot), n - 1, n, seed + slot, 5000);
    }
  }
  ExpectEnergyMatches(c, 0, n, seed + 100, 5000);
}

const char* LinkName(Link link) {
  switch (link) {
    case Link::kHiddenShared: return "hidden";
    case Link::kHiddenEach: return "hidden per factor";
    case Link::kObservedShared: return "constant";
    case Link::kObservedEach: return "observed per factor";
  }
  return "?";
}

// ---- Gaussian, directly ---------------------------------------------------------------------

PlateCase GaussianCase(Link out, Link mean, Link precision, size_t n, std::mt19937_64& rng) {
  PlateCase c;
  c.name = std::string("Gaussian(out ") + LinkName(out) + ", mean " + LinkName(mean) +
           ", precision " + LinkName(precision) + ", N = " + std::to_string(n) + ")";
  c.make_node = [] { return MakeGaussianNode(); };
  c.slots = {MakeSlot("out", Family::kGaussian, 1, out, n, rng),
             MakeSlot("mean", Family::kGaussian, 1, mean, n, rng),
             MakeSlot("precision", Family::kGamma, 1, precision, n, rng)};
  c.num_factors = n;
  c.log_factor = [](const std::vector<Matrix>& x, size_t) {
    return testing::LogGaussian(x[0](0, 0), x[1](0, 0), x[2](0, 0));
  };
  c.expected_log_factor = [](const std::vector<Arg>& x, size_t) {
    return ExpectedLogNormal(x[0], Matrix::Identity(1, 1), x[1], x[2]);
  };
  return c;
}

constexpr Link kHidden = Link::kHiddenShared;
constexpr Link kHiddenEach = Link::kHiddenEach;
constexpr Link kConstant = Link::kObservedShared;
constexpr Link kObservedEach = Link::kObservedEach;

TEST(GaussianNode, MessageToOutMatchesExpectedLogFactor) {
  std::mt19937_64 rng(101);
  ExpectMessageMatches(GaussianCase(kHidden, kHidden, kHidden, 1, rng), 0, 0, 1, 1);
  ExpectMessageMatches(GaussianCase(kHidden, kHidden, kConstant, 1, rng), 0, 0, 1, 2);
  ExpectMessageMatches(GaussianCase(kHidden, kConstant, kConstant, 1, rng), 0, 0, 1, 3);
}

TEST(GaussianNode, MessageToMeanMatchesExpectedLogFactor) {
  std::mt19937_64 rng(102);
  ExpectMessageMatches(GaussianCase(kHidden, kHidden, kHidden, 1, rng), 1, 0, 1, 1);
  ExpectMessageMatches(GaussianCase(kHidden, kHidden, kConstant, 1, rng), 1, 0, 1, 2);
  ExpectMessageMatches(GaussianCase(kConstant, kHidden, kConstant, 1, rng), 1, 0, 1, 3);
}

TEST(GaussianNode, MessageToPrecisionMatchesExpectedLogFactor) {
  std::mt19937_64 rng(103);
  ExpectMessageMatches(GaussianCase(kHidden, kHidden, kHidden, 1, rng), 2, 0, 1, 1);
  ExpectMessageMatches(GaussianCase(kConstant, kHidden, kHidden, 1, rng), 2, 0, 1, 2);
  ExpectMessageMatches(GaussianCase(kConstant, kConstant, kHidden, 1, rng), 2, 0, 1, 3);
}

TEST(GaussianNode, AverageEnergyMatchesMonteCarlo) {
  std::mt19937_64 rng(104);
  ExpectEnergyMatches(GaussianCase(kHidden, kHidden, kHidden, 1, rng), 0, 1, 1);
  ExpectEnergyMatches(GaussianCase(kHidden, kHidden, kConstant, 1, rng), 0, 1, 2);
  ExpectEnergyMatches(GaussianCase(kConstant, kConstant, kConstant, 1, rng), 0, 1, 3);
}

TEST(GaussianNode, PlateSumsMatchSingleFactorsAndMonteCarlo) {
  std::mt19937_64 rng(105);
  // Observed outs with the other slots shared use cached sums of the data; so do observed
  // means with a shared out.
  ExpectPlateMatches(GaussianCase(kObservedEach, kHidden, kHidden, 5, rng), 1);
  ExpectPlateMatches(GaussianCase(kObservedEach, kHidden, kConstant, 5, rng), 2);
  ExpectPlateMatches(GaussianCase(kHidden, kObservedEach, kHidden, 5, rng), 3);
  ExpectPlateMatches(GaussianCase(kObservedEach, kHidden, kObservedEach, 5, rng), 4);
  ExpectPlateMatches(GaussianCase(kHiddenEach, kHiddenEach, kHidden, 5, rng), 5);
  ExpectPlateMatches(GaussianCase(kHiddenEach, kHidden, kHiddenEach, 6, rng), 6);
}

// ---- MvGaussian, directly -------------------------------------------------------------------

/// The precision matrix a precision slot stands for: a Wishart value, or τ·I.
Matrix PrecisionMatrix(const Matrix& w, int d) {
  return w.size() == 1 && d > 1 ? Matrix(w(0, 0) * Matrix::Identity(d, d)) : w;
}

PlateCase MvGaussianCase(int d, Link out, Link mean, Link precision, Family precision_family,
                        size_t n, std::mt19937_64& rng) {
  PlateCase c;
  c.name = std::string("MvGaussian(D = ") + std::to_string(d) + ", out " + LinkName(out) +
           ", mean " + LinkName(mean) + ", " + FamilyName(precision_family) + " precision " +
           LinkName(precision) + ", N = " + std::to_string(n) + ")";
  c.make_node = [] { return MakeMvGaussianNode(); };
  c.slots = {MakeSlot("out", Family::kMvGaussian, d, out, n, rng),
             MakeSlot("mean", Family::kMvGaussian, d, mean, n, rng),
             MakeSlot("precision", precision_family,
                      precision_family == Family::kWishart ? d : 1, precision, n, rng)};
  c.num_factors = n;
  c.log_factor = [d](const std::vector<Matrix>& x, size_t) {
    return testing::LogNormal(x[0], x[1], PrecisionMatrix(x[2], d));
  };
  c.expected_log_factor = [d](const std::vector<Arg>& x, size_t) {
    return ExpectedLogNormal(x[0], Matrix::Identity(d, d), x[1], x[2]);
  };
  return c;
}

TEST(MvGaussianNode, MessageToOutMatchesExpectedLogFactor) {
  std::mt19937_64 rng(201);
  for (Family w : {Family::kWishart, Family::kGamma}) {
    ExpectMessageMatches(MvGaussianCase(2, kHidden, kHidden, kHidden, w, 1, rng), 0, 0, 1, 1);
    ExpectMessageMatches(MvGaussianCase(3, kHidden, kHidden, kConstant, w, 1, rng), 0, 0, 1, 2);
    ExpectMessageMatches(MvGaussianCase(2, kHidden, kConstant, kConstant, w, 1, rng), 0, 0, 1, 3);
  }
}

TEST(MvGaussianNode, MessageToMeanMatchesExpectedLogFactor) {
  std::mt19937_64 rng(202);
  for (Family w : {Family::kWishart, Family::kGamma}) {
    ExpectMessageMatches(MvGaussianCase(2, kHidden, kHidden, kHidden, w, 1, rng), 1, 0, 1, 1);
    ExpectMessageMatches(MvGaussianCase(3, kConstant, kHidden, kHidden, w, 1, rng), 1, 0, 1, 2);
    ExpectMessageMatches(MvGaussianCase(2, kConstant, kHidden, kConstant, w, 1, rng), 1, 0, 1, 3);
  }
}

TEST(MvGaussianNode, MessageToPrecisionMatchesExpectedLogFactor) {
  std::mt19937_64 rng(203);
  for (Family w : {Family::kWishart, Family::kGamma}) {
    ExpectMessageMatches(MvGaussianCase(2, kHidden, kHidden, kHidden, w, 1, rng), 2, 0, 1, 1);
    ExpectMessageMatches(MvGaussianCase(3, kConstant, kHidden, kHidden, w, 1, rng), 2, 0, 1, 2);
    ExpectMessageMatches(MvGaussianCase(2, kConstant, kConstant, kHidden, w, 1, rng), 2, 0, 1, 3);
  }
}

TEST(MvGaussianNode, AverageEnergyMatchesMonteCarlo) {
  std::mt19937_64 rng(204);
  for (Family w : {Family::kWishart, Family::kGamma}) {
    ExpectEnergyMatches(MvGaussianCase(2, kHidden, kHidden, kHidden, w, 1, rng), 0, 1, 1);
    ExpectEnergyMatches(MvGaussianCase(3, kHidden, kHidden, kConstant, w, 1, rng), 0, 1, 2);
    ExpectEnergyMatches(MvGaussianCase(2, kConstant, kConstant, kConstant, w, 1, rng), 0, 1, 3);
  }
}

TEST(MvGaussianNode, PlateSumsMatchSingleFactorsAndMonteCarlo) {
  std::mt19937_64 rng(205);
  for (Family w : {Family::kWishart, Family::kGamma}) {
    // Observed outs with a shared mean and precision use cached sums (either precision).
    ExpectPlateMatches(MvGaussianCase(2, kObservedEach, kHidden, kHidden, w, 5, rng), 1);
    ExpectPlateMatches(MvGaussianCase(2, kObservedEach, kHidden, kConstant, w, 5, rng), 2);
    ExpectPlateMatches(MvGaussianCase(2, kHidden, kObservedEach, kHidden, w, 5, rng), 3);
    ExpectPlateMatches(MvGaussianCase(2, kHiddenEach, kHidden, kHiddenEach, w, 5, rng), 4);
  }
}

// ---- LinearGaussian, directly ---------------------------------------------------------------

/// N(out | A·in, W⁻¹) with a shared M x K matrix A; `out`/`in` are Gaussian when M/K is 1
/// and `scalar_in_out` is set, MvGaussian otherwise.
PlateCase LinearGaussianCase(const Matrix& a, bool scalar_in_out, Link out, Link in,
                            Link precision, Family precision_family, size_t n,
                            std::mt19937_64& rng) {
  const int m = static_cast<int>(a.rows()), k = static_cast<int>(a.cols());
  const Family out_family = scalar_in_out && m == 1 ? Family::kGaussian : Family::kMvGaussian;
  const Family in_family = scalar_in_out && k == 1 ? Family::kGaussian : Family::kMvGaussian;
  PlateCase c;
  c.name = std::string("LinearGaussian(") + std::to_string(m) + "x" + std::to_string(k) +
           ", out " + FamilyName(out_family) + " " + LinkName(out) + ", in " +
           FamilyName(in_family) + " " + LinkName(in) + ", " + FamilyName(precision_family) +
           " precision " + LinkName(precision) + ", N = " + std::to_string(n) + ")";
  c.make_node = [a] { return MakeLinearGaussianNode(a); };
  c.slots = {MakeSlot("out", out_family, m, out, n, rng),
             MakeSlot("in", in_family, k, in, n, rng),
             MakeSlot("precision", precision_family,
                      precision_family == Family::kWishart ? m : 1, precision, n, rng)};
  c.num_factors = n;
  c.log_factor = [a, m](const std::vector<Matrix>& x, size_t) {
    return testing::LogNormal(x[0], a * x[1], PrecisionMatrix(x[2], m));
  };
  c.expected_log_factor = [a](const std::vector<Arg>& x, size_t) {
    return ExpectedLogNormal(x[0], a, x[1], x[2]);
  };
  return c;
}

/// The shared matrices under test: taller than wide, wider than tall, 1 x 1, a row, a column.
std::vector<std::pair<Matrix, bool>> LinearGaussianShapes() {
  Matrix tall(3, 2), wide(2, 3), row(1, 2), column(2, 1);
  tall << 1.0, 0.5, -0.2, 0.0, 2.0, 1.0;
  wide << 0.7, -1.0, 0.3, 1.2, 0.4, -0.6;
  row << 0.8, -1.5;
  column << 1.3, -0.4;
  return {{tall, false}, {wide, false}, {Matrix::Constant(1, 1, 1.7), true}, {row, true},
          {column, true}, {Matrix::Constant(1, 1, -0.6), false}};
}

TEST(LinearGaussianNode, MessageToOutMatchesExpectedLogFactor) {
  std::mt19937_64 rng(301);
  for (const auto& [a, scalar] : LinearGaussianShapes()) {
    for (Family w : {Family::kWishart, Family::kGamma}) {
      ExpectMessageMatches(LinearGaussianCase(a, scalar, kHidden, kHidden, kHidden, w, 1, rng),
                           0, 0, 1, 1);
      ExpectMessageMatches(
          LinearGaussianCase(a, scalar, kHidden, kConstant, kConstant, w, 1, rng), 0, 0, 1, 2);
    }
  }
}

TEST(LinearGaussianNode, MessageToInMatchesExpectedLogFactor) {
  std::mt19937_64 rng(302);
  for (const auto& [a, scalar] : LinearGaussianShapes()) {
    for (Family w : {Family::kWishart, Family::kGamma}) {
      ExpectMessageMatches(LinearGaussianCase(a, scalar, kHidden, kHidden, kHidden, w, 1, rng),
                           1, 0, 1, 1);
      ExpectMessageMatches(
          LinearGaussianCase(a, scalar, kConstant, kHidden, kConstant, w, 1, rng), 1, 0, 1, 2);
    }
  }
}

TEST(LinearGaussianNode, MessageToPrecisionMatchesExpectedLogFactor) {
  std::mt19937_64 rng(303);
  for (const auto& [a, scalar] : LinearGaussianShapes()) {
    for (Family w : {Family::kWishart, Family::kGamma}) {
      ExpectMessageMatches(LinearGaussianCase(a, scalar, kHidden, kHidden, kHidden, w, 1, rng),
                           2, 0, 1, 1);
      ExpectMessageMatches(
          LinearGaussianCase(a, scalar, kConstant, kConstant, kHidden, w, 1, rng), 2, 0, 1, 2);
    }
  }
}

TEST(LinearGaussianNode, AverageEnergyMatchesMonteCarlo) {
  std::mt19937_64 rng(304);
  for (const auto& [a, scalar] : LinearGaussianShapes()) {
    for (Family w : {Family::kWishart, Family::kGamma}) {
      ExpectEnergyMatches(LinearGaussianCase(a, scalar, kHidden, kHidden, kHidden, w, 1, rng),
                          0, 1, 1);
      ExpectEnergyMatches(
          LinearGaussianCase(a, scalar, kConstant, kConstant, kConstant, w, 1, rng), 0, 1, 2);
    }
  }
}

TEST(LinearGaussianNode, PlateSumsMatchSingleFactorsAndMonteCarlo) {
  std::mt19937_64 rng(305);
  for (const auto& [a, scalar] : LinearGaussianShapes()) {
    for (Family w : {Family::kWishart, Family::kGamma}) {
      // Observed outs with a shared in and precision use cached sums.
      ExpectPlateMatches(
          LinearGaussianCase(a, scalar, kObservedEach, kHidden, kHidden, w, 5, rng), 1);
      ExpectPlateSumsConsistent(
          LinearGaussianCase(a, scalar, kObservedEach, kHidden, kConstant, w, 5, rng));
      ExpectPlateSumsConsistent(
          LinearGaussianCase(a, scalar, kHiddenEach, kHiddenEach, kHidden, w, 5, rng));
      ExpectPlateSumsConsistent(
          LinearGaussianCase(a, scalar, kObservedEach, kHidden, kObservedEach, w, 5, rng));
    }
  }
  Matrix tall(3, 2);
  tall << 1.0, 0.5, -0.2, 0.0, 2.0, 1.0;
  ExpectPlateMatches(LinearGaussianCase(tall, false, kHiddenEach, kHiddenEach, kHidden,
                                        Family::kWishart, 5, rng), 2);
  ExpectPlateMatches(LinearGaussianCase(tall, false, kObservedEach, kHidden, kConstant,
                                        Family::kGamma, 5, rng), 3);
}

// ---- LinearGaussian with one design row per factor, directly ---------------------------------

/// out_n ~ N(x_nᵀ in, W⁻¹) with x_nᵀ the rows of `design`, out Gaussian (or MvGaussian of
/// dimension 1) and in MvGaussian (K columns) or Gaussian (K = 1).
PlateCase RowsCase(const Matrix& design, Family out_family, Link out, Link in, Link precision,
                  Family precision_family, std::mt19937_64& rng) {
  const size_t n = static_cast<size_t>(design.rows());
  const int k = static_cast<int>(design.cols());
  const Family in_family = k == 1 ? Family::kGaussian : Family::kMvGaussian;
  PlateCase c;
  c.name = std::string("LinearGaussian rows(") + std::to_string(n) + "x" + std::to_string(k) +
           ", out " + FamilyName(out_family) + " " + LinkName(out) + ", in " + LinkName(in) +
           ", " + FamilyName(precision_family) + " precision " + LinkName(precision) + ")";
  c.make_node = [design] { return MakeLinearGaussianRowsNode(design); };
  c.slots = {MakeSlot("out", out_family, 1, out, n, rng),
             MakeSlot("in", in_family, k, in, n, rng),
             MakeSlot("precision", precision_family, 1, precision, n, rng)};
  c.num_factors = n;
  c.log_factor = [design](const std::vector<Matrix>& x, size_t f) {
    return testing::LogGaussian(x[0](0, 0), (design.row(f) * x[1])(0, 0), x[2](0, 0));
  };
  c.expected_log_factor = [design](const std::vector<Arg>& x, size_t f) {
    return ExpectedLogNormal(x[0], design.row(f), x[1], x[2]);
  };
  return c;
}

Matrix Design(int rows, int columns, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Matrix design(rows, columns);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < columns; ++j) design(i, j) = normal(rng);
  return design;
}

TEST(LinearGaussianRowsNode, MessageToOutMatchesExpectedLogFactor) {
  std::mt19937_64 rng(401);
  for (Family w : {Family::kGamma, Family::kWishart}) {
    for (int k : {1, 3}) {
      ExpectMessageMatches(
          RowsCase(Design(1, k, 1), Family::kGaussian, kHidden, kHidden, kHidden, w, rng), 0, 0,
          1, 1);
      // Factor 3 of 4, so that the message reads the row and elements of its own factor.
      ExpectMessageMatches(RowsCase(Design(4, k, 2), Family::kGaussian, kHiddenEach, kHiddenEach,
                                    kHiddenEach, w, rng), 0, 3, 4, 2);
    }
  }
}

TEST(LinearGaussianRowsNode, MessageToInMatchesExpectedLogFactor) {
  std::mt19937_64 rng(402);
  for (Family w : {Family::kGamma, Family::kWishart}) {
    for (int k : {1, 3}) {
      ExpectMessageMatches(
          RowsCase(Design(1, k, 3), Family::kGaussian, kHidden, kHidden, kHidden, w, rng), 1, 0,
          1, 1);
      ExpectMessageMatches(
          RowsCase(Design(1, k, 4), Family::kGaussian, kConstant, kHidden, kConstant, w, rng), 1,
          0, 1, 2);
    }
  }
}

TEST(LinearGaussianRowsNode, MessageToPrecisionMatchesExpectedLogFactor) {
  std::mt19937_64 rng(403);
  for (Family w : {Family::kGamma, Family::kWishart}) {
    for (int k : {1, 3}) {
      ExpectMessageMatches(
          RowsCase(Design(1, k, 5), Family::kGaussian, kHidden, kHidden, kHidden, w, rng), 2, 0,
          1, 1);
      ExpectMessageMatches(
          RowsCase(Design(1, k, 6), Family::kGaussian, kConstant, kConstant, kHidden, w, rng), 2,
          0, 1, 2);
    }
  }
}

TEST(LinearGaussianRowsNode, AverageEnergyMatchesMonteCarlo) {
  std::mt19937_64 rng(404);
  for (Family w : {Family::kGamma, Family::kWishart}) {
    for (int k : {1, 3}) {
      ExpectEnergyMatches(
          RowsCase(Design(1, k, 7), Family::kGaussian, kHidden, kHidden, kHidden, w, rng), 0, 1,
          1);
      ExpectEnergyMatches(
          RowsCase(Design(1, k, 8), Family::kGaussian, kConstant, kConstant, kConstant, w, rng),
          0, 1, 2);
    }
  }
}

TEST(LinearGaussianRowsNode, PlateSumsMatchSingleFactorsAndMonteCarlo) {
  std::mt19937_64 rng(405);
  for (Family w : {Family::kGamma, Family::kWishart}) {
    for (Family out : {Family::kGaussian, Family::kMvGaussian}) {
      // Regression: observed targets, shared weights and noise precision (cached sums with a
      // Gamma precision).
      ExpectPlateMatches(RowsCase(Design(6, 3, 9), out, kObservedEach, kHidden, kHidden, w, rng),
                         1);
      ExpectPlateMatches(
          RowsCase(Design(5, 2, 10), out, kObservedEach, kHidden, kConstant, w, rng), 2);
      ExpectPlateMatches(
          RowsCase(Design(5, 1, 11), out, kHiddenEach, kHidden, kHiddenEach, w, rng), 3);
      ExpectPlateSumsConsistent(
          RowsCase(Design(7, 2, 12), out, kHiddenEach, kHiddenEach, kHidden, w, rng));
    }
  }
}

// ---- Gamma and Wishart, directly ------------------------------------------------------------

PlateCase GammaCase(double shape, Link out, Link rate, size_t n, std::mt19937_64& rng) {
  PlateCase c;
  c.name = "Gamma(shape " + std::to_string(shape) + ", out " + LinkName(out) + ", rate " +
           LinkName(rate) + ", N = " + std::to_string(n) + ")";
  c.make_node = [shape] { return MakeGammaNode(shape); };
  c.slots = {MakeSlot("out", Family::kGamma, 1, out, n, rng),
             MakeSlot("rate", Family::kGamma, 1, rate, n, rng)};
  c.num_factors = n;
  c.log_factor = [shape](const std::vector<Matrix>& x, size_t) {
    return testing::LogGammaDensity(x[0](0, 0), shape, x[1](0, 0));
  };
  // a E[log b] − log Γ(a) + (a − 1) E[log x] − E[b] E[x]
  c.expected_log_factor = [shape](const std::vector<Arg>& x, size_t) {
    return shape * GammaMeanLog(x[1]) - std::lgamma(shape) +
           (shape - 1) * GammaMeanLog(x[0]) - GammaMean(x[1]) * GammaMean(x[0]);
  };
  return c;
}

TEST(GammaNode, MessageToOutMatchesExpectedLogFactor) {
  std::mt19937_64 rng(501);
  ExpectMessageMatches(GammaCase(2.5, kHidden, kHidden, 1, rng), 0, 0, 1, 1);
  ExpectMessageMatches(GammaCase(0.7, kHidden, kConstant, 1, rng), 0, 0, 1, 2);
}

TEST(GammaNode, MessageToRateMatchesExpectedLogFactor) {
  std::mt19937_64 rng(502);
  ExpectMessageMatches(GammaCase(2.5, kHidden, kHidden, 1, rng), 1, 0, 1, 1);
  ExpectMessageMatches(GammaCase(0.7, kConstant, kHidden, 1, rng), 1, 0, 1, 2);
}

TEST(GammaNode, AverageEnergyMatchesMonteCarlo) {
  std::mt19937_64 rng(503);
  ExpectEnergyMatches(GammaCase(2.5, kHidden, kHidden, 1, rng), 0, 1, 1);
  ExpectEnergyMatches(GammaCase(0.7, kHidden, kConstant, 1, rng), 0, 1, 2);
  ExpectEnergyMatches(GammaCase(3.0, kConstant, kConstant, 1, rng), 0, 1, 3);
}

TEST(GammaNode, PlateSumsMatchSingleFactorsAndMonteCarlo) {
  std::mt19937_64 rng(504);
  ExpectPlateMatches(GammaCase(2.5, kObservedEach, kHidden, 5, rng), 1);
  ExpectPlateMatches(GammaCase(1.5, kHiddenEach, kHidden, 5, rng), 2);
  ExpectPlateMatches(GammaCase(1.5, kHiddenEach, kConstant, 5, rng), 3);
  ExpectPlateMatches(GammaCase(4.0, kHidden, kHiddenEach, 5, rng), 4);
  ExpectPlateMatches(GammaCase(2.0, kHiddenEach, kHiddenEach, 5, rng), 5);
}

PlateCase WishartCase(double dof, const Matrix& scale, Link out, size_t n, std::mt19937_64& rng) {
  PlateCase c;
  const int d = static_cast<int>(scale.rows());
  c.name = "Wishart(dof " + std::to_string(dof) + ", D = " + std::to_string(d) + ", out " +
           LinkName(out) + ", N = " + std::to_string(n) + ")";
  c.make_node = [dof, scale] { return MakeWishartNode(dof, scale); };
  c.slots = {MakeSlot("out", Family::kWishart, d, out, n, rng)};
  c.num_factors = n;
  c.log_factor = [dof, scale](const std::vector<Matrix>& x, size_t) {
    return testing::LogWishart(x[0], dof, scale);
  };
  // ((ν − D − 1)/2) E[log|Λ|] − ½ tr(V⁻¹ E[Λ]) − (νD/2) log 2 − (ν/2) log|V| − log Γ_D(ν/2)
  c.expected_log_factor = [dof, scale, d](const std::vector<Arg>& x, size_t) {
    double log_multigamma = 0.25 * d * (d - 1) * std::log(M_PI);
    for (int i = 0; i < d; ++i) log_multigamma += std::lgamma(0.5 * (dof - i));
    return 0.5 * (dof - d - 1) * PrecisionMeanLogDet(x[0], d) -
           0.5 * (scale.inverse() * PrecisionMean(x[0], d)).trace() -
           0.5 * dof * d * std::log(2.0) - 0.5 * dof * std::log(scale.determinant()) -
           log_multigamma;
  };
  return c;
}

Matrix WishartScale(int d) {
  std::mt19937_64 rng(7);
  return RandomSpd(rng, d, 0.5);
}

TEST(WishartNode, MessageToOutMatchesExpectedLogFactor) {
  std::mt19937_64 rng(601);
  ExpectMessageMatches(WishartCase(4.5, WishartScale(2), kHidden, 1, rng), 0, 0, 1, 1);
  ExpectMessageMatches(WishartCase(3.0, WishartScale(3), kHidden, 1, rng), 0, 0, 1, 2);
  ExpectMessageMatches(WishartCase(2.5, WishartScale(1), kHidden, 1, rng), 0, 0, 1, 3);
}

TEST(WishartNode, AverageEnergyMatchesMonteCarlo) {
  std::mt19937_64 rng(602);
  ExpectEnergyMatches(WishartCase(4.5, WishartScale(2), kHidden, 1, rng), 0, 1, 1);
  ExpectEnergyMatches(WishartCase(3.0, WishartScale(3), kHidden, 1, rng), 0, 1, 2);
  ExpectEnergyMatches(WishartCase(5.0, WishartScale(3), kConstant, 1, rng), 0, 1, 3);
}

TEST(WishartNode, PlateSumsMatchSingleFactorsAndMonteCarlo) {
  std::mt19937_64 rng(603);
  ExpectPlateMatches(WishartCase(4.5, WishartScale(2), kHiddenEach, 5, rng), 1);
  ExpectPlateMatches(WishartCase(3.5, WishartScale(2), kHidden, 5, rng), 2);
  ExpectPlateMatches(WishartCase(6.0, WishartScale(3), kObservedEach, 4, rng), 3);
}

TEST(ChunkCache, RangesGetTheirDirectSumsAndStaleChunksAreSummedAgain) {
  // Values x_n = n + 1 seen through a view with a version; sums of x over ranges.
  const size_t n = 3 * ChunkCache::kChunk + 100;
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<double>(i + 1);
  std::atomic<uint64_t> version{0};
  SlotView view;
  view.data = x.data();
  view.stride = 1;
  view.version = &version;
  ChunkCache cache;
  cache.Reset(n, 1);
  ASSERT_TRUE(cache.Usable(view, view));
  EXPECT_FALSE(cache.Usable(SlotView{}, view));
  int fills = 0;
  auto sum = [&](size_t begin, size_t end) {
    double total = 0.0;
    cache.Visit(
        begin, end, view, view,
        [&](size_t b, size_t e, double* chunk) {
          ++fills;
          for (size_t i = b; i < e; ++i) chunk[0] += x[i];
        },
        [&](const double* chunk) { total += chunk[0]; },
        [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) total += x[i];
        });
    return total;
  };
  // Σ_{i=b}^{e−1} (i + 1), exact in doubles at these sizes.
  auto expected = [](size_t b, size_t e) { return 0.5 * (double(e) * (e + 1) - double(b) * (b + 1)); };
  const std::vector<std::pair<size_t, size_t>> ranges = {
      {0, n}, {0, 1024}, {5, 3000}, {1024, 2048}, {2048, n}, {3072, n}, {100, 200}, {0, 0}};
  for (const auto& [b, e] : ranges) EXPECT_EQ(sum(b, e), expected(b, e)) << b << ", " << e;
  EXPECT_EQ(fills, 4);  // each whole chunk once (the last one is cut by the plate's end)
  // A change the version records: the cached sums are stale and summed again.
  x[1500] += 1000.0;
  EXPECT_EQ(sum(0, n), expected(0, n));  // stale: still the old sum
  version.fetch_add(1);
  EXPECT_EQ(sum(0, n), expected(0, n) + 1000.0);
  EXPECT_EQ(fills, 8);
  cache.Reset(n, 1);  // forgets everything
  EXPECT_EQ(sum(1024, 2048), expected(1024, 2048) + 1000.0);
  EXPECT_EQ(fills, 9);
}

// ---- Poisson: counts with a Gamma rate, by type name ----------------------------------------

TEST(PoissonNode, GammaRatePosteriorAndEvidenceAreTheClosedForms) {
  // y_i ~ Poisson(λ), λ ~ Gamma(a, b): q(λ) = Gamma(a + Σy, b + n) and, the graph being a tree
  // with exact q, −F = log p(y) = log Γ(a + Σy) − log Γ(a) + a log b − (a + Σy) log(b + n)
  //   − Σ log y_i!.
  const double a = 2.0, b = 0.5;
  const std::vector<double> counts = {3, 1, 4, 0, 7};
  FactorGraph graph;
  const Variable rate = graph.AddVariable("rate", Family::kGamma);
  const Variable y = graph.AddObserved("y", counts);
  graph.AddGamma(rate, a, b);
  graph.AddFactor("Poisson", {{"out", y}, {"rate", rate}}, "counts");
  graph.Finalize();
  SchedulerOptions options;
  options.tolerance = 0;
  options.max_iterations = 3;
  const Result result = SequentialScheduler(options).Run(graph);
  double sum = 0, log_factorials = 0;
  for (double c : counts) {
    sum += c;
    log_factorials += std::lgamma(c + 1);
  }
  const double n = static_cast<double>(counts.size());
  const Gamma q = graph.Posterior<Gamma>(rate);
  EXPECT_NEAR(q.shape(), a + sum, 1e-12);
  EXPECT_NEAR(q.rate(), b + n, 1e-12);
  const double log_evidence = std::lgamma(a + sum) - std::lgamma(a) + a * std::log(b) -
                              (a + sum) * std::log(b + n) - log_factorials;
  EXPECT_NEAR(result.evidence_lower_bound(), log_evidence, 1e-10 * std::abs(log_evidence));
}

TEST(PoissonNode, CountsThatAreNotIntegersAreRefusedNamingTheFactor) {
  FactorGraph graph;
  const Variable rate = graph.AddVariable("rate", Family::kGamma);
  const Variable y = graph.AddObserved("y", std::vector<double>{3, 1.5});
  graph.AddGamma(rate, 2.0, 1.0);
  graph.AddFactor("Poisson", {{"out", y}, {"rate", rate}}, "counts");
  EXPECT_THAT([&] { graph.Finalize(); },
              ::testing::ThrowsMessage<ModelError>(::testing::HasSubstr(
                  "factor 'counts' (Poisson): 'out' expects counts (integers >= 0), got 1.5 at "
                  "factor 1")));
  EXPECT_FALSE(graph.finalized());

  // After Finalize, new data that the node refuses leave the old data in place.
  FactorGraph good;
  const Variable r = good.AddVariable("rate", Family::kGamma);
  const Variable counts = good.AddObserved("y", std::vector<double>{3, 1});
  good.AddGamma(r, 2.0, 1.0);
  good.AddFactor("Poisson", {{"out", counts}, {"rate", r}});
  good.Finalize();
  Scratch scratch = good.MakeScratch();
  const double before = good.FreeEnergy(scratch);
  EXPECT_THROW(good.SetObservedValues(counts, {2, -1}), ModelError);
  EXPECT_EQ(good.FreeEnergy(scratch), before);
  ASSERT_TRUE(good.UpdateElement(r.id(), 0, scratch));
  EXPECT_NEAR(good.Posterior<Gamma>(r).shape(), 2.0 + 4.0, 1e-12);
}

TEST(PoissonNode, HiddenOutOrAWrongRateFamilyIsRefusedNamingTheParameter) {
  FactorGraph graph;
  const Variable rate = graph.AddVariable("rate", Family::kGaussian);
  const Variable hidden = graph.AddVariable("x", Family::kGaussian);
  EXPECT_THAT([&] { graph.AddFactor("Poisson", {{"out", hidden}, {"rate", 1.0}}); },
              ::testing::ThrowsMessage<ParameterError>(::testing::HasSubstr(
                  "'out': expected observed data, found 'x' (Gaussian)")));
  const Variable y = graph.AddObserved("y", 2.0);
  EXPECT_THAT([&] { graph.AddFactor("Poisson", {{"out", y}, {"rate", rate}}, "c"); },
              ::testing::ThrowsMessage<ParameterError>(::testing::HasSubstr(
                  "factor 'c' (Poisson): 'rate': expected a positive number or a Gamma variable, "
                  "found 'rate' (Gaussian)")));
  EXPECT_THAT([&] { graph.AddFactor("Poisson", {{"out", y}, {"rat", 1.0}}); },
              ::testing::ThrowsMessage<ParameterError>(::testing::HasSubstr(
                  "unknown argument 'rat' (did you mean 'rate'?)")));
}

}  // namespace
}  // namespace vfe
