// Priors with constant parameters: Wishart(out | ν, V), Beta(out | a, b), Dirichlet(out | α).

#include <cmath>
#include <functional>

#include "nodes/node_checks.h"
#include "vfe/distributions/distributions.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
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
  PriorNode(const char* type, Family family, Maker make)
      : type_(type), family_(family), make_(std::move(make)) {}
  const char* type() const override { return type_; }
  std::vector<std::string> slot_names() const override { return {"out"}; }
  Family ObservedFamily(int, const PointMass&) const override { return family_; }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[0], {family_}, where);
    int dim = 1;
    try {
      make_(dim, natural_, log_partition_, log_density_);
    } catch (const ModelError& e) {
      throw ModelError(where + ": " + e.what());
    }
    if (HasDimension(family_)) RequireDim(slots[0], dim, where);
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
  const char* type_;
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
  return std::make_unique<PriorNode>("Wishart", Family::kWishart,
                                     MakerOf<Wishart>([=] { return Wishart(dof, scale); }));
}

std::unique_ptr<Node> MakeBetaNode(double a, double b) {
  return std::make_unique<PriorNode>("Beta", Family::kBeta,
                                     MakerOf<Beta>([=] { return Beta(a, b); }));
}

std::unique_ptr<Node> MakeDirichletNode(const Vector& alpha) {
  return std::make_unique<PriorNode>("Dirichlet", Family::kDirichlet,
                                     MakerOf<Dirichlet>([=] { return Dirichlet(alpha); }));
}

}  // namespace vfe
