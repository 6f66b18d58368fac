// Priors with constant parameters: Wishart(out | ν, V), Beta(out | a, b), Dirichlet(out | α).

#include <cmath>
#include <functional>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/distributions/distributions.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& WishartNodeType();
const NodeType& BetaNodeType();
const NodeType& DirichletNodeType();
const NodeType& BernoulliNodeType();
const NodeType& CategoricalNodeType();

namespace {

/// A density of `family` with constant parameters, as a factor of its one variable "out": the
/// message to out is the density's own natural parameters η, and U = A(η) − η·E[T(out)].
class PriorNode final : public Node {
 public:
  /// log p(x) of the density at the point whose statistics T(x) are given.
  using PointDensity = std::function<double(const double* point)>;
  /// `make` builds the density (throwing ModelError for invalid parameters) and writes its
  /// dimension, natural parameters, log-partition and pointwise log-density.
  using Maker = std::function<void(int& dim, std::vector<double>& natural, double& log_partition,
                                   PointDensity& log_density)>;
  PriorNode(const NodeType& declaration, Family family, Maker make)
      : declaration_(declaration), family_(family), make_(std::move(make)) {}
  const char* type() const override { return declaration_.name.c_str(); }
  std::vector<std::string> slot_names() const override { return declaration_.SlotNames(); }
  Family ObservedFamily(int, const PointMass&) const override { return family_; }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[0], {family_}, where);
    int dim = 1;
    try {
      make_(dim, natural_, log_partition_, log_density_);
    } catch (const ModelError& e) {
      throw ModelError(where + ": " + e.what());
    }
    if (HasDimension(family_)) RequireDim(slots[0], dim, where, "the dimension of its parameters");
  }

  void AccumulateMessage(int, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    const double count = static_cast<double>(end - begin);
    for (size_t k = 0; k < natural_.size(); ++k) eta[k] += count * natural_[k];
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    const SlotView out = q[0];
    double energy = 0.0;
    SumFactors<1>(begin, end, [&](size_t n, double* sum) {
      const double* moments = out.At(n);
      double dot = 0.0;
      for (size_t k = 0; k < natural_.size(); ++k)
        if (natural_[k] != 0.0) dot += natural_[k] * moments[k];  // 0·(−∞) counts 0
      sum[0] += log_partition_ - dot;
    }, &energy);
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    return log_density_(q[0].At(n));
  }

 private:
  const NodeType& declaration_;
  Family family_;
  Maker make_;
  std::vector<double> natural_;
  double log_partition_ = 0.0;
  PointDensity log_density_;
};

/// The density at the point whose statistics are `t`, reading the value back by family.
double PointLogDensity(const Wishart& d, const double* t) {
  return d.LogDensity(point_values::Mat(d.dim(), t));
}
double PointLogDensity(const Beta& d, const double* t) {
  return d.LogDensity(point_values::Probability(t));
}
double PointLogDensity(const Dirichlet& d, const double* t) {
  return d.LogDensity(point_values::Probabilities(d.dim(), t));
}

/// A Maker for distribution D built by `build`.
template <class D, class Build>
PriorNode::Maker MakerOf(Build build) {
  return [build](int& dim, std::vector<double>& natural, double& log_partition,
                 PriorNode::PointDensity& log_density) {
    const D prior = build();
    dim = prior.dim();
    natural.resize(StatSize(D::kFamily, dim));
    prior.WriteNatural(natural.data());
    log_partition = prior.LogPartition();
    log_density = [prior](const double* t) { return PointLogDensity(prior, t); };
  };
}

}  // namespace

std::unique_ptr<Node> MakeWishartNode(double dof, const Matrix& scale) {
  return std::make_unique<PriorNode>(WishartNodeType(), Family::kWishart,
                                     MakerOf<Wishart>([=] { return Wishart(dof, scale); }));
}

std::unique_ptr<Node> MakeBetaNode(double a, double b) {
  return std::make_unique<PriorNode>(BetaNodeType(), Family::kBeta,
                                     MakerOf<Beta>([=] { return Beta(a, b); }));
}

std::unique_ptr<Node> MakeDirichletNode(const Vector& alpha) {
  return std::make_unique<PriorNode>(DirichletNodeType(), Family::kDirichlet,
                                     MakerOf<Dirichlet>([=] { return Dirichlet(alpha); }));
}


const NodeType& WishartNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Wishart";
    t.summary = "out ~ Wishart(dof, scale): a D x D positive-definite matrix, mean dof·scale";
    t.formula = "U = A(η) − η·E[T(Λ)], T(Λ) = (Λ, log|Λ|)";
    t.parameters = {Variable("out", "the precision matrix", {Family::kWishart}),
                    Constant("dof", "the degrees of freedom ν > D − 1", ConstantKind::kPositiveNumber),
                    Constant("scale", "the D x D scale V", ConstantKind::kMatrix)};
    t.make = [](const NodeArguments& a) { return MakeWishartNode(a.number("dof"), a.matrix("scale")); };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "W", "family": "Wishart", "dim": 2},
    {"name": "y", "dim": 2, "observed": [[0.5, -0.2], [1.1, 0.4], [-0.3, 0.9]]}
  ],
  "factors": [
    {"node": "Wishart", "out": "W", "dof": 3.0, "scale": [[1.0, 0.2], [0.2, 0.5]]},
    {"node": "MvGaussian", "for": {"i": [0, 3]}, "out": "y[i]", "mean": [0.0, 0.0], "precision": "W"}
  ]
})json";
    return t;
  }();
  return type;
}

const NodeType& BetaNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Beta";
    t.summary = "out ~ Beta(a, b): a probability, mean a/(a + b)";
    t.formula = "U = A(η) − η·E[T(p)], T(p) = (log p, log(1 − p))";
    t.parameters = {Variable("out", "the probability", {Family::kBeta}),
                    Constant("a", "the first shape", ConstantKind::kPositiveNumber),
                    Constant("b", "the second shape", ConstantKind::kPositiveNumber)};
    t.make = [](const NodeArguments& a) { return MakeBetaNode(a.number("a"), a.number("b")); };
    t.example = BernoulliNodeType().example;
    return t;
  }();
  return type;
}

const NodeType& DirichletNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Dirichlet";
    t.summary = "out ~ Dirichlet(alpha): K probabilities that sum to 1";
    t.formula = "U = A(η) − η·E[log p], η = α − 1";
    t.parameters = {Variable("out", "the probabilities", {Family::kDirichlet}),
                    Constant("alpha", "the K concentrations", ConstantKind::kPositiveVector)};
    t.make = [](const NodeArguments& a) { return MakeDirichletNode(a.vector("alpha")); };
    t.example = CategoricalNodeType().example;
    return t;
  }();
  return type;
}

}  // namespace vfe
