#include <cmath>

#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/distributions/wishart.h"
#include "vfe/nodes/nodes.h"

namespace vfe {
namespace {

/// Wishart(out | ν, V) with constants ν and V: the message to out is the prior's own natural
/// parameters, and U = A(η) − η·E[T(Λ)].
class WishartNode final : public Node {
 public:
  WishartNode(double dof, const Matrix& scale) : dof_(dof), scale_(scale) {}
  const char* type() const override { return "Wishart"; }
  std::vector<std::string> slot_names() const override { return {"out"}; }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kWishart; }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireFamily(slots[0], {Family::kWishart}, where);
    try {
      const Wishart prior(dof_, scale_);
      RequireDim(slots[0], prior.dim(), where);
      natural_.resize(StatSize(Family::kWishart, prior.dim()));
      prior.WriteNatural(natural_.data());
      log_partition_ = prior.LogPartition();
    } catch (const ModelError& e) {
      throw ModelError(where + ": " + e.what());
    }
  }

  void AccumulateMessage(int, size_t begin, size_t end, const SlotView*, double* eta,
                         Workspace&) const override {
    const double count = static_cast<double>(end - begin);
    for (size_t k = 0; k < natural_.size(); ++k) eta[k] += count * natural_[k];
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double* moments = q[0].At(n);
      double dot = 0.0;
      for (size_t k = 0; k < natural_.size(); ++k) dot += natural_[k] * moments[k];
      energy += log_partition_ - dot;
    }
    return energy;
  }

 private:
  double dof_;
  Matrix scale_;
  std::vector<double> natural_;
  double log_partition_ = 0.0;
};

}  // namespace

std::unique_ptr<Node> MakeWishartNode(double dof, const Matrix& scale) {
  return std::make_unique<WishartNode>(dof, scale);
}

}  // namespace vfe
