#include <cmath>

#include "nodes/declare.h"
#include "nodes/node_checks.h"
#include "vfe/core/special.h"
#include "vfe/distributions/gaussian.h"
#include "vfe/distributions/point_values.h"
#include "vfe/nodes/nodes.h"

namespace vfe {

const NodeType& GaussianNodeType();

namespace {

enum Slot { kOut = 0, kMean = 1, kPrecision = 2 };

/// The scalar Gaussian factor N(out | mean, 1/τ). It is symmetric in out and mean, so
/// "location" below is either of them and "other" the one opposite.
class GaussianNode final : public Node {
 public:
  const char* type() const override { return GaussianNodeType().name.c_str(); }
  std::vector<std::string> slot_names() const override { return GaussianNodeType().SlotNames(); }
  Family ObservedFamily(int slot, const PointMass&) const override {
    return slot == kPrecision ? Family::kGamma : Family::kGaussian;
  }

  void Bind(const std::vector<SlotInfo>& slots, size_t, const std::string& where) override {
    RequireDeclaredFamilies(GaussianNodeType(), slots, where);
    varying_ = ObservedVaryingSlot(slots);
    if (varying_ == kPrecision) varying_ = -1;
  }

  void Prepare(const SlotView* q, size_t num_factors) override {
    if (varying_ < 0) return;
    sum_[0] = sum_[1] = 0.0;
    for (size_t n = 0; n < num_factors; ++n) {
      const double* x = q[varying_].At(n);
      sum_[0] += x[0];
      sum_[1] += x[1];
    }
    count_ = num_factors;
  }

  bool SumsCached() const override { return varying_ >= 0; }

  void AccumulateMessage(int slot, size_t begin, size_t end, const SlotView* q, double* eta,
                         Workspace&) const override {
    if (UseSums(begin, end)) {
      AddMessage(slot, sum_, count_, q[Other(varying_)].At(0), q[kPrecision].At(0), eta);
      return;
    }
    // Local copies of the views, so the compiler keeps them in registers.
    const SlotView out = q[kOut], mean = q[kMean], precision = q[kPrecision];
    if (slot == kPrecision) {
      SumFactors<2>(begin, end, [=](size_t n, double* sum) {
        AddMessage(kPrecision, out.At(n), 1.0, mean.At(n), precision.At(n), sum);
      }, eta);
    } else {
      const SlotView other = slot == kOut ? mean : out;
      SumFactors<2>(begin, end, [=](size_t n, double* sum) {
        AddMessage(kMean, other.At(n), 1.0, nullptr, precision.At(n), sum);
      }, eta);
    }
  }

  double AverageEnergy(size_t begin, size_t end, const SlotView* q, Workspace&) const override {
    if (UseSums(begin, end))
      return Energy(sum_, count_, q[Other(varying_)].At(0), q[kPrecision].At(0));
    const SlotView out = q[kOut], mean = q[kMean], precision = q[kPrecision];
    double energy = 0.0;
    SumFactors<1>(begin, end, [=](size_t n, double* sum) {
      sum[0] += Energy(out.At(n), 1.0, mean.At(n), precision.At(n));
    }, &energy);
    return energy;
  }

  double LogFactor(size_t n, const SlotView* q, Workspace&) const override {
    using point_values::Scalar;
    return Gaussian(Scalar(q[kMean].At(n)), Scalar(q[kPrecision].At(n)))
        .LogDensity(Scalar(q[kOut].At(n)));
  }

 private:
  static int Other(int location) { return location == kOut ? kMean : kOut; }
  bool UseSums(size_t begin, size_t end) const {
    return varying_ >= 0 && begin == 0 && end == count_;
  }

  // `x` holds E[x] and E[x²] of one location, or their sums over `count` factors; `m` the
  // moments of the other location; `tau` E[τ] and E[log τ].

  /// Σ E[(x − m)²] over the factors x stands for.
  static double SquaredError(const double* x, double count, const double* m) {
    return x[1] - 2.0 * x[0] * m[0] + count * m[1];
  }
  /// Message to `slot`. Towards a location: (E[τ]·E[x], −E[τ]/2) per factor, where x is the
  /// location opposite the target (m unused). Towards τ: (−½ E[(x − m)²], ½) per factor.
  static void AddMessage(int slot, const double* x, double count, const double* m,
                         const double* tau, double* eta) {
    if (slot == kPrecision) {
      eta[0] -= 0.5 * SquaredError(x, count, m);
      eta[1] += 0.5 * count;
    } else {
      eta[0] += tau[0] * x[0];
      eta[1] -= 0.5 * count * tau[0];
    }
  }
  static double Energy(const double* x, double count, const double* m, const double* tau) {
    return 0.5 * count * (kLog2Pi - tau[1]) + 0.5 * tau[0] * SquaredError(x, count, m);
  }

  int varying_ = -1;
  double sum_[2] = {0.0, 0.0};
  size_t count_ = 0;
};

}  // namespace

std::unique_ptr<Node> MakeGaussianNode() { return std::make_unique<GaussianNode>(); }


const NodeType& GaussianNodeType() {
  static const NodeType type = [] {
    using namespace declare;
    NodeType t;
    t.name = "Gaussian";
    t.summary = "out ~ N(mean, 1/precision), all scalar";
    t.formula = "U = ½ log 2π − ½ E[log τ] + ½ E[τ] E[(out − mean)²]";
    t.parameters = {
        Variable("out", "the scalar the density is over", {Family::kGaussian}),
        VariableOrConstant("mean", "its mean", {Family::kGaussian}, ConstantKind::kNumber),
        VariableOrConstant("precision", "its precision τ = 1/variance", {Family::kGamma},
                           ConstantKind::kPositiveNumber)};
    t.make = [](const NodeArguments&) { return MakeGaussianNode(); };
    t.example = R"json({
  "format": "vfe-model/1",
  "variables": [
    {"name": "mu", "family": "Gaussian"},
    {"name": "tau", "family": "Gamma"},
    {"name": "y", "observed": [1.2, 0.7, 1.9, 1.1]}
  ],
  "factors": [
    {"node": "Gaussian", "out": "mu", "mean": 0.0, "precision": 0.01},
    {"node": "Gamma", "out": "tau", "shape": 2.0, "rate": 1.0},
    {"node": "Gaussian", "for": {"i": [0, 4]}, "out": "y[i]", "mean": "mu", "precision": "tau"}
  ]
})json";
    return t;
  }();
  return type;
}

}  // namespace vfe
