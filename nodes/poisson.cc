// Poisson(out | rate): counts with a Gamma-distributed rate (conjugate).

#include <cmath>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/point_values.h"

namespace vfe {

const NodeType& PoissonNodeType();

namespace {

enum Slot { kOut = 0, kRate = 1 };

/// Poisson(y | λ) = λ^y e^−λ / y! for observed counts y, the rate λ a Gamma variable or a
/// constant. With Gamma's statistics T(λ) = (λ, log λ):
///   log f = y E[log λ] − E[λ] − log y!
///   message to λ: (−1, y) per factor: a Gamma(shape + y, rate + 1) update
///   U = E[λ] − y E[log λ] + log Γ(y + 1).
/// When the counts vary over the plate and the rate is shared, Prepare sums y and log y! once,
/// so that messages and U cost O(1) per sweep.
class PoissonNode final : public Node {
 public:
  const char* type() const override { return PoissonNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return PoissonNodeType().SlotNames(); }
  // Counts are read as Gaussian data, whose statistics start with the value itself.
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kOut ? Family::kGaussian : Family::kGamma;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    if (!slots[kOut].observed)
      throw GraphError(where + ": 'out' expects observed counts, got " + slots[kOut].variable +
                       " (" + FamilyName(slots[kOut].family) + ")");
    RequireDeclaredFamilies(PoissonNodeType(), slots, where);
    cached_ = !slots[kOut].shared && slots[kRate].shared;
  }

  void Prepare(const SlotView* q, size_t num_factors) override {
    // The counts are checked here, where the node first sees them.
    sum_y_ = sum_log_factorial_ = 0.0;
    for (size_t n = 0; n < num_factors; ++n) {
      const double y = q[kOut].At(n)[0];
      if (!(y >= 0) || y != std::floor(y))
        throw ModelError("'out' expects counts (integers >= 0), got " + FormatNumber(y) +
                         " at factor " + std::to_string(n));
      sum_y_ += y;
      sum_log_factorial_ += LogGamma(y + 1);
    }
    count_ = num_factors;
  }
  bool SumsCached() const override { return cached_; }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    if (slot != kRate) return;  // counts are observed: nothing is sent to them
    if (UseSums(begin, end)) {
      eta[0] -= static_cast<double>(count_);
      eta[1] += sum_y_;
      return;
    }
    for (size_t n = begin; n < end; ++n) {
      eta[0] -= 1.0;
      eta[1] += q[kOut].At(n)[0];
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    if (UseSums(begin, end)) {
      const double* rate = q[kRate].At(0);
      return static_cast<double>(count_) * rate[0] - sum_y_ * rate[1] + sum_log_factorial_;
    }
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double y = q[kOut].At(n)[0];
      const double* rate = q[kRate].At(n);
      energy += rate[0] - y * rate[1] + LogGamma(y + 1);
    }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    const double y = point_values::Scalar(q[kOut].At(n));
    const double rate = point_values::Scalar(q[kRate].At(n));
    return y * std::log(rate) - rate - LogGamma(y + 1);
  }

 private:
  bool UseSums(size_t begin, size_t end) const { return cached_ && begin == 0 && end == count_; }
  bool cached_ = false;
  double sum_y_ = 0.0, sum_log_factorial_ = 0.0;
  size_t count_ = 0;
};

}  // namespace

const NodeType& PoissonNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Poisson";
    t.summary = "out ~ Poisson(rate): observed counts, the rate a Gamma variable or a constant";
    t.formula = "U = E[λ] − y E[log λ] + log Γ(y + 1)";
    t.parameters = {Variable("out", "the observed count y (an integer >= 0)", {}),
                    VariableOrConstant("rate", "the rate λ > 0", {Family::kGamma},
                                       ConstantKind::kPositiveNumber)};
    t.make = [](const NodeArguments&) -> std::unique_ptr<Node> {
      return std::make_unique<PoissonNode>();
    };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "rate", "family": "Gamma"},
    {"name": "y", "observed": [3, 1, 4, 1, 5, 9, 2]}
  ],
  "factors": [
    {"node": "Gamma", "out": "rate", "shape": 2.0, "rate": 0.5},
    {"node": "Poisson", "for": {"i": [0, 7]}, "out": "y[i]", "rate": "rate"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
