#include <cmath>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/format.h"
#include "vfe/core/special.h"
#include "vfe/distributions/gamma.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& GammaNodeType();

namespace {

enum Slot { kOut = 0, kRate = 1 };

/// Gamma(out | a, rate) with a constant shape a:
///   log f = a log b − log Γ(a) + (a − 1) log x − b x.
class GammaNode final : public Node {
 public:
  explicit GammaNode(double shape) : shape_(shape) {}
  const char* type() const override { return GammaNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return GammaNodeType().SlotNames(); }
  Family ObservedFamily(int, const PointMass&) const override { return Family::kGamma; }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    if (!(shape_ > 0) || !std::isfinite(shape_))
      throw ModelError(where + ": shape must be a positive number, got " + FormatNumber(shape_));
    if (const std::string why = ShapeTooSmall(shape_); !why.empty())
      throw ModelError(where + ": shape " + FormatNumber(shape_) + why);
    RequireDeclaredFamilies(GammaNodeType(), slots, where);
    log_gamma_shape_ = LogGamma(shape_);
  }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    // Towards out: (−E[b], a − 1); towards the rate: (−E[x], a), a Gamma(a + 1, E[x]) shape.
    const SlotView& other = q[slot == kOut ? kRate : kOut];
    const double count = static_cast<double>(end - begin);
    for (size_t n = begin; n < end; ++n) eta[0] -= other.At(n)[0];
    eta[1] += count * (slot == kOut ? shape_ - 1.0 : shape_);
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    double energy = 0.0;
    for (size_t n = begin; n < end; ++n) {
      const double* x = q[kOut].At(n);
      const double* b = q[kRate].At(n);
      energy += -shape_ * b[1] + log_gamma_shape_ - (shape_ - 1.0) * x[1] + b[0] * x[0];
    }
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    using point_values::Scalar;
    return Gamma(shape_, Scalar(q[kRate].At(n))).LogDensity(Scalar(q[kOut].At(n)));
  }

 private:
  double shape_;
  double log_gamma_shape_ = 0.0;
};

}  // namespace

std::unique_ptr<Node> MakeGammaNode(double shape) { return std::make_unique<GammaNode>(shape); }


const NodeType& GammaNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Gamma";
    t.summary = "out ~ Gamma(shape, rate): a positive scalar, mean shape/rate";
    t.formula = "U = −a E[log b] + log Γ(a) − (a − 1) E[log x] + E[b] E[x]";
    t.parameters = {Variable("out", "the positive scalar the density is over", {Family::kGamma}),
                    Constant("shape", "the shape a", ConstantKind::kPositiveNumber),
                    VariableOrConstant("rate", "the rate b", {Family::kGamma},
                                       ConstantKind::kPositiveNumber)};
    t.make = [](const NodeArguments& a) { return MakeGammaNode(a.number("shape")); };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "rate", "family": "Gamma"},
    {"name": "tau", "family": "Gamma"},
    {"name": "y", "observed": [0.3, -1.1, 0.8, 2.0, -0.4]}
  ],
  "factors": [
    {"node": "Gamma", "out": "rate", "shape": 1.0, "rate": 1.0},
    {"node": "Gamma", "out": "tau", "shape": 2.0, "rate": "rate"},
    {"node": "Gaussian", "for": {"i": [0, 5]}, "out": "y[i]", "mean": 0.0, "precision": "tau"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
