// Every node's messages and average energy against Monte Carlo with textbook densities.
//
// Message: a target variable is connected to the node under test only, so its update sets
// η = Σ messages. The message must be exp E_{q\x}[log f] as a function of x: for points x1, x2,
// η·T(x1) − η·T(x2) = E[log f(x1, ·)] − E[log f(x2, ·)], the expectation over the other
// variables' q by sampling (common samples for x1 and x2).
// Average energy: the plate's U = −E_q[log f] against sampling every connected variable.

#include <gtest/gtest.h>

#include <Eigen/LU>
#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "tests/testing/textbook.h"
#include "vfe/model.h"

namespace vfe {
namespace {

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

double LogBetaDensity(double p, double a, double b) {
  return std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + (a - 1) * std::log(p) +
         (b - 1) * std::log1p(-p);
}
double LogDirichletDensity(const Vector& p, const Vector& alpha) {
  double out = std::lgamma(alpha.sum());
  for (Eigen::Index k = 0; k < p.size(); ++k)
    out += (alpha[k] - 1) * std::log(p[k]) - std::lgamma(alpha[k]);
  return out;
}

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

}  // namespace
}  // namespace vfe
